"""Long work outside the request thread: a small pool that runs sweeps and optimizations.

The Streamlit server holds one `BackgroundRunner` per process (via st.cache_resource in
`workbench.ui.background`); it never calls `st.*`. State lives in the database, so pages poll it,
closing a tab does not stop the work, and a restarted server can resume pending cells.
"""

from __future__ import annotations

import logging
import socket
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


def run_sweep_job(sweep_id: int) -> None:
    """The background job for a sweep: execute its pending cells to the end.

    If the executor fails (a database outage, a bug), the error is written on the sweep and this
    process's claims are released, so the page says what happened and Resume can finish it.
    """
    from workbench.sweeps import lifecycle
    from workbench.sweeps.execute import execute_sweep

    try:
        execute_sweep(sweep_id)
    except Exception as exc:
        log.exception("sweep %s stopped", sweep_id)
        lifecycle.mark_stopped(sweep_id, exc)
        raise


def fail_orphaned_optimizations() -> list[int]:
    """Optimizations left 'running' by a process that no longer exists are marked failed."""
    from sqlmodel import Session, col, select

    from workbench.db import get_engine
    from workbench.models import Optimization, utcnow
    from workbench.sweeps.claims import claim_is_dead

    orphaned = []
    with Session(get_engine()) as s:
        for row in s.exec(select(Optimization).where(col(Optimization.status) == "running")):
            runner_id = (row.config or {}).get("runner") or ""
            # Only runs of this machine are judged: a live run elsewhere has no lease to expire.
            if runner_id.split(":")[0] == socket.gethostname() and claim_is_dead(runner_id, row.created_at):
                row.status = "failed"
                row.error = (
                    "The process running this optimization stopped (a restart or crash); start it again."
                )
                row.finished_at = utcnow()
                s.add(row)
                orphaned.append(row.id)
        s.commit()
    return orphaned


def resume_unfinished_sweeps(runner: BackgroundRunner) -> list[int]:
    """On server start: release claims of dead processes and restart sweeps left running."""
    from workbench.sweeps import lifecycle

    ids = lifecycle.unfinished_sweeps()
    for sweep_id in ids:
        runner.submit(f"sweep-{sweep_id}", run_sweep_job, sweep_id)
    return ids
