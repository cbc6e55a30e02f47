"""One sweep on several processes, so a big sweep uses every core (LiteLLM spends milliseconds of
CPU per call: one process tops out near 100-200 calls a second on this class of machine).

`run_sweep` runs the sweep in this process at once, with the sweep's whole limits, and
`processes - 1` worker processes (`python -m workbench worker --standby`: fresh interpreters,
never a fork of a process that may hold llama.cpp, threads or connections). They share the
pending cells through the database (`claims`), like any `worker`. A worker imports what a call
needs (LiteLLM: 6-8 s of CPU here), says `ready` on its stdout and waits. Once every worker is
ready, this process shrinks its limits to what the workers do not hold (`limits.partition`),
waits until its calls in flight fit, and only then sends each `go SWEEP SHARE`: at every moment
the shares in use add up to at most the sweep's limits, overall and per model. Workers that are
not ready when this process runs out of cells are stopped: they hold no cell, and a small sweep
does not wait for them.

Where the workers come from: `warm` starts them before the sweep exists (`standby`): `sweep
run` and `sweep resume` while they plan (this process imports LiteLLM meanwhile, on the other
core), the Run page while the user reads the preview. A sweep finds them waiting and goes on
every process from its first cells. Without standbys (the app resuming sweeps on start, a
`run_sweep` call), fresh workers start: at once when asked for N processes, else once they pay.

A worker whose process dies (killed, crashed) is seen within a tick: its cells go back to pending
(`claims.release_stale`) and its share back to this process, which runs them. A cancel reaches
every process through the database within about a second. A worker whose parent goes away (its
stdin closes: the server or the CLI stopped) gives its cells back and exits, so a resume or a
server restart finishes them; it outlives no job.

When it pays: only a sweep whose process is short of CPU goes faster on more processes (one that
waits on a slow provider gains nothing), and a fresh worker gains nothing before it is ready,
while its start takes CPU from the sweep. A sweep with T seconds of calls left on one process,
workers ready after S seconds and a speed-up k once they run, gains when T > S (k - 1 + c) /
(k - 1), c being the share of CPU the start takes from the sweep: T > 1.1 S on a quiet machine
(k 1.8, c 0.1), T > 2.3 S on a busy one (k 1.3, c 0.4). So by default (`processes=None`) a sweep
of fewer than `MIN_CELLS` cells to call, or one that calls only local models (llama.cpp already
uses every core), runs in one process (and `warm` starts no standby for it); a bigger one uses
its waiting standbys at once, or else starts in one process and starts fresh workers once this
process has used `CPU_BOUND` of a core for `FIRST_LOOK` seconds with cells left for at least
`MIN_SECONDS_LEFT` seconds at its pace. Bench numbers: tests/bench/bench_sweep.py, sections 5-7.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass, field, replace

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from workbench.db import get_engine
from workbench.errors import ValidationError
from workbench.models import Run
from workbench.providers import catalog
from workbench.sweeps import claims, lifecycle, standby
from workbench.sweeps.execute import ExecutionReport, ExecutorOptions, SweepExecutor
from workbench.sweeps.limits import Limits, judge_model, max_processes, partition, sweep_limits
from workbench.sweeps.plan import require_sweep, spec_of
from workbench.sweeps.standby import WorkerProcess
from workbench.sweeps.worker import go_line

log = logging.getLogger(__name__)

MIN_CELLS = 500  # fewer cells to call: one process (measured: see the module doc)
CPU_BOUND = 0.7  # this process uses at least this share of a core: more processes can help
MIN_SECONDS_LEFT = 6.0  # cells left for at least this long at the current pace: workers pay
FIRST_LOOK = 0.5  # seconds of pace and CPU use to look at before deciding
START_TIMEOUT = 120.0  # seconds a worker may take to say ready before it is stopped
STOP_TIMEOUT = 10.0  # seconds a worker may take to give its cells back once told to stop
TICK = 0.1


def cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def pending_cells(engine: Engine, sweep_id: int) -> int:
    """How many cells of the sweep wait for an executor."""
    with Session(engine) as s:
        stmt = select(func.count()).select_from(Run).where(Run.sweep_id == sweep_id, Run.status == "pending")
        return int(s.exec(stmt).one())


def choose_processes(
    engine: Engine, sweep_id: int, requested: int | None = None, *, concurrency: int | None = None
) -> tuple[int, Limits]:
    """How many processes may run the sweep, and the sweep's limits.

    `requested` None: one per core for a sweep with at least `MIN_CELLS` cells to call that calls a
    model that is not local, else one (`run_sweep` then starts the workers only once they pay).
    Never more than can each hold a share of every limit they need, nor more than there are cells.
    `concurrency` overrides the sweep's own.
    """
    if requested is not None and requested < 1:
        raise ValidationError("A sweep needs at least one process.", field="processes")
    with Session(engine) as s:
        spec = spec_of(require_sweep(s, sweep_id))
    pending = pending_cells(engine, sweep_id)
    limits = sweep_limits(spec, concurrency)
    if requested is None:
        requested = default_processes(pending, list(limits.models))
    cap = max_processes(limits, spec.models, judge_model(spec))
    return max(1, min(int(requested), cap, pending)), limits


def default_processes(to_call: int, models: list[str]) -> int:
    """The default rule: one per core for `MIN_CELLS` or more cells that call a model that is not
    local, else one (see the module doc)."""
    local_only = all(catalog.get_model(m).kind == "local" for m in models)
    return 1 if local_only or to_call < MIN_CELLS else cores()


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def wants_workers(to_call: int, models: list[str], requested: int | None = None) -> int:
    """How many worker processes a sweep of `to_call` cells on `models` would start (0: none).

    The rule of `choose_processes`, before the sweep is planned (a sweep's limits may allow
    fewer): what `warm` starts standbys for.
    """
    if requested is None:
        requested = default_processes(to_call, models)
    return max(0, min(requested, to_call) - 1)


def warm(engine: Engine, to_call: int, models: list[str], requested: int | None = None) -> int:
    """Start standby workers for a sweep about to be planned or started, so they are ready by its
    first call (see `standby`); returns how many are waiting."""
    n = wants_workers(to_call, models, requested)
    if n:
        standby.pool().warm(_url(engine), n)
    return n


def run_sweep(
    sweep_id: int,
    *,
    processes: int | None = None,
    engine: Engine | None = None,
    options: ExecutorOptions | None = None,
    wait_for_workers: bool = False,
) -> ExecutionReport:
    """Run a sweep to the end on `processes` processes (None: as many as pay, see the module doc).

    Asked for N processes, the workers start at once; by default they start once this process
    is short of CPU with enough cells left (`Supervisor.worth_starting`). `wait_for_workers`:
    make no call until every worker is ready, so all processes run from the first cell
    (benchmarks of the steady state, tests); by default this process starts calling at once.
    """
    engine = engine or get_engine()
    options = options or ExecutorOptions()
    n, limits = choose_processes(engine, sweep_id, processes, concurrency=options.concurrency)
    if n == 1:
        return asyncio.run(SweepExecutor(sweep_id, options, engine=engine).run())
    # Standby workers cost nothing more to use: the sweep runs on them from its first cells.
    at_once = processes is not None or standby.pool().waiting(_url(engine)) > 0
    supervisor = Supervisor(sweep_id, n, limits, engine=engine, options=options, when_worth=not at_once)
    return asyncio.run(supervisor.run(wait_for_workers=wait_for_workers))


@dataclass
class _Worker:
    """A worker process and where it stands: starting, ready, running (told go) or gone."""

    proc: WorkerProcess
    share: Limits
    state: str = "starting"
    report: dict | None = None
    went: bool = False  # told go: it ran (part of) the sweep
    ended: bool = False  # its output ended (it exited): every line it printed was read
    started: float = field(default_factory=time.monotonic)


class Supervisor:
    """Runs a sweep in this process and in `n - 1` worker processes that share its limits."""

    def __init__(
        self,
        sweep_id: int,
        n: int,
        limits: Limits,
        *,
        engine: Engine,
        options: ExecutorOptions,
        when_worth: bool = False,
    ):
        self.sweep_id = sweep_id
        self.when_worth = when_worth  # start the workers once they pay, not at once
        self._mark: tuple[float, float, int] | None = None
        self.limits = limits
        self.shares = partition(limits, n)
        self.engine = engine
        self.options = options
        self.workers: list[_Worker] = []
        self.handing_over = False
        self.executor: SweepExecutor | None = None

    def _own_limits(self) -> Limits:
        """The sweep's limits minus what running (or about to run) workers hold."""
        own = self.limits
        for w in self.workers:
            if w.state in ("handing", "running"):
                own = own.minus(w.share)
        return own

    def _others_running(self) -> bool:
        return self.handing_over or any(w.state in ("running", "handing") for w in self.workers)

    def _executor(self) -> SweepExecutor:
        options = replace(self.options, limits=self._own_limits(), others_running=self._others_running)
        self.executor = SweepExecutor(self.sweep_id, options, engine=self.engine)
        return self.executor

    async def run(self, *, wait_for_workers: bool = False) -> ExecutionReport:
        """Execute until no cell is left (or a cancel); the report adds up every process's."""
        started = time.perf_counter()
        report = ExecutionReport(self.sweep_id)
        watcher = None
        graceful = False
        try:
            if not self.when_worth:
                await self._start_workers()
                if wait_for_workers:
                    await self._all_ready()
            watcher = asyncio.create_task(self._watch())
            # A worker that dies after this process ran out of cells leaves its cells pending:
            # run again (bounded: with no worker left, one pass runs everything).
            for _ in range(3):
                _add(report, await self._executor().run())
                await self._wait_running()
                if report.cancelled or not await asyncio.to_thread(
                    lifecycle.pending_sweep_ids, self.engine, sweep_id=self.sweep_id
                ):
                    break
            graceful = True
        finally:
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
            await self._stop_all(graceful)
        for w in self.workers:
            if w.report:
                _add(report, ExecutionReport(**w.report))
        report.processes = 1 + sum(1 for w in self.workers if w.went)
        report.seconds = time.perf_counter() - started
        return report

    # -- workers ---------------------------------------------------------------------------------

    async def _start_workers(self) -> None:
        self.when_worth = False
        shares = self.shares[1:]
        waiting = standby.pool().take(_url(self.engine), len(shares))
        procs = waiting + [None] * (len(shares) - len(waiting))
        self.workers = [self._start(share, proc) for share, proc in zip(shares, procs, strict=True)]
        log.debug("sweep %s: %s standby worker(s) of %s", self.sweep_id, len(waiting), len(shares))

    async def worth_starting(self, executor: SweepExecutor) -> bool:
        """True once this process is short of CPU and the cells left would keep it busy for
        longer than workers take to start (`CPU_BOUND`, `MIN_SECONDS_LEFT`)."""
        now, cpu, called = time.monotonic(), time.process_time(), executor.report.called
        if self._mark is None:
            self._mark = (now, cpu, called)
            return False
        then, cpu_then, called_then = self._mark
        if now - then < FIRST_LOOK:
            return False
        self._mark = (now, cpu, called)
        busy, pace = (cpu - cpu_then) / (now - then), (called - called_then) / (now - then)
        if busy < CPU_BOUND or pace <= 0:
            return False
        left = await asyncio.to_thread(pending_cells, self.engine, self.sweep_id) / pace
        log.debug("sweep %s: CPU %.0f%%, %.0f cells/s, %.1f s left", self.sweep_id, busy * 100, pace, left)
        return left >= MIN_SECONDS_LEFT

    def _start(self, share: Limits, proc: WorkerProcess | None = None) -> _Worker:
        """A worker for `share`: a standby from the pool, else a fresh process."""
        proc = proc or WorkerProcess(_url(self.engine))
        return _Worker(proc, share, started=proc.started)

    def _poll(self, worker: _Worker) -> None:
        """Take in what a worker said since the last tick: ready, its report, the end of output."""
        if worker.state == "starting" and worker.proc.ready.is_set():
            worker.state = "ready"
            log.debug("worker %s ready after %.2f s", worker.proc.pid, time.monotonic() - worker.started)
        for line in worker.proc.lines():
            if line is None:
                worker.ended = True
            elif line.startswith("report "):
                with contextlib.suppress(ValueError, TypeError):
                    worker.report = json.loads(line[len("report ") :])
                log.debug("worker %s reported", worker.proc.pid)
                if worker.state == "running":
                    # Its executor ended: every cell it held is written (or given back), so this
                    # process need not wait for its interpreter to exit.
                    worker.state = "done"
                    self._returned(worker)

    async def _output_end(self, worker: _Worker, timeout: float = 5.0) -> None:
        """Wait until the reader saw the end of a dead worker's output (its report is read)."""
        deadline = time.monotonic() + timeout
        self._poll(worker)
        while not worker.ended and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            self._poll(worker)

    async def _watch(self) -> None:
        """Notice workers that ended or died, hand shares to ready workers, stop useless ones."""
        while True:
            if self.when_worth and self.executor is not None and await self.worth_starting(self.executor):
                await self._start_workers()
            for w in self.workers:
                self._poll(w)
            await self._reap()
            waiting = [w for w in self.workers if w.state in ("starting", "ready")]
            executor = self.executor
            if waiting and executor is not None and not self.handing_over:
                # Late: still not ready long after its start (a standby that has waited ready for
                # minutes, while the user read the preview, is not late).
                late = [
                    w
                    for w in waiting
                    if w.state == "starting" and time.monotonic() - w.started > START_TIMEOUT
                ]
                if executor.idle or late:  # nothing left for them, or they will not come up
                    log.debug("stopping workers not needed: idle=%s late=%s", executor.idle, len(late))
                    for w in waiting if executor.idle else late:
                        self._kill(w)
                elif all(w.state == "ready" for w in waiting):
                    await self._hand_over(executor, waiting)
            await asyncio.sleep(TICK)

    async def _all_ready(self) -> None:
        """Wait until every worker is ready (or gone, or late), then let the ready ones go."""

        def coming(w: _Worker) -> bool:
            return w.state == "starting" and time.monotonic() - w.started < START_TIMEOUT

        while any(coming(w) and w.proc.returncode is None for w in self.workers):
            await asyncio.sleep(TICK)
            for w in self.workers:
                self._poll(w)
        await self._hand_over(None, [w for w in self.workers if w.state == "ready"])

    async def _hand_over(self, executor: SweepExecutor | None, ready: list[_Worker]) -> None:
        """Shrink this process's limits, wait until its calls fit, then let the workers go."""
        self.handing_over = True
        try:
            for w in ready:
                w.state = "handing"
            if executor is not None:
                executor.set_limits(self._own_limits())
                await executor.shed()
                await executor.drained()
            log.debug("handing over to %s", [w.proc.pid for w in ready])
            for w in ready:
                if w.proc.returncode is None and w.proc.send(go_line(self.sweep_id, w.share)):
                    w.state, w.went = "running", True
                else:
                    w.state = "gone"
            if executor is not None:  # a worker that died meanwhile gives its share back
                executor.set_limits(self._own_limits())
        finally:
            self.handing_over = False

    async def _reap(self) -> None:
        """Workers whose process ended: a dead one's cells go back to pending, its share to us."""
        for w in self.workers:
            if w.state == "gone" or w.proc.returncode is None:
                continue
            was, w.state = w.state, "gone"  # before any await: reaped once, whoever calls
            await self._output_end(w)  # its last lines (the report) are read
            log.debug("worker %s exited %s", w.proc.pid, w.proc.returncode)
            if was not in ("running", "handing"):
                continue  # never ran, or reported its end (its cells are written)
            if w.proc.returncode != 0 or w.report is None:
                log.warning("sweep %s: worker %s stopped (%s)", self.sweep_id, w.proc.pid, w.proc.returncode)
                # Its process is gone, so its claims are those of a dead pid: back to pending.
                await asyncio.to_thread(claims.release_stale, self.engine, sweep_id=self.sweep_id)
            self._returned(w)

    def _returned(self, worker: _Worker) -> None:
        """A worker no longer runs: its share comes back to this process, which looks for cells."""
        if self.executor is not None:
            self.executor.set_limits(self._own_limits())
            self.executor.poke()  # its cells may be pending again; or it was the last one

    def _kill(self, worker: _Worker) -> None:
        """Stop a worker that was never told go (it holds no cell)."""
        worker.proc.kill()
        worker.state = "stopping"

    async def _wait_running(self) -> None:
        while any(w.state in ("running", "handing") for w in self.workers):
            await asyncio.sleep(TICK)
            for w in self.workers:
                self._poll(w)
        await self._reap()

    @staticmethod
    async def _exited(worker: _Worker, timeout: float | None) -> bool:
        """Wait for a worker's process to exit; False if it is still running after `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while worker.proc.returncode is None:
            if deadline is not None and time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def _stop_all(self, graceful: bool) -> None:
        """Every worker exits: running ones finish (or, after a failure, give their cells back)."""
        for w in self.workers:
            if w.proc.returncode is not None:
                continue
            if w.state in ("starting", "ready", "stopping"):
                self._kill(w)
            elif not graceful:
                w.proc.close_input()  # end of input: the worker gives its cells back and exits
        deadline = None if graceful else STOP_TIMEOUT
        for w in self.workers:
            if not await self._exited(w, deadline):
                self._kill(w)
                await self._exited(w, None)
            w.proc.close_input()
        await self._reap()


def _add(total: ExecutionReport, part: ExecutionReport) -> None:
    """Add what one executor did to `total`."""
    total.called += part.called
    total.done += part.done
    total.failed += part.failed
    total.provider_requests += part.provider_requests
    total.cancelled = total.cancelled or part.cancelled
    total.circuit_open.update(part.circuit_open)
