"""DSPy's own output during a run goes to that run's log, never to the terminal or stdout.

DSPy prints ("Bootstrapped 4 full traces after 4 examples ..."), draws tqdm progress bars on
stderr, and logs through the "dspy" logger (GEPA's progress included). In the Streamlit
server that lands in the server's terminal; under `optimize run --json` it corrupts the JSON on
stdout. While `captured_output(reporter)` is active:

- sys.stdout and sys.stderr are wrapped (once per process, however many runs are active) by a
  stream that sends text written by a thread of a running optimization to that run's log, and
  passes every other thread's text through unchanged. A tqdm bar's redraws (separated by carriage
  returns) update one log line instead of adding one per redraw.
- Records of the "dspy" logger from a run's thread are written to its log as plain lines, and
  DSPy's own handler is kept from printing them. Other libraries' handlers (optuna's, created
  when MIPROv2 imports it during a run) write to the wrapped stderr, so their lines are routed too.

A thread belongs to a run when it runs the optimization, or when DSPy started it for the run:
DSPy's ParallelExecutor carries the run's `dspy.context(...)` into its worker threads, and that
context names the run (`captured_output` yields the setting to pass to `dspy.context`).
"""

from __future__ import annotations

import logging
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from workbench.optimize.adapter import dspy  # noqa: F401 - DSPy is imported the workbench's way first

RUN_SETTING = "workbench_run"  # the dspy.context key naming the run a thread works for
LOGGERS = ("dspy",)
MAX_LINE = 500

_lock = threading.Lock()
_sinks: dict[str, _Sink] = {}  # run key -> its sink
_threads: dict[int, _Sink] = {}  # the thread running each optimization -> its sink
_installed: dict[str, Any] = {}  # while any run is active: the wrapped streams, handler and filter
_local = threading.local()  # .busy: this thread is writing to a run's log (anything it prints then
# goes to the process's stderr, so writing the log can never loop back into itself)


def _overrides() -> Any:
    from dspy.dsp.utils.settings import thread_local_overrides

    return thread_local_overrides.get()


def _sink_here() -> _Sink | None:
    """The sink of the run the current thread works for, or None."""
    if getattr(_local, "busy", False):
        return None
    sink = _threads.get(threading.get_ident())
    if sink is None and _sinks:
        key = _overrides().get(RUN_SETTING)
        sink = _sinks.get(key) if key is not None else None
    return sink


def _visible(text: str) -> str:
    """What a terminal would show of a line redrawn with carriage returns: its last non-empty part."""
    parts = [p for p in text.split("\r") if p.strip()]
    return parts[-1].rstrip()[:MAX_LINE] if parts else ""


class _Sink:
    """One run's destination: complete lines go to its log, a bar being redrawn updates one line."""

    def __init__(self, reporter: Any):
        self.reporter = reporter
        self.pending: dict[int, str] = {}  # thread -> text after its last newline
        self.lock = threading.Lock()

    def write(self, text: str) -> None:
        tid = threading.get_ident()
        key = (id(self), tid)
        with self.lock:
            *lines, rest = (self.pending.pop(tid, "") + text).split("\n")
            if "\r" in rest:  # keep only the bar's latest drawing
                rest = rest[rest.rfind("\r") :]
            if rest:
                self.pending[tid] = rest
        for line in lines:
            self.reporter.live(key, _prefixed(_visible(line)), final=True)
        if "\r" in rest and _visible(rest):
            self.reporter.live(key, _prefixed(_visible(rest)), final=False)

    def close(self) -> None:
        """Write what is left after the last newline of every thread."""
        with self.lock:
            left = list(self.pending.items())
            self.pending.clear()
        for tid, rest in left:
            self.reporter.live((id(self), tid), _prefixed(_visible(rest)), final=True)


def _prefixed(text: str) -> str | None:
    return f"dspy: {text}" if text else None


@contextmanager
def _busy() -> Iterator[None]:
    _local.busy = True
    try:
        yield
    finally:
        _local.busy = False


class _RoutedStream:
    """sys.stdout / sys.stderr while runs are active: a run's threads write to its log."""

    def __init__(self, original: Any):
        self._original = original

    def write(self, text: str) -> int:
        if getattr(_local, "busy", False):
            return (sys.__stderr__ or self._original).write(text)
        sink = _sink_here()
        if sink is None:
            return self._original.write(text)
        with _busy():
            sink.write(str(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if _sink_here() is None:
            self._original.flush()

    def isatty(self) -> bool:
        return False if _sink_here() is not None else self._original.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


class _ToRunLog(logging.Handler):
    """Writes a run's log records (from its threads) to its log."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)

    def emit(self, record: logging.LogRecord) -> None:
        sink = _sink_here()
        if sink is None:
            return
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record must not stop the run
            message = str(record.msg)
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        name = record.name.split(".")[0]
        with _busy():
            for line in message.splitlines():
                if line.strip():
                    sink.reporter.log(f"{name}: {level}{line[:MAX_LINE]}")


class _NotFromRun(logging.Filter):
    """Keeps the loggers' own handlers from printing what a run's log already has."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _sink_here() is None


def _install() -> None:
    handler, keep_out = _ToRunLog(), _NotFromRun()
    loggers = [logging.getLogger(name) for name in LOGGERS]
    others = [(lg, h) for lg in loggers for h in lg.handlers]
    for _, h in others:
        h.addFilter(keep_out)
    for lg in loggers:
        lg.addHandler(handler)
    stdout, stderr = _RoutedStream(sys.stdout), _RoutedStream(sys.stderr)
    sys.stdout, sys.stderr = stdout, stderr
    _installed.update(
        handler=handler, filter=keep_out, loggers=loggers, others=others, streams=(stdout, stderr)
    )


def _uninstall() -> None:
    stdout, stderr = _installed["streams"]
    # Restore only what is still ours: a stream wrapped again since then stays as it is (ours inside
    # it passes everything through once no run is active).
    if sys.stdout is stdout:
        sys.stdout = stdout._original
    if sys.stderr is stderr:
        sys.stderr = stderr._original
    for lg in _installed["loggers"]:
        lg.removeHandler(_installed["handler"])
    for _, h in _installed["others"]:
        h.removeFilter(_installed["filter"])
    _installed.clear()


@contextmanager
def captured_output(reporter: Any) -> Iterator[dict[str, str]]:
    """Route DSPy's prints, bars and log records of this run into `reporter`'s log (see the module doc).

    Yields the `dspy.context` setting that marks DSPy's worker threads as this run's.
    """
    key = uuid.uuid4().hex
    sink = _Sink(reporter)
    tid = threading.get_ident()
    with _lock:
        if not _sinks:
            _install()
        _sinks[key] = sink
        _threads[tid] = sink
    try:
        yield {RUN_SETTING: key}
    finally:
        with _lock:
            _threads.pop(tid, None)
            _sinks.pop(key, None)
            if not _sinks:
                _uninstall()
        sink.close()
