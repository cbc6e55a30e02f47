"""Server start-up recovery: sweeps left running resume, optimizations of dead processes fail."""

import socket

from sqlmodel import select

from tests.sweep_helpers import plan, seed, write_models_file
from workbench.background import BackgroundRunner, fail_orphaned_optimizations, resume_unfinished_sweeps
from workbench.db import get_engine, migrate, session_scope
from workbench.models import Optimization, PromptVersion, Run, Sweep
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


def test_optimizations_of_dead_processes_are_marked_failed():
    migrate()
    seed(2)
    with session_scope() as s:
        version = s.exec(select(PromptVersion)).first()
        dead = Optimization(
            input_version_id=version.id,
            optimizer="bootstrap",
            metric="exact",
            task_model="m",
            status="running",
            config={"runner": DEAD},
        )
        alive = Optimization(
            input_version_id=version.id,
            optimizer="bootstrap",
            metric="exact",
            task_model="m",
            status="running",
            config={"runner": claims.new_worker_id()},
        )
        s.add(dead)
        s.add(alive)
        s.flush()
        dead_id, alive_id = dead.id, alive.id
    assert fail_orphaned_optimizations() == [dead_id]
    with session_scope() as s:
        assert (
            s.get(Optimization, dead_id).status == "failed"
            and "start it again" in s.get(Optimization, dead_id).error
        )
        assert s.get(Optimization, alive_id).status == "running"
