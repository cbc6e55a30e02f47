"""Server start-up recovery: sweeps and optimizations a dead process left running resume."""

import socket

from sqlmodel import select

from tests.optimize_helpers import FAKE, answer, setup
from tests.sweep_helpers import plan, seed, write_models_file
from workbench.background import BackgroundRunner, resume_orphaned_optimizations, resume_unfinished_sweeps
from workbench.db import get_engine, migrate, session_scope
from workbench.models import Optimization, Run, Sweep
from workbench.optimize.run import OptimizeSpec, create_optimization
from workbench.sweeps import claims

DEAD = f"{socket.gethostname()}:999999:dead"


def test_restart_resumes_a_sweep_a_dead_process_was_running(fake_server, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_MODELS", str(write_models_file(tmp_path / "m.toml", fake_server.base_url)))
    monkeypatch.setenv("WB_FAKE_KEY", "k")
    migrate()
    seed(5)
    sweep_id = plan()
    claims.claim(get_engine(), worker_id=DEAD, limit=3, sweep_id=sweep_id)  # the "crashed" server's cells
    with session_scope() as s:
        sweep = s.get(Sweep, sweep_id)
        sweep.status = "running"
        s.add(sweep)
    runner = BackgroundRunner()
    assert resume_unfinished_sweeps(runner) == [sweep_id]
    runner.wait(f"sweep-{sweep_id}", timeout=60)
    with session_scope() as s:
        assert {r.status for r in s.exec(select(Run).where(Run.sweep_id == sweep_id))} == {"done"}
        assert s.get(Sweep, sweep_id).status == "done"
    assert fake_server.count() == 5
    runner.shutdown()


def test_start_up_resumes_or_fails_optimizations_of_dead_processes_only(tmp_path, monkeypatch, fake_server):
    setup(tmp_path, monkeypatch, fake_server)
    answer(fake_server)
    spec = OptimizeSpec(prompt="cap", dataset="caps", model=FAKE, optimizer="labeled", settings={"k": 2})
    with session_scope() as s:
        rows = [create_optimization(s, spec)[0] for _ in range(3)]
        for row, runner_id, spent in zip(rows, (DEAD, DEAD, claims.new_worker_id()), (3, 15, 3), strict=True):
            row.status, row.lm_calls, row.cost_usd = "running", spent, 0.01
            row.config = {**row.config, "runner": runner_id, "progress": {"phase": "optimizing"}}
            s.add(row)
        s.flush()
        resumable, spent_out, alive = (r.id for r in rows)
    runner = BackgroundRunner()
    outcomes = resume_orphaned_optimizations(runner)
    assert outcomes == {resumable: "resumed", spent_out: "failed"}
    runner.wait(f"optimize-{resumable}", timeout=120)
    runner.shutdown()
    with session_scope() as s:
        done, failed = s.get(Optimization, resumable), s.get(Optimization, spent_out)
        assert done.status == "done" and done.call_cap == 16  # the cap is still the total
        assert done.lm_calls == 3 + fake_server.count() <= 16  # the 3 calls spent before carry over
        assert failed.status == "failed" and failed.lm_calls == 15
        assert "Lost: 15 calls ($0.0100) during the optimizing phase" in failed.error
        assert "Only 1 of its 16 calls remain" in failed.error
        assert s.get(Optimization, alive).status == "running"


def test_a_background_sweep_on_several_processes_leaves_none_behind(fake_server, tmp_path, monkeypatch):
    from tests.fakeserver import Reply
    from tests.sweep_helpers import child_pids
    from workbench.background import run_sweep_job

    monkeypatch.setenv("WORKBENCH_MODELS", str(write_models_file(tmp_path / "m.toml", fake_server.base_url)))
    monkeypatch.setenv("WB_FAKE_KEY", "k")
    migrate()
    seed(40)
    fake_server.default = Reply(latency=1.0)  # 10 s: a worker (~5 s to import LiteLLM) joins in time
    sweep_id = plan(concurrency=4)
    runner = BackgroundRunner()
    assert runner.submit(f"sweep-{sweep_id}", run_sweep_job, sweep_id, 2)
    runner.wait(f"sweep-{sweep_id}", timeout=120)
    assert runner.error(f"sweep-{sweep_id}") is None
    with session_scope() as s:
        runs = s.exec(select(Run).where(Run.sweep_id == sweep_id)).all()
        assert {r.status for r in runs} == {"done"} and s.get(Sweep, sweep_id).status == "done"
        assert len({r.claimed_by for r in runs}) == 2  # the server's thread and one worker process
    assert fake_server.count() == 40
    assert not child_pids(), "a worker process outlived its job"
    runner.shutdown()


def test_any_running_tells_whether_a_job_of_a_kind_is_running():
    import threading

    gate = threading.Event()
    r = BackgroundRunner(max_workers=1)
    try:
        assert r.submit("sweep-7", gate.wait, 10)
        assert r.any_running("sweep-") and not r.any_running("optimization-")
        gate.set()
        r.wait("sweep-7", timeout=10)
        assert not r.any_running("sweep-")
    finally:
        gate.set()
        r.shutdown()
