"""Long work outside the request thread: a small pool that runs sweeps and optimizations.

The Streamlit server holds one `BackgroundRunner` per process (via st.cache_resource in
`workbench.ui.background`); it never calls `st.*`. State lives in the database, so pages poll it,
closing a tab does not stop the work, and a restarted server resumes pending cells and the
optimizations a dead process left running.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)


class BackgroundRunner:
    """Runs named jobs in threads; a job with the same key is not started twice."""

    def __init__(self, max_workers: int = 4):
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="workbench-bg")
        self._jobs: dict[str, Future] = {}
        self._lock = threading.Lock()

    def submit(self, key: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        """Start `fn` under `key` unless a job with that key is still running; True if started."""
        with self._lock:
            current = self._jobs.get(key)
            if current is not None and not current.done():
                return False
            future = self._pool.submit(self._guard, key, fn, *args, **kwargs)
            self._jobs[key] = future
            return True

    @staticmethod
    def _guard(key: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception:
            log.exception("background job %s failed", key)
            raise

    def running(self, key: str) -> bool:
        """True while the job `key` has not finished."""
        with self._lock:
            job = self._jobs.get(key)
            return job is not None and not job.done()

    def any_running(self, prefix: str) -> bool:
        """True while a job whose key starts with `prefix` has not finished."""
        with self._lock:
            return any(key.startswith(prefix) and not job.done() for key, job in self._jobs.items())

    def error(self, key: str) -> BaseException | None:
        """The exception a finished job raised, if any."""
        with self._lock:
            job = self._jobs.get(key)
        if job is None or not job.done() or job.cancelled():
            return None
        return job.exception()

    def wait(self, key: str, timeout: float | None = None) -> None:
        """Block until job `key` finishes (tests and shutdown)."""
        with self._lock:
            job = self._jobs.get(key)
        if job is not None:
            job.exception(timeout=timeout)

    def shutdown(self) -> None:
        """Stop accepting jobs and wait for running ones."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def run_sweep_job(sweep_id: int, processes: int | None = None) -> None:
    """The background job for a sweep: execute its pending cells to the end.

    A big sweep also runs in worker processes (`workbench.sweeps.processes`), started by this job
    and gone when it ends: they outlive neither the job nor the server (a server that stops
    closes their input, so they give their cells back and a restart resumes them), and a closed
    tab does not stop them. If the executor fails (a database outage, a bug), the error is
    written on the sweep and this process's claims are released, so the page says what happened
    and Resume can finish it.
    """
    from workbench.sweeps import lifecycle
    from workbench.sweeps.processes import run_sweep

    try:
        run_sweep(sweep_id, processes=processes)
    except Exception as exc:
        log.exception("sweep %s stopped", sweep_id)
        lifecycle.mark_stopped(sweep_id, exc)
        raise


def run_optimization_job(optimization_id: int) -> str:
    """The background job for an optimization: run it to its end (DSPy is imported here, not at start-up)."""
    from workbench.optimize.worker import run_optimization

    return run_optimization(optimization_id)


def resume_orphaned_optimizations(runner: BackgroundRunner) -> dict[int, str]:
    """On server start: restart optimizations a dead process left running, calls and cost carried over.

    Those that cannot restart are marked failed, saying what was lost. Returns id -> resumed | failed |
    cancelled.
    """
    from workbench.optimize.recovery import recover_orphans

    outcomes = recover_orphans()
    for optimization_id, outcome in outcomes.items():
        if outcome == "resumed":
            runner.submit(f"optimize-{optimization_id}", run_optimization_job, optimization_id)
    return outcomes


def resume_unfinished_sweeps(runner: BackgroundRunner) -> list[int]:
    """On server start: release claims of dead processes and restart sweeps left running."""
    from workbench.sweeps import lifecycle

    ids = lifecycle.unfinished_sweeps()
    for sweep_id in ids:
        runner.submit(f"sweep-{sweep_id}", run_sweep_job, sweep_id)
    return ids
