"""DSPy's prints, progress bars and log lines go to the optimization's log, not to stdout or stderr."""

import json
import logging
import re
import sys
import threading

import pytest

from tests.optimize_helpers import FAKE, answer, setup
from workbench.cli import build_parser
from workbench.db import session_scope
from workbench.models import Optimization
from workbench.optimize.capture import captured_output

TASK = ["--prompt", "cap", "--dataset", "caps", "--model", FAKE, "--seed", "1"]


def call(*argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return args.func(args)


@pytest.fixture
def env(tmp_path, monkeypatch, fake_server):
    setup(tmp_path, monkeypatch, fake_server)
    answer(fake_server)
    return fake_server


def test_optimize_json_prints_only_json_and_the_log_has_dspys_output(env, capsys):
    code = call(
        "optimize", "run", *TASK, "--optimizer", "bootstrap", "--set", "max_labeled_demos=0", "--json"
    )
    captured = capsys.readouterr()
    out = json.loads(captured.out)  # nothing but the JSON on stdout
    assert code == 0 and out["status"] == "done"
    # DSPy printed its bootstrap summary and drew a tqdm bar: both are in the run's log ...
    with session_scope() as s:
        log = s.get(Optimization, out["id"]).log
    assert re.search(r"\d\d:\d\d:\d\d dspy: Bootstrapped \d+ full traces after \d+ examples", log)
    bars = [line for line in log.splitlines() if re.search(r"dspy: +\d+%\|.*\| \d+/4 ", line)]
    assert len(bars) == 1  # the redraws of one bar make one line
    # ... and none of it reached the terminal.
    assert "Bootstrapped" not in captured.err and "%|" not in captured.err


class _Log:
    """Stands in for a Reporter: collects what the capture writes."""

    def __init__(self):
        self.lines: list[str] = []

    def log(self, message: str) -> None:
        self.lines.append(message)

    def live(self, key, message, *, final: bool) -> None:
        if message is not None:
            self.lines.append(message)


def test_only_the_runs_threads_are_captured(capsys):
    from workbench.optimize.adapter import dspy

    log = _Log()
    original = sys.stdout
    with captured_output(log) as run_key:
        print("from the run's thread")
        logging.getLogger("dspy.teleprompt").info("a DSPy log line")
        with dspy.context(**run_key):
            from dspy.utils.parallelizer import ParallelExecutor

            # DSPy's worker threads carry the run's context: theirs is the run's output too.
            ParallelExecutor(num_threads=2, disable_progress_bar=True).execute(
                lambda i: print(f"worker {i}"), [1, 2]
            )
        other = threading.Thread(target=print, args=("from another thread",))
        other.start()
        other.join()
    assert sys.stdout is original  # unwrapped when the last run ends
    assert "dspy: from the run's thread" in log.lines and "dspy: a DSPy log line" in log.lines
    assert {"dspy: worker 1", "dspy: worker 2"} <= set(log.lines)
    out = capsys.readouterr().out
    assert out == "from another thread\n"  # someone else's output passes through untouched
