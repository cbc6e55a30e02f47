"""An optimization whose process died resumes with its calls and cost carried over, or fails saying
what was lost."""

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.optimize_helpers import FAKE, answer, setup
from workbench import config
from workbench.background import BackgroundRunner, resume_orphaned_optimizations
from workbench.db import dispose_engines, session_scope
from workbench.models import Optimization
from workbench.optimize.recovery import MAX_RESTARTS, recover_orphans, restarts_of, start_again
from workbench.optimize.run import OptimizeSpec, create_optimization

DEAD = "{host}:999999:dead"
TASK = ("--prompt", "cap", "--dataset", "caps", "--model", FAKE, "--seed", "1")
TASK += ("--set", "max_bootstrapped_demos=4", "--set", "max_labeled_demos=0")


@pytest.fixture
def env(tmp_path, monkeypatch, fake_server):
    setup(tmp_path, monkeypatch, fake_server)
    return fake_server


def _row(opt_id: int) -> Optimization:
    with session_scope() as s:
        return s.get(Optimization, opt_id)


def test_a_killed_optimization_resumes_with_its_calls_carried_over(env):
    answer(env, latency=0.2)  # every answer right, slow enough to kill the run in its optimizer phase
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "optimize", "run", *TASK, "--optimizer", "bootstrap", "--json"],
        cwd=config.PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    row = None
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        with session_scope() as s:
            row = s.query(Optimization).one_or_none()
        val = len(row.config["plan"]["val_ids"]) if row else 0
        if row and row.config.get("progress", {}).get("phase") == "optimizing" and row.lm_calls > val:
            break
    assert proc.poll() is None, proc.stderr.read()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    dispose_engines()
    killed = _row(row.id)
    calls_at_kill, received_at_kill = killed.lm_calls, env.count()
    assert killed.status == "running" and val < calls_at_kill < killed.call_cap
    # Every call is written to the row before it goes out: none is lost from the count.
    assert calls_at_kill >= received_at_kill

    runner = BackgroundRunner()
    assert resume_orphaned_optimizations(runner) == {row.id: "resumed"}
    runner.wait(f"optimize-{row.id}", timeout=120)
    runner.shutdown()

    done = _row(row.id)
    assert done.status == "done", done.log
    assert done.call_cap == killed.call_cap  # the cap is still the run's total
    made_after = env.count() - received_at_kill
    assert done.lm_calls == calls_at_kill + made_after <= done.call_cap
    assert done.cost_usd > killed.cost_usd > 0
    # The baseline pass had finished: it is kept, so each validation row is asked twice in all
    # (baseline before the kill, final pass after), not three times.
    val_countries = [r["inputs"]["country"] for r in done.program["evaluation"]["final"]]
    assert len(val_countries) == val
    assert all(env.count(f"Capital of {c}?") == 2 for c in val_countries)
    assert [lost.calls for lost in restarts_of(done)] == [calls_at_kill]
    assert "Resuming: they count against the same cap" in done.log
    assert f"resumed with {calls_at_kill} calls already spent" in done.log
    assert "optimizer starts again" in done.log
    assert proposal_ok(done)


def proposal_ok(row: Optimization) -> bool:
    return row.program is not None and row.program["demos"] and row.final_score == 1.0


def _orphan(env, *, spent: int, **changes) -> int:
    import socket

    answer(env)
    spec = OptimizeSpec(prompt="cap", dataset="caps", model=FAKE, optimizer="labeled", settings={"k": 2})
    with session_scope() as s:
        row, _ = create_optimization(s, spec)
        row.status, row.lm_calls, row.cost_usd = "running", spent, 0.002
        runner = DEAD.format(host=socket.gethostname())
        row.config = {
            **row.config,
            "runner": runner,
            "progress": {"phase": "baseline"},
            **changes.pop("config", {}),
        }
        for key, value in changes.items():
            setattr(row, key, value)
        s.add(row)
        s.flush()
        return row.id


