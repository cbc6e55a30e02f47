"""Worker processes started before a sweep needs them, so their slow start overlaps other work.

A worker process spends most of its start importing LiteLLM: 6-8 s of CPU on this class of
machine (2 cores), against a sweep of 3,000 cells at 0 ms that takes about 26 s on one process.
Started when the sweep's process begins to call, a worker runs only the last part of the sweep;
started while the sweep's process plans (it imports LiteLLM too, on the other core) or while a
user reads the Run page's preview, it is ready by the first call, and the sweep runs on every
core from its first cell. `warm` starts them; `Supervisor` (`processes`) takes them, and starts
fresh ones only when none are waiting.

A standby worker (`python -m workbench worker --standby`) gets ready (imports, a first database
connection), says `ready` on its stdout and waits on its stdin for `go SWEEP_ID SHARE_JSON`
(`processes` has the rest of the protocol). The end of its stdin (its parent is gone) ends it,
and so do 15 idle minutes (`worker.IDLE_SECONDS`: a previewed sweep that was never started);
this process kills the ones it did not use when it exits. Standbys are kept per database URL:
a worker runs sweeps of the database it was started for.

`WorkerProcess` is the one handle on a worker process, standby or fresh: a `subprocess.Popen`
(so it can start outside any event loop, before the sweep's loop exists) with a thread that
reads its stdout lines.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)


class WorkerProcess:
    """A `python -m workbench worker --standby` process: its pipes, readiness and output lines."""

    def __init__(self, database_url: str):
        import workbench

        env = dict(os.environ)
        env["WORKBENCH_DATABASE_URL"] = database_url
        root = str(Path(workbench.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.database_url = database_url
        self.started = time.monotonic()
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "workbench", "worker", "--standby"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            # Its own session: a Ctrl-C in the terminal reaches the sweep's process, which decides.
            start_new_session=True,
        )
        self.pid = self.popen.pid
        self.ready = threading.Event()
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        threading.Thread(target=self._read, name=f"workbench-worker-{self.pid}", daemon=True).start()

    def _read(self) -> None:
        stdout = self.popen.stdout
        assert stdout is not None
        with stdout:
            for raw in stdout:
                line = raw.decode(errors="replace").strip()
                if line == "ready":
                    self.ready.set()
                else:
                    self._lines.put(line)
        self._lines.put(None)  # end of output: the process ended (or closed its stdout)

    def lines(self) -> list[str | None]:
        """The lines it printed since the last look (never blocks); None marks the end of output."""
        out: list[str | None] = []
        with contextlib.suppress(queue.Empty):
            while True:
                out.append(self._lines.get_nowait())
        return out

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def send(self, line: str) -> bool:
        """Write a line to its stdin; False if it is gone."""
        stdin = self.popen.stdin
        if stdin is None or stdin.closed:
            return False
        try:
            stdin.write(f"{line}\n".encode())
            stdin.flush()
            return True
        except (OSError, ValueError):
            return False

    def close_input(self) -> None:
        """End of input: a running worker gives its cells back and exits; a standby exits."""
        with contextlib.suppress(OSError, ValueError):
            if self.popen.stdin is not None:
                self.popen.stdin.close()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, OSError):
            self.popen.kill()

    def wait(self, timeout: float | None = None) -> int:
        return self.popen.wait(timeout)


class StandbyPool:
    """This process's standby workers, by database URL (thread-safe: pages and jobs share it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[WorkerProcess] = []

    def warm(self, database_url: str, n: int) -> list[WorkerProcess]:
        """Have `n` standby workers for `database_url` (starting or ready); returns the ones started.

        Standbys for another database are stopped: a process works on one database at a time.
        """
        with self._lock:
            keep = []
            for w in self._waiting:
                if w.alive() and w.database_url == database_url:
                    keep.append(w)
                else:
                    _stop(w)
            started = [WorkerProcess(database_url) for _ in range(max(0, n - len(keep)))]
            self._waiting = keep + started
        if started:
            log.debug("started %s standby worker(s): %s", len(started), [w.pid for w in started])
        return started

    def take(self, database_url: str, n: int) -> list[WorkerProcess]:
        """Up to `n` living standbys for `database_url`, ready ones first; they leave the pool."""
        with self._lock:
            alive = [w for w in self._waiting if w.alive() and w.database_url == database_url]
            alive.sort(key=lambda w: not w.ready.is_set())
            taken = alive[:n]
            self._waiting = [w for w in self._waiting if w not in taken and w.alive()]
        return taken

    def waiting(self, database_url: str) -> int:
        """How many living standbys wait for `database_url`."""
        with self._lock:
            return sum(1 for w in self._waiting if w.alive() and w.database_url == database_url)

    def stop_all(self) -> None:
        """Stop every standby (this process exits, or a test ends)."""
        with self._lock:
            waiting, self._waiting = self._waiting, []
        for w in waiting:
            _stop(w)


def _stop(worker: WorkerProcess) -> None:
    worker.close_input()
    worker.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        worker.wait(5)


_POOL = StandbyPool()
atexit.register(_POOL.stop_all)


def pool() -> StandbyPool:
    """The process-wide pool."""
    return _POOL
