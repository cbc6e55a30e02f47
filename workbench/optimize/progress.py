"""Progress of one optimization run: the row's reporter and the best program DSPy has scored.

`Reporter` writes progress, the log, calls and cost to the Optimization row (throttled) and reads
its cancel flag; `BestSeen` is a DSPy callback that remembers the best program any evaluation
inside the optimizer scored, for the progress panel and for salvage when a run stops early.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlmodel import select

from workbench import present
from workbench.db import session_scope
from workbench.models import Optimization
from workbench.optimize.adapter import dspy
from workbench.optimize.engine import CallBudget, CallRecord

BaseCallback = dspy.utils.callback.BaseCallback

MAX_LOG_LINES = 400
FLUSH_EVERY_S = 0.5


class Reporter:
    """Writes progress to the Optimization row (throttled) and reads its cancel flag."""

    def __init__(self, optimization_id: int, log: str = ""):
        self.id = optimization_id
        self.lines: list[str] = log.splitlines()  # a resumed run keeps the log of its first attempt
        self.progress: dict[str, Any] = {"phase": "starting", "best_score": None}
        self.kept: dict[str, Any] = {}  # results a restarted run can reuse, written into the row's config
        self.budget: CallBudget | None = None
        self._live_key: object = None  # the source whose line is still being redrawn (a progress bar)
        self._last_flush = 0.0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one write at a time, so the last one has the latest count

    def log(self, message: str) -> None:
        """Add a timestamped line to the run's log."""
        with self._lock:
            self.lines.append(f"{time.strftime('%H:%M:%S')} {message}")
            del self.lines[:-MAX_LOG_LINES]
            self._live_key = None
        self.flush(force=False)

    def live(self, key: object, message: str | None, *, final: bool) -> None:
        """A line from `key` (a progress bar's writer) that replaces its previous drawing, if that is
        still the last line; `final` ends it, so the next drawing starts a new line."""
        with self._lock:
            if message is not None:
                line = f"{time.strftime('%H:%M:%S')} {message}"
                if self._live_key == key and self.lines:
                    self.lines[-1] = line
                else:
                    self.lines.append(line)
                    del self.lines[:-MAX_LOG_LINES]
                self._live_key = None if final else key
            elif final and self._live_key == key:
                self._live_key = None
        self.flush(force=False)

    def phase(self, phase: str, **extra: Any) -> None:
        """Enter a phase (baseline, optimizing, final) and write it at once."""
        self.progress.update(phase=phase, **extra)
        self.log(f"phase: {phase}")
        self.flush(force=True)

    def cancel_requested(self) -> bool:
        """True when the user asked this run to stop (read from the database)."""
        with session_scope() as s:
            return bool(
                s.exec(select(Optimization.cancel_requested).where(Optimization.id == self.id)).first()
            )

    def on_call(self, record: CallRecord) -> None:
        """Log a failed call; write progress now and then."""
        if record.error is not None:
            self.log(f"{record.role} call to {record.model} failed ({record.error.kind}): {record.error}")
        self.flush(force=False)

    def on_acquire(self) -> None:
        """Write the call count before each call goes out: if the process dies, no call goes uncounted."""
        self.flush(force=True)

    def flush(self, force: bool = True, **fields: Any) -> None:
        """Write progress, log, calls and cost (and any `fields`) to the row; throttled unless forced."""
        now = time.monotonic()
        if not force and now - self._last_flush < FLUSH_EVERY_S:
            return
        self._last_flush = now
        with self._write_lock:
            self._write(fields)

    def _write(self, fields: dict[str, Any]) -> None:
        with self._lock:
            log = "\n".join(self.lines)
        with session_scope() as s:
            row = s.get(Optimization, self.id)
            if self.budget is not None:
                row.lm_calls = self.budget.calls
                row.cost_usd = self.budget.cost_usd if self.budget.cost_known else None
            row.log = log
            row.config = {**row.config, **self.kept, "progress": dict(self.progress)}
            for key, value in fields.items():
                setattr(row, key, value)
            s.add(row)


class BestSeen(BaseCallback):
    """Remembers the best program any optimizer-internal Evaluate scored (for salvage and progress)."""

    def __init__(self, reporter: Reporter):
        self.reporter = reporter
        self.started: dict[str, tuple[Any, int]] = {}
        self.best: tuple[float, int, Any] | None = None  # (score 0-1, rows, program)

    def on_evaluate_start(self, call_id, instance, inputs):
        """Remember which program an Evaluate scores, and on how many rows."""
        devset = inputs.get("devset") or getattr(instance, "devset", None) or []
        self.started[call_id] = (inputs.get("program"), len(devset))

    def on_evaluate_end(self, call_id, outputs, exception=None):
        """Keep the program if it beats the best seen on at least as many rows."""
        program, rows = self.started.pop(call_id, (None, 0))
        if exception is not None or outputs is None or program is None:
            return
        score = float(outputs.score) / 100  # Evaluate reports percent
        # Only evaluations over the most rows compare fairly (MIPROv2 also scores minibatches).
        if self.best is None or (rows, score) > (self.best[1], self.best[0]):
            self.best = (score, rows, program.deepcopy())
            self.reporter.progress["best_score"] = round(score, 4)
            self.reporter.log(f"best so far: {present.score(score)} on {rows} training rows")
