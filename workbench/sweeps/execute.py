"""The sweep executor: claims pending cells, runs them with bounded concurrency per model, scores
them and reports what it did.

One executor runs in one event loop. Database work runs in threads (`asyncio.to_thread`) so the
loop keeps calling providers while results are written. Several executors (processes, machines)
can work on one sweep: cells are handed out by `claims.claim`, never twice. An executor holds
`limits.Limits` (the whole sweep's by default, or its process's share: see `processes`) and
claims only cells of models it holds a share of. Every provider call goes through
`retry.ProviderCalls`; results are written by `writes.ResultWriter`; the sweep's state changes
are `lifecycle`'s.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from workbench.db import get_engine
from workbench.models import Example, Run, Score
from workbench.prompts.structured import schema_of
from workbench.providers import catalog
from workbench.providers.catalog import ModelEntry
from workbench.providers.completion import acomplete, closing_clients
from workbench.sweeps import claims, lifecycle, outputs
from workbench.sweeps.circuit import CircuitBreaker
from workbench.sweeps.judge import Judge, judge_input
from workbench.sweeps.limits import Limiter, Limits, sweep_limits
from workbench.sweeps.plan import SweepSpec, require_sweep, spec_of
from workbench.sweeps.retry import ProviderCalls, RetryPolicy
from workbench.sweeps.scoring import ScoringConfig, score_output
from workbench.sweeps.writes import ResultWriter, result_write, score_row

log = logging.getLogger(__name__)


@dataclass
class ExecutorOptions:
    """How an executor behaves; the sweep's own spec supplies concurrency, stream and timeout."""

    worker_id: str = field(default_factory=claims.new_worker_id)
    retry: RetryPolicy | None = None  # None: from the sweep's max_attempts
    flush_interval: float = 0.1  # batch results that finish together; a kill loses at most this much
    cancel_poll: float = 0.5
    concurrency: int | None = None  # override the sweep's
    rng: random.Random = field(default_factory=random.Random)
    limits: Limits | None = None  # this executor's share of the sweep's limits; None: all of them
    score_cached: bool = True  # score the cache hits filled in at planning (one process of a sweep)
    # While this says other executors of the sweep are running, an executor without cells waits
    # for cells they may give back (a process that died) instead of finishing.
    others_running: Callable[[], bool] | None = None


@dataclass
class ExecutionReport:
    """What one executor did."""

    sweep_id: int
    called: int = 0  # cells it ran (not counting cache hits)
    done: int = 0
    failed: int = 0
    cancelled: bool = False
    paused: bool = False  # stopped without a cancel: its cells went back to pending
    processes: int = 1  # processes that ran the sweep (see `processes`)
    provider_requests: int = 0  # every attempt of every call, cells and judge calls alike
    seconds: float = 0.0
    circuit_open: dict[str, str] = field(default_factory=dict)  # model -> why it was no longer called


