"""The sweep executor: claims pending cells, calls models with bounded concurrency, retries
transient errors, and writes results in batches as they complete.

One executor runs in one event loop. Database work runs in threads (`asyncio.to_thread`) so the
loop keeps calling providers while results are written. Several executors (processes, machines)
can work on one sweep: cells are handed out by `claims.claim`, never twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from workbench.db import get_engine
from workbench.errors import ProviderError, WorkbenchError
from workbench.models import Example, Run, Score, Sweep, utcnow
from workbench.providers import catalog
from workbench.providers.catalog import ModelEntry
from workbench.providers.completion import CompletionResult, acomplete
from workbench.sweeps import claims
from workbench.sweeps.plan import SweepSpec, spec_of
from workbench.sweeps.retry import RetryPolicy
from workbench.sweeps.scoring import ScoringConfig, judge_messages, parse_judge, score_output

log = logging.getLogger(__name__)
AUTH_KINDS = {"auth"}
CONSECUTIVE_AUTH_FAILURES_TO_OPEN = 3


@dataclass
class ExecutorOptions:
    """How an executor behaves; the sweep's own spec supplies concurrency, stream and timeout."""

    worker_id: str = field(default_factory=claims.new_worker_id)
    retry: RetryPolicy | None = None  # None: from the sweep's max_attempts
    flush_interval: float = 0.1  # batch results that finish together; a kill loses at most this much
    flush_batch: int = 200
    cancel_poll: float = 0.5
    concurrency: int | None = None  # override the sweep's
    rng: random.Random = field(default_factory=random.Random)


@dataclass
class ExecutionReport:
    """What one executor did."""

    sweep_id: int
    called: int = 0
    done: int = 0
    failed: int = 0
    cancelled: bool = False
    provider_requests: int = 0
    seconds: float = 0.0
    circuit_open: dict[str, str] = field(default_factory=dict)