def test_a_run_restarted_too_often_fails_saying_what_was_lost(env):
    opt_id = _orphan(env, spent=2, config={"restarts": [{"calls": 1, "phase": "baseline"}] * MAX_RESTARTS})
    assert recover_orphans() == {opt_id: "failed"}
    row = _row(opt_id)
    assert row.status == "failed" and row.finished_at is not None
    assert f"It had already been restarted {MAX_RESTARTS} times." in row.error
    assert "Lost: 2 calls ($0.0020) during the baseline phase" in row.error
    assert "Start it again with the same settings." in row.error and "--" not in row.error
    assert row.config["interrupted"] == {"calls": 2, "cost_usd": 0.002, "phase": "baseline"}


def test_a_cancelled_run_whose_process_died_is_closed_as_cancelled(env):
    opt_id = _orphan(env, spent=1, cancel_requested=True)
    assert recover_orphans() == {opt_id: "cancelled"}
    assert _row(opt_id).status == "cancelled" and "after a cancel was requested" in _row(opt_id).log


def test_recovery_happens_once_even_when_asked_twice(env):
    opt_id = _orphan(env, spent=1)
    assert recover_orphans() == {opt_id: "resumed"}
    assert recover_orphans() == {}  # now owned by this (live) process
    assert _row(opt_id).status == "running" and len(restarts_of(_row(opt_id))) == 1


def test_start_again_plans_a_new_run_with_the_same_settings(env):
    opt_id = _orphan(env, spent=15)
    assert recover_orphans() == {opt_id: "failed"}
    with session_scope() as s:
        again = start_again(s, opt_id)
        new_id = again.id
    new = _row(new_id)
    old = _row(opt_id)
    assert new_id != opt_id and new.status == "pending" and new.lm_calls == 0
    assert new.config["spec"] == old.config["spec"] and new.call_cap == old.call_cap


def call(*argv: str) -> int:
    """Run one command without main's error boundary, so typed errors reach the test."""
    from workbench.cli import build_parser

    args = build_parser().parse_args(list(argv))
    return args.func(args)


def test_optimize_resume_finishes_an_orphan_here_with_its_calls_carried_over(env, capsys):
    import json

    opt_id = _orphan(env, spent=3)
    assert call("optimize", "resume", str(opt_id), "--json") == 0
    out = json.loads(capsys.readouterr().out)
    val = len(_row(opt_id).config["plan"]["val_ids"])
    assert out["status"] == "done" and out["call_cap"] == 16
    assert out["lm_calls"] == 3 + 2 * val == 3 + env.count()  # the 3 spent before count too
    assert [lost.calls for lost in restarts_of(_row(opt_id))] == [3]


def test_optimize_resume_reopens_a_run_its_dead_process_failed(env, capsys):
    import json

    opt_id = _orphan(env, spent=2, config={"restarts": [{"calls": 1, "phase": "baseline"}] * MAX_RESTARTS})
    assert recover_orphans() == {opt_id: "failed"}  # the server gives up on it ...
    assert call("optimize", "resume", str(opt_id), "--json") == 0  # ... a user asking may not
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "done" and out["error"] is None and out["lm_calls"] > 2
    assert len(restarts_of(_row(opt_id))) == MAX_RESTARTS + 1
    assert "Resumed on request having spent 2 calls" in _row(opt_id).log


def test_optimize_resume_refuses_what_cannot_resume_and_again_starts_over(env, capsys):
    import json
    import os
    import socket

    from workbench.errors import ValidationError

    live = _orphan(env, spent=1, config={"runner": f"{socket.gethostname()}:{os.getpid()}:live"})
    with pytest.raises(ValidationError, match="is still running") as err:
        call("optimize", "resume", str(live))
    assert err.value.field == "optimization"
    with session_scope() as s:  # the live run finishes
        row = s.get(Optimization, live)
        row.status = "done"
        s.add(row)
    with pytest.raises(ValidationError, match="cannot resume: it is done") as err:
        call("optimize", "resume", str(live))
    assert err.value.field == "restart" and "--" not in str(err.value)
    assert call("optimize", "again", str(live), "--json") == 0
    again = json.loads(capsys.readouterr().out)
    assert again["id"] != live and again["status"] == "done" and again["lm_calls"] == env.count()


def test_optimize_help_lists_resume_and_again(capsys):
    from workbench.cli import main

    with pytest.raises(SystemExit):
        main(["optimize", "--help"])
    shown = capsys.readouterr().out
    assert "resume" in shown and "again" in shown