class SweepExecutor:
    """Runs the pending cells of one sweep until none are left or it is cancelled."""

    def __init__(
        self,
        sweep_id: int,
        options: ExecutorOptions | None = None,
        *,
        engine: Engine | None = None,
        on_progress: Callable[[ExecutionReport], None] | None = None,
    ):
        self.sweep_id = sweep_id
        self.options = options or ExecutorOptions()
        self.engine = engine or get_engine()
        self.on_progress = on_progress
        self.report = ExecutionReport(sweep_id)
        self._cancel = asyncio.Event()
        self._pausing = False
        self._wake = asyncio.Event()  # a task finished, or someone says cells may be back (`poke`)
        self._poked = False
        self.idle = False  # no cell in hand and none left to claim (the last time it looked)
        self._breaker = CircuitBreaker()
        self.report.circuit_open = self._breaker.opened
        self._entries: dict[str, ModelEntry] = {}
        self._limiters: dict[str, Limiter] = {}
        self._queued: dict[int, asyncio.Task] = {}  # claimed cells waiting for a limiter, by run id
        self._global = Limiter(1)
        self.limits: Limits | None = None
        if self.options.limits is not None:
            self.set_limits(self.options.limits)
        self._judge: Judge | None = None
        self._expected: dict[int, str | None] = {}
        self._inputs: dict[int, dict] = {}

    def _load(self) -> tuple[SweepSpec, bool]:
        """The sweep's spec and whether it is cancelled; marks it running, reads its rows' answers."""
        with Session(self.engine, expire_on_commit=False) as s:
            sweep = require_sweep(s, self.sweep_id)
            spec = spec_of(sweep)
            if sweep.cancel_requested:
                return spec, True
            lifecycle.mark_running(sweep)
            s.add(sweep)
            if sweep.config.get("dataset_id"):
                rows = s.exec(
                    select(Example.id, Example.expected, Example.inputs).where(
                        Example.dataset_id == sweep.config["dataset_id"]
                    )
                )
                for ex_id, expected, inputs in rows:
                    self._expected[ex_id] = expected
                    self._inputs[ex_id] = inputs
            s.commit()
            return spec, False

    def _unscored_done(self) -> list[tuple[claims.Cell, list | None]]:
        """Done cells of this sweep without a score yet (cache hits filled in at planning), each
        with the tool calls its reply made."""
        if not self.scoring.metrics:
            return []
        with Session(self.engine, expire_on_commit=False) as s:
            scored = select(Score.run_id).where(Score.run_id == Run.id)
            stmt = select(
                Run.id, Run.model, Run.params, Run.messages, Run.example_id, Run.variables, Run.output,
                Run.tool_calls,
            ).where(Run.sweep_id == self.sweep_id, Run.status == "done", ~scored.exists())  # fmt: skip
            return [(claims.Cell(*row[:-1]), row[-1]) for row in s.exec(stmt)]

    # -- the run ---------------------------------------------------------------------------------

    async def run(self) -> ExecutionReport:
        """Execute until no pending cell is left (or cancel); returns what happened.

        The loop's provider clients are closed when its last executor ends (`closing_clients`).
        """
        async with closing_clients():
            return await self._run()

    async def _run(self) -> ExecutionReport:
        started = time.perf_counter()
        spec, cancelled = await asyncio.to_thread(self._load)
        if cancelled:
            await asyncio.to_thread(
                lifecycle.finish_cancelled, self.engine, self.sweep_id, worker_id=self.options.worker_id
            )
            self.report.cancelled = True
            return self.report
        self.spec = spec
        self.scoring = ScoringConfig.from_dict(spec.scoring)
        self.calls = ProviderCalls(
            self.options.retry or RetryPolicy(max_attempts=int(spec.max_attempts)),
            breaker=self._breaker,
            cancelled=self._cancel,
            rng=self.options.rng,
            on_request=self._count_request,
        )
        if self.limits is None:
            self.set_limits(await asyncio.to_thread(sweep_limits, spec, self.options.concurrency))
        self.writer = ResultWriter(
            self.engine,
            self.options.worker_id,
            flush_interval=self.options.flush_interval,
            on_flush=(lambda: self.on_progress(self.report)) if self.on_progress else None,
        )
        self.writer.start()
        watcher = asyncio.create_task(self._cancel_watch())
        try:
            await self._run_cells()
        finally:
            watcher.cancel()
            await self.writer.close()
        if self._pausing:
            await asyncio.to_thread(self._pause_cells)
            self.report.paused = True
        elif self._cancel.is_set():
            await asyncio.to_thread(
                lifecycle.finish_cancelled, self.engine, self.sweep_id, worker_id=self.options.worker_id
            )
            self.report.cancelled = True
        else:
            await asyncio.to_thread(
                lifecycle.finish, self.engine, self.sweep_id, stopped_models=self.report.circuit_open
            )
        self.report.seconds = time.perf_counter() - started
        return self.report

    def _pause_cells(self) -> None:
        """Give this executor's unfinished cells back; a cancel asked meanwhile still cancels them."""
        claims.release_claims(self.engine, worker_id=self.options.worker_id, sweep_id=self.sweep_id)
        if lifecycle.cancel_requested(self.engine, self.sweep_id):
            lifecycle.finish_cancelled(self.engine, self.sweep_id, worker_id=self.options.worker_id)
            self.report.cancelled = True

    def _claimable(self) -> list[str] | None:
        """Models whose cells this executor may claim; None: every model of the sweep."""
        models = self.limits.claimable()
        return None if len(models) == len(self.limits.models) else models

    async def _run_cells(self) -> None:
        """Claim cells and run them as tasks until none is left or a cancel."""
        tasks: set[asyncio.Task] = set()
        # Finished tasks signal an event instead of the loop calling asyncio.wait() on the whole
        # set: that re-registers a callback on every in-flight task per wake-up (O(n) each time).
        wake = self._wake

        def finished(task: asyncio.Task) -> None:
            tasks.discard(task)
            if not task.cancelled() and task.exception() is not None:
                log.error("cell task failed: %r", task.exception())
            wake.set()

        def spawn(coro, run_id: int | None = None) -> None:
            task = asyncio.create_task(coro)
            tasks.add(task)
            task.add_done_callback(finished)
            if run_id is not None:
                self._queued[run_id] = task

        try:
            # Cells already done (cache hits) still need this sweep's scores.
            if self.options.score_cached:
                for cell, tool_calls in await asyncio.to_thread(self._unscored_done):
                    spawn(self._score(cell, cell.output or "", tool_calls))
            others_running = self.options.others_running or (lambda: False)
            exhausted = False
            while not self._cancel.is_set():
                # Claimed cells wait on the limiters, so the window keeps a full queue of work while
                # a claim is in flight. Claiming only when a good share of the window is free keeps
                # the number of claim transactions (write locks on SQLite) small. The window follows
                # the limits, which change when processes join or leave.
                window = max(self.limits.total * 2, 8)
                room = window - len(tasks)
                if not exhausted and (room >= max(1, window // 4) or not tasks):
                    # Asked before the claim: cells a dead process gave back before it was seen
                    # gone are then found by this claim.
                    others = others_running()
                    batch = await asyncio.to_thread(
                        claims.claim,
                        self.engine,
                        worker_id=self.options.worker_id,
                        limit=room,
                        sweep_id=self.sweep_id,
                        models=self._claimable(),
                    )
                    for cell in batch:
                        spawn(self._cell(cell), cell.id)
                    exhausted = len(batch) < room
                    self.idle = not batch and not tasks
                    if self.idle and not others:
                        break
                    if batch:
                        continue
                if not tasks and exhausted and not self.idle:
                    # Another executor may still release cells (a lease expiry); look once more.
                    exhausted = False
                    continue
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), timeout=0.5)
                except TimeoutError:
                    exhausted = False  # poll for cells other executors returned
                if self._poked:
                    self._poked, exhausted = False, False
        finally:
            for t in list(tasks):
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def cancel(self) -> None:
        """Stop this executor (in-process); cells not finished are marked cancelled."""
        self._cancel.set()

    def pause(self) -> None:
        """Stop this executor and give its unfinished cells back to pending (the sweep goes on
        elsewhere, or when resumed); in-flight calls are dropped unrecorded."""
        self._pausing = True
        self._cancel.set()

    def poke(self) -> None:
        """Look for cells now: another executor stopped, its cells may be pending again."""
        self._poked = True
        self._wake.set()

    def set_limits(self, limits: Limits) -> None:
        """Run with new limits from now on (calls above a smaller limit finish first: `drained`)."""
        self.limits = limits
        self._global.resize(limits.total)
        for model, limit in limits.models.items():
            if model in self._limiters:
                self._limiters[model].resize(limit)
            else:
                self._limiters[model] = Limiter(limit)

    async def shed(self) -> None:
        """Give back claimed cells beyond what smaller limits keep queued (another process takes
        them now, instead of this one running them last, alone)."""
        keep = max(self.limits.total, 8)  # the window's queue beyond the calls in flight
        excess = list(self._queued.items())[keep:]  # the last claimed go back first
        for _, task in excess:
            task.cancel()  # it waits in a limiter: no call was made
        await asyncio.gather(*(t for _, t in excess), return_exceptions=True)
        if excess:
            release = functools.partial(
                claims.release_claims, worker_id=self.options.worker_id, sweep_id=self.sweep_id
            )
            await asyncio.to_thread(release, self.engine, ids=[run_id for run_id, _ in excess])

    async def drained(self) -> None:
        """Wait until the calls in flight fit the limits set last."""
        for limiter in [self._global, *self._limiters.values()]:
            await limiter.drained()

    async def _cancel_watch(self) -> None:
        while not self._cancel.is_set():
            await asyncio.sleep(self.options.cancel_poll)
            if await asyncio.to_thread(lifecycle.cancel_requested, self.engine, self.sweep_id):
                self._cancel.set()

    def _count_request(self) -> None:
        self.report.provider_requests += 1

    # -- one cell --------------------------------------------------------------------------------

    def _entry(self, model: str) -> ModelEntry:
        if model not in self._entries:
            self._entries[model] = catalog.get_model(model)
        return self._entries[model]

    def _limiter(self, model: str) -> Limiter:
        if model not in self._limiters:  # every model of the sweep has one from the start
            self._limiters[model] = Limiter(max(1, int(self._entry(model).max_concurrency)))
        return self._limiters[model]

    async def _cell(self, cell: claims.Cell) -> None:
        entry = self._entry(cell.model)
        params = {k: v for k, v in cell.params.items() if k != "model"}

        def request():
            return acomplete(
                cell.model,
                cell.messages,
                params,
                stream=self.spec.stream,
                timeout=self.spec.timeout_s,
                entry=entry,
            )

        # The model's own limit first: cells queued for a one-at-a-time local model must not hold
        # global permits that cloud cells could use meanwhile.
        try:
            async with self._limiter(cell.model), self._global:
                self._queued.pop(cell.id, None)  # from here on it calls: never shed
                outcome = await self.calls.call(cell.model, request)
        finally:
            self._queued.pop(cell.id, None)
        self.report.called += 1
        # The result is queued before scoring, so a scorer problem can never lose a paid call.
        self.writer.add_result(result_write(cell.id, outcome))
        if outcome.result is not None:
            self.report.done += 1
            await self._score(cell, outcome.result.text, outcome.result.tool_calls)
        else:
            self.report.failed += 1

    # -- scores ----------------------------------------------------------------------------------

    def _judge_of(self) -> Judge:
        if self._judge is None:
            model = self.scoring.judge_model
            entry = self._entry(model)
            self._judge = Judge(self.scoring, self.calls, entry, self._limiter(model))
        return self._judge

    async def _score(self, cell: claims.Cell, output: str, tool_calls: list | None = None) -> None:
        if not self.scoring.metrics:
            return
        expected = self._expected.get(cell.example_id) if cell.example_id else None
        # The version's response format travels in the cell's params (see plan.build_cells).
        schema = schema_of(cell.params.get("response_format"))
        rows = []
        try:
            scores = score_output(self.scoring, output, expected, schema=schema, tool_calls=tool_calls)
            for metric, value, detail in scores:
                rows.append(score_row(cell.id, metric, value, detail))
            if "judge" in self.scoring.metrics:
                inputs = (
                    self._inputs.get(cell.example_id, cell.variables) if cell.example_id else cell.variables
                )
                rows.append(
                    await self._judge_of().score(
                        cell.id,
                        input_text=judge_input(inputs, cell.messages),
                        output=outputs.view(output, tool_calls).text,  # tool calls as name(args)
                        expected=expected,
                    )
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("scoring run %s failed", cell.id)
            rows.append(score_row(cell.id, "scoring_error", None, f"{type(exc).__name__}: {exc}"))
        self.writer.add_scores(rows)


def execute_sweep(
    sweep_id: int,
    options: ExecutorOptions | None = None,
    *,
    engine: Engine | None = None,
    on_progress: Callable[[ExecutionReport], None] | None = None,
) -> ExecutionReport:
    """Run a sweep to the end in this thread (a fresh event loop); returns the report."""
    executor = SweepExecutor(sweep_id, options, engine=engine, on_progress=on_progress)
    return asyncio.run(executor.run())
