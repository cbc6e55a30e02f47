"""Sweeps across processes: kill -9 and resume, and two workers sharing one sweep
(on SQLite and on PostgreSQL)."""

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlmodel import select

from tests.fakeserver import Reply
from tests.sweep_helpers import FAKE, plan, seed, write_models_file
from workbench import config
from workbench.db import dispose_engines, session_scope
from workbench.models import Run, Sweep


def cli(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "workbench", *args],
        cwd=config.PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def proc_env(fake_server, migrated, tmp_path, monkeypatch):
    monkeypatch.setenv(
        "WORKBENCH_MODELS", str(write_models_file(tmp_path / "models.toml", fake_server.base_url))
    )
    monkeypatch.setenv("WB_FAKE_KEY", "sk-fake")
    seed(40)
    return fake_server


def statuses(sweep_id):
    with session_scope() as s:
        return {
            r.id: (r.status, r.messages[0]["content"][:8], r.claimed_by)
            for r in s.exec(select(Run).where(Run.sweep_id == sweep_id))
        }


def test_killed_sweep_resumes_without_recalling_done_cells(proc_env):
    proc_env.default = Reply(latency=0.15)
    proc = cli(
        "sweep", "--prompt", "echo", "--dataset", "rows", "--models", FAKE, "--concurrency", "2", "--json"
    )
    deadline = time.monotonic() + 60
    sweep_id = None
    done_before: set[str] = set()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        with session_scope() as s:
            sweep = s.exec(select(Sweep)).first()
            if sweep is None:
                continue
            sweep_id = sweep.id
        done_before = {m for st, m, _ in statuses(sweep_id).values() if st == "done"}
        if len(done_before) >= 6:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    dispose_engines()
    # Re-read after the kill: a flush may have landed between the poll and the kill.
    done_before = {m for st, m, _ in statuses(sweep_id).values() if st == "done"}
    assert 6 <= len(done_before) < 40, "the sweep should have been killed part-way"
    resume = cli("sweep", "--resume", str(sweep_id), "--json")
    _out, err = resume.communicate(timeout=120)
    assert resume.returncode == 0, err
    final = statuses(sweep_id)
    assert {st for st, _, _ in final.values()} == {"done"} and len(final) == 40
    for marker in done_before:
        assert proc_env.count(marker) == 1, f"{marker} was done before the kill but called again"
    recalled = [m for _, m, _ in final.values() if proc_env.count(m) > 1]
    # At most the cells in flight when the process died, plus answers not yet flushed.
    assert len(recalled) <= 4, recalled


def test_two_workers_never_run_one_cell(proc_env):
    proc_env.default = Reply(latency=0.3)
    sweep_id = plan(concurrency=4)
    workers = [cli("worker", "--sweep", str(sweep_id)) for _ in range(2)]
    for w in workers:
        _, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
    final = statuses(sweep_id)
    assert {st for st, _, _ in final.values()} == {"done"}
    markers = [m for _, m, _ in final.values()]
    assert all(proc_env.count(m) == 1 for m in markers), "a cell was called twice"
    assert proc_env.count() == 40
    claimers = {c for _, _, c in final.values()}
    assert len(claimers) == 2, f"expected both workers to share the sweep, got {claimers}"
    with session_scope() as s:
        assert s.get(Sweep, sweep_id).status == "done"


def test_stale_claims_of_dead_processes_are_released(proc_env):
    import socket

    from workbench.db import get_engine
    from workbench.sweeps import claims

    sweep_id = plan()
    engine = get_engine()
    dead = f"{socket.gethostname()}:999999:dead"  # a pid that does not exist
    got = claims.claim(engine, worker_id=dead, limit=5, sweep_id=sweep_id)
    assert len(got) == 5
    assert claims.release_stale(engine, sweep_id=sweep_id) == 5
    assert {st for st, _, _ in statuses(sweep_id).values()} == {"pending"}