@dataclass
class _Circuit:
    successes: int = 0
    consecutive_auth: int = 0
    open_reason: str | None = None


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
        self._pending_writes: list[dict[str, Any]] = []
        self._pending_scores: list[dict[str, Any]] = []
        self._cancel = asyncio.Event()
        self._has_writes = asyncio.Event()
        self._circuits: dict[str, _Circuit] = {}
        self._entries: dict[str, ModelEntry] = {}
        self._model_sems: dict[str, asyncio.Semaphore] = {}
        self._expected: dict[int, str | None] = {}
        self._inputs: dict[int, dict] = {}

    # -- database helpers (run in threads) ------------------------------------------------------

    def _load(self) -> tuple[SweepSpec, bool]:
        with Session(self.engine, expire_on_commit=False) as s:
            sweep = s.get(Sweep, self.sweep_id)
            if sweep is None:
                raise WorkbenchError(f"No sweep with id {self.sweep_id}.")
            spec = spec_of(sweep)
            if sweep.cancel_requested:
                return spec, True
            if sweep.status in ("pending", "done", "failed", "cancelled"):
                sweep.status = "running"
                sweep.started_at = sweep.started_at or utcnow()
                sweep.finished_at = None
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

    def _cancel_requested(self) -> bool:
        with Session(self.engine) as s:
            return bool(s.exec(select(Sweep.cancel_requested).where(Sweep.id == self.sweep_id)).first())

    def _flush(self, writes: list[dict[str, Any]], scores: list[dict[str, Any]]) -> None:
        if not writes and not scores:
            return
        with Session(self.engine) as s:
            # Only a cell this executor still holds is written: a cancel that already marked it
            # cancelled wins, and a cell re-claimed elsewhere after a lease expiry is not clobbered.
            # One statement per set of columns, executed for many rows at once (executemany).
            groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for w in writes:
                groups.setdefault(tuple(sorted(w)), []).append(w)
            table = Run.__table__
            for keys, rows in groups.items():
                cols = [k for k in keys if k != "id"]
                stmt = (
                    update(table)
                    .where(
                        table.c.id == bindparam("_id"),
                        table.c.status == "running",
                        table.c.claimed_by == self.options.worker_id,
                    )
                    .values({k: bindparam(f"v_{k}") for k in cols})
                )
                params = [{"_id": r["id"], **{f"v_{k}": r[k] for k in cols}} for r in rows]
                s.connection().execute(stmt, params)
            if scores:
                # Two executors may both score a cache hit; the first score wins, the second is a no-op.
                s.connection().execute(
                    _insert_ignore(self.engine, Score.__table__, ["run_id", "metric"]), scores
                )
            s.commit()

    def _finish_cancelled(self) -> None:
        # Pending cells and this executor's own in-flight cells are cancelled; cells other
        # executors are running finish there (their calls are already paid for).
        with Session(self.engine) as s:
            now = utcnow()
            s.execute(
                update(Run)
                .where(Run.sweep_id == self.sweep_id, Run.status == "pending")
                .values(
                    status="cancelled",
                    finished_at=now,
                    error_kind="cancelled",
                    error_message="Cancelled before it ran.",
                )
            )
            s.execute(
                update(Run)
                .where(
                    Run.sweep_id == self.sweep_id,
                    Run.status == "running",
                    Run.claimed_by == self.options.worker_id,
                )
                .values(
                    status="cancelled",
                    finished_at=now,
                    error_kind="cancelled",
                    error_message="Cancelled while its call was in flight; its result was not kept.",
                )
            )
            sweep = s.get(Sweep, self.sweep_id)
            sweep.status = "cancelled"
            sweep.finished_at = now
            s.add(sweep)
            s.commit()

    def _finalize(self) -> None:
        with Session(self.engine) as s:
            remaining = s.exec(
                select(func.count())
                .select_from(Run)
                .where(Run.sweep_id == self.sweep_id, col(Run.status).in_(["pending", "running"]))
            ).one()
            sweep = s.get(Sweep, self.sweep_id)
            if remaining == 0 and sweep.status not in ("cancelled",):
                sweep.status = "done"
                sweep.finished_at = utcnow()
            if self.report.circuit_open:
                notes = "; ".join(f"{m}: {r}" for m, r in self.report.circuit_open.items())
                sweep.error = f"Stopped calling {notes}"
            s.add(sweep)
            s.commit()

    def _unscored_done(self, scoring: ScoringConfig) -> list[claims.Cell]:
        if not scoring.metrics:
            return []
        with Session(self.engine, expire_on_commit=False) as s:
            scored = select(Score.run_id).where(Score.run_id == Run.id)
            stmt = select(
                Run.id, Run.model, Run.params, Run.messages, Run.example_id, Run.variables, Run.output
            ).where(Run.sweep_id == self.sweep_id, Run.status == "done", ~scored.exists())
            return [claims.Cell(*row) for row in s.exec(stmt)]

    # -- the run ---------------------------------------------------------------------------------

    async def run(self) -> ExecutionReport:
        """Execute until no pending cell is left (or cancel); returns what happened."""
        started = time.perf_counter()
        spec, cancelled = await asyncio.to_thread(self._load)
        if cancelled:
            await asyncio.to_thread(self._finish_cancelled)
            self.report.cancelled = True
            return self.report
        self.spec = spec
        self.scoring = ScoringConfig.from_dict(spec.scoring)
        self.retry = self.options.retry or RetryPolicy(max_attempts=int(spec.max_attempts))
        concurrency = int(self.options.concurrency or spec.concurrency)
        self._global = asyncio.Semaphore(concurrency)
        writer = asyncio.create_task(self._writer_loop())
        watcher = asyncio.create_task(self._cancel_watch())
        tasks: set[asyncio.Task] = set()
        # Finished tasks signal an event instead of the loop calling asyncio.wait() on the whole
        # set: that re-registers a callback on every in-flight task per wake-up (O(n) each time).
        wake = asyncio.Event()

        def finished(task: asyncio.Task) -> None:
            tasks.discard(task)
            if not task.cancelled() and task.exception() is not None:
                log.error("cell task failed: %r", task.exception())
            wake.set()

        def spawn(coro) -> None:
            task = asyncio.create_task(coro)
            tasks.add(task)
            task.add_done_callback(finished)

        try:
            # Cells already done (cache hits) still need this sweep's scores.
            for run in await asyncio.to_thread(self._unscored_done, self.scoring):
                spawn(self._score_only(run))
            # Claimed cells wait on the semaphores, so the window keeps a full queue of work while
            # a claim is in flight. Claiming only when a good share of the window is free keeps the
            # number of claim transactions (write locks on SQLite) small.
            window = max(concurrency * 2, 8)
            refill_at = max(1, window // 4)
            exhausted = False
            while not self._cancel.is_set():
                room = window - len(tasks)
                if not exhausted and (room >= refill_at or not tasks):
                    batch = await asyncio.to_thread(
                        claims.claim,
                        self.engine,
                        worker_id=self.options.worker_id,
                        limit=room,
                        sweep_id=self.sweep_id,
                    )
                    for run in batch:
                        spawn(self._cell(run))
                    exhausted = len(batch) < room
                    if not batch and not tasks:
                        break
                    if batch:
                        continue
                if not tasks and exhausted:
                    # Another executor may still release cells (a lease expiry); look once more.
                    exhausted = False
                    continue
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), timeout=0.5)
                except TimeoutError:
                    exhausted = False  # poll for cells other executors returned
        finally:
            for t in list(tasks):
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            watcher.cancel()
            self._stop_writer = True
            self._has_writes.set()
            await writer
            for _ in range(5):  # whatever the writer left queued
                if not (self._pending_writes or self._pending_scores):
                    break
                await self._safe_flush()
        if self._cancel.is_set():
            await asyncio.to_thread(self._finish_cancelled)
            self.report.cancelled = True
        else:
            await asyncio.to_thread(self._finalize)
        self.report.seconds = time.perf_counter() - started
        return self.report

    def cancel(self) -> None:
        """Stop this executor (in-process); cells not finished are marked cancelled."""
        self._cancel.set()

    async def _cancel_watch(self) -> None:
        while not self._cancel.is_set():
            await asyncio.sleep(self.options.cancel_poll)
            if await asyncio.to_thread(self._cancel_requested):
                self._cancel.set()

    _stop_writer = False
    _flush_failures = 0

    async def _writer_loop(self) -> None:
        # Flush as soon as a result exists (so a killed process loses as little as possible);
        # under load, results that arrive during a flush are batched into the next one.
        while not self._stop_writer:
            try:
                await asyncio.wait_for(self._has_writes.wait(), timeout=0.5)
            except TimeoutError:
                continue
            self._has_writes.clear()
            await asyncio.sleep(self.options.flush_interval)
            if self._pending_writes or self._pending_scores:
                await self._safe_flush()
                if self.on_progress:
                    self.on_progress(self.report)

    async def _safe_flush(self) -> None:
        """Flush; on a database error keep the results queued and try again (a paid result is
        never dropped because one write failed). Five failures in a row stop the executor."""
        writes, scores = self._take_writes(), self._take_scores()
        try:
            await asyncio.to_thread(self._flush, writes, scores)
            self._flush_failures = 0
        except Exception as exc:
            self._pending_writes[:0] = writes
            self._pending_scores[:0] = scores
            self._flush_failures += 1
            log.warning("writing results failed (%d in a row): %s", self._flush_failures, exc)
            if self._flush_failures >= 5:
                raise
            await asyncio.sleep(0.2 * self._flush_failures)
            self._has_writes.set()

    def _take_writes(self) -> list[dict[str, Any]]:
        writes, self._pending_writes = self._pending_writes, []
        return writes

    def _take_scores(self) -> list[dict[str, Any]]:
        scores, self._pending_scores = self._pending_scores, []
        return scores

    # -- one cell --------------------------------------------------------------------------------

    def _entry(self, model: str) -> ModelEntry:
        if model not in self._entries:
            self._entries[model] = catalog.get_model(model)
            limit = self._entries[model].max_concurrency
            self._model_sems[model] = asyncio.Semaphore(max(1, int(limit)))
        return self._entries[model]

    async def _cell(self, run: claims.Cell) -> None:
        entry = self._entry(run.model)
        circuit = self._circuits.setdefault(run.model, _Circuit())
        attempts = 0
        error: ProviderError | None = None
        result: CompletionResult | None = None
        # The model's own limit first: cells queued for a one-at-a-time local model must not hold
        # global permits that cloud cells could use meanwhile.
        async with self._model_sems[run.model], self._global:
            while True:
                if circuit.open_reason:
                    error = ProviderError(circuit.open_reason, kind="circuit_open", transient=False)
                    break
                attempts += 1
                self.report.provider_requests += 1
                try:
                    params = {k: v for k, v in run.params.items() if k != "model"}
                    result = await acomplete(
                        run.model,
                        run.messages,
                        params,
                        stream=self.spec.stream,
                        timeout=self.spec.timeout_s,
                        entry=entry,
                    )
                    circuit.successes += 1
                    circuit.consecutive_auth = 0
                    error = None
                    break
                except ProviderError as exc:
                    error = exc
                    self._note_failure(run.model, circuit, exc)
                    if not self.retry.should_retry(exc, attempts) or self._cancel.is_set():
                        break
                    await asyncio.sleep(self.retry.delay(exc, attempts, self.options.rng))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a bug or an unexpected library error: record it, go on
                    log.exception("cell %s failed unexpectedly", run.id)
                    error = ProviderError(
                        f"Internal error: {type(exc).__name__}: {exc}", kind="internal", transient=False
                    )
                    break
        self.report.called += 1
        now = utcnow()
        if result is not None:
            write = {
                "id": run.id,
                "status": "done",
                "attempts": attempts,
                "output": result.text,
                "finish_reason": result.finish_reason,
                "request_id": result.request_id,
                "prompt_tokens": result.prompt_tokens,
                "completion_tokens": result.completion_tokens,
                "cost_usd": result.cost_usd,
                "latency_ms": result.latency_ms,
                "ttft_ms": result.ttft_ms,
                "error_kind": None,
                "error_message": None,
                "finished_at": now,
            }
            if result.finish_reason is None:
                # A stream that ended without a finish reason is recorded, not passed off as complete.
                write["error_kind"] = "no_finish_reason"
            self.report.done += 1
        else:
            assert error is not None
            write = {
                "id": run.id,
                "status": "failed",
                "attempts": attempts,
                "error_kind": error.kind,
                "error_message": str(error),
                "request_id": error.request_id,
                "finished_at": now,
            }
            self.report.failed += 1
        # The result is queued before scoring, so a scorer problem can never lose a paid call.
        self._pending_writes.append(write)
        self._has_writes.set()
        if result is not None:
            await self._score(run, result.text)

    def _note_failure(self, model: str, circuit: _Circuit, exc: ProviderError) -> None:
        if exc.kind not in AUTH_KINDS:
            circuit.consecutive_auth = 0
            return
        circuit.consecutive_auth += 1
        if circuit.open_reason is None and (
            circuit.successes == 0 or circuit.consecutive_auth >= CONSECUTIVE_AUTH_FAILURES_TO_OPEN
        ):
            circuit.open_reason = (
                f"Not called: {model} failed authentication ({exc}). Fix its key, then resume with "
                f"--retry-failed."
            )
            self.report.circuit_open[model] = f"authentication failed ({exc.status_code})"

    async def _score_only(self, run: claims.Cell) -> None:
        await self._score(run, run.output or "")

    async def _score(self, run: claims.Cell, output: str) -> None:
        if not self.scoring.metrics:
            return
        expected = self._expected.get(run.example_id) if run.example_id else None
        try:
            for metric, value, detail in score_output(self.scoring, output, expected):
                self._pending_scores.append(
                    {"run_id": run.id, "metric": metric, "value": value, "detail": detail, "cost_usd": None}
                )
            if "judge" in self.scoring.metrics:
                self._pending_scores.append(await self._judge(run, output, expected))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("scoring run %s failed", run.id)
            self._pending_scores.append(
                {
                    "run_id": run.id,
                    "metric": "scoring_error",
                    "value": None,
                    "detail": f"{type(exc).__name__}: {exc}",
                    "cost_usd": None,
                }
            )
        self._has_writes.set()

    async def _judge(self, run: claims.Cell, output: str, expected: str | None) -> dict[str, Any]:
        model = self.scoring.judge_model
        entry = self._entry(model)
        inputs = self._inputs.get(run.example_id, run.variables) if run.example_id else run.variables
        input_text = "\n".join(f"{k}: {v}" for k, v in (inputs or {}).items()) or run.messages[-1]["content"]
        messages = judge_messages(self.scoring, input_text=input_text, output=output, expected=expected)
        async with self._model_sems[model]:
            for attempt in range(1, self.retry.max_attempts + 1):
                try:
                    res = await acomplete(
                        model, messages, {"temperature": 0, "max_tokens": 16}, stream=False, entry=entry
                    )
                    value = parse_judge(res.text)
                    detail = (
                        None
                        if value is not None
                        else f"no 1-5 score in the judge's reply: {res.text[:200]!r}"
                    )
                    return {
                        "run_id": run.id,
                        "metric": "judge",
                        "value": value,
                        "detail": detail,
                        "cost_usd": res.cost_usd,
                    }
                except ProviderError as exc:
                    if not self.retry.should_retry(exc, attempt):
                        return {
                            "run_id": run.id,
                            "metric": "judge",
                            "value": None,
                            "detail": f"judge failed: {exc}",
                            "cost_usd": None,
                        }
                    await asyncio.sleep(self.retry.delay(exc, attempt, self.options.rng))
        return {
            "run_id": run.id,
            "metric": "judge",
            "value": None,
            "detail": "judge failed",
            "cost_usd": None,
        }


def _insert_ignore(engine: Engine, table: Any, keys: list[str]) -> Any:
    """INSERT ... ON CONFLICT (keys) DO NOTHING for SQLite and PostgreSQL."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table).on_conflict_do_nothing(index_elements=keys)


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


def request_cancel(sweep_id: int, *, engine: Engine | None = None) -> None:
    """Ask every executor of a sweep to stop (honoured within about a second).

    Pending cells are cancelled at once, and so are cells held by executors that died, so a
    sweep whose process is gone still ends up cancelled instead of "running" forever.
    """
    engine = engine or get_engine()
    claims.release_stale(engine, sweep_id=sweep_id)  # dead executors' cells back to pending
    with Session(engine) as s:
        sweep = s.get(Sweep, sweep_id)
        if sweep is None:
            from workbench.errors import NotFoundError

            raise NotFoundError(f"No sweep with id {sweep_id}.")
        if sweep.status in ("done", "cancelled"):
            return
        sweep.cancel_requested = True
        now = utcnow()
        s.execute(
            update(Run)
            .where(Run.sweep_id == sweep_id, Run.status == "pending")
            .values(
                status="cancelled",
                finished_at=now,
                error_kind="cancelled",
                error_message="Cancelled before it ran.",
            )
        )
        in_flight = s.exec(
            select(func.count()).select_from(Run).where(Run.sweep_id == sweep_id, Run.status == "running")
        ).one()
        if not in_flight:  # no live executor holds a cell: nobody else will close the sweep
            sweep.status = "cancelled"
            sweep.finished_at = now
        s.add(sweep)
        s.commit()


def prepare_resume(sweep_id: int, *, retry_failed: bool = False, engine: Engine | None = None) -> int:
    """Make a sweep runnable again: release dead claims, optionally retry failed and cancelled cells.

    Returns the number of cells that will run.
    """
    engine = engine or get_engine()
    claims.release_stale(engine, sweep_id=sweep_id)
    with Session(engine) as s:
        sweep = s.get(Sweep, sweep_id)
        if sweep is None:
            from workbench.errors import NotFoundError

            raise NotFoundError(f"No sweep with id {sweep_id}.")
        sweep.cancel_requested = False
        states = ["failed", "cancelled"] if retry_failed else ["cancelled"]
        s.execute(
            update(Run)
            .where(Run.sweep_id == sweep_id, col(Run.status).in_(states))
            .values(
                status="pending",
                claimed_by=None,
                started_at=None,
                finished_at=None,
                error_kind=None,
                error_message=None,
            )
        )
        pending = s.exec(
            select(func.count())
            .select_from(Run)
            .where(Run.sweep_id == sweep_id, col(Run.status).in_(["pending", "running"]))
        ).one()
        if pending:
            sweep.status = "pending"
            sweep.finished_at = None
            sweep.error = None
        s.add(sweep)
        s.commit()
    return int(pending)
