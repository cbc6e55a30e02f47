"""Sweeps across processes (on SQLite and on PostgreSQL): kill -9 and resume, two workers sharing
one sweep, and one sweep on several processes: each cell once, concurrency limits that are totals
across the processes (counted by the scripted server), cancel, killed workers and parents, budget."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from sqlmodel import select

from tests.fakeserver import Reply
from tests.sweep_helpers import FAKE, FAKE2, child_pids, plan, seed, sqlite_only, write_models_file
from workbench import config
from workbench.db import dispose_engines, session_scope
from workbench.models import Run, Sweep
from workbench.sweeps.lifecycle import request_cancel
from workbench.sweeps.processes import run_sweep


def cli(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "workbench", *args],
        cwd=config.PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def proc_env(migrated, fake_models):
    """The backend's database (migrated first) with the fake server's models, and 40 rows."""
    seed(40)
    return fake_models


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


# -- one sweep on several processes (workbench.sweeps.processes) ----------------------------------


def in_thread(fn, *args, **kwargs):
    """Run `fn` in a thread; returns (thread, result dict with "value" or "error")."""
    result: dict = {}

    def target():
        try:
            result["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, result


def wait_for(predicate, timeout=60.0, what="a condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def other_pids(sweep_id, status="running"):
    """Pids (other than this one) holding cells of the sweep in `status`."""
    return {int(c.split(":")[1]) for st, _, c in statuses(sweep_id).values() if st == status and c} - {
        os.getpid()
    }


def test_two_processes_run_every_cell_once_and_both_run_cells(proc_env):
    proc_env.default = Reply(latency=0.2)
    sweep_id = plan(concurrency=4)
    report = run_sweep(sweep_id, processes=2, wait_for_workers=True)
    final = statuses(sweep_id)
    assert {st for st, _, _ in final.values()} == {"done"} and len(final) == 40
    assert all(proc_env.count(m) == 1 for _, m, _ in final.values()), "a cell was called twice"
    assert proc_env.count() == 40 and report.called == 40 and report.processes == 2
    assert len({c for _, _, c in final.values()}) == 2, "both processes should have run cells"
    assert not child_pids(), "a worker process outlived the sweep"
    with session_scope() as s:
        assert s.get(Sweep, sweep_id).status == "done"


@pytest.mark.parametrize("wait", [True, False], ids=["all-from-the-start", "workers-join-mid-run"])
@sqlite_only
def test_concurrency_limits_are_totals_across_processes(proc_env, tmp_path, monkeypatch, wait):
    # fake-model may run 3 calls at once, fake-model-large only 1 (fewer than the processes),
    # and the sweep 5 in all: the scripted server counts what it answers at once per model.
    models = write_models_file(tmp_path / "limits.toml", proc_env.base_url, concurrency={FAKE: 3, FAKE2: 1})
    monkeypatch.setenv("WORKBENCH_MODELS", str(models))
    # Joining mid-run, a worker needs ~5-8 s to import LiteLLM: the limited model's 20 calls in a
    # row (>= 12 s) leave it time to join.
    proc_env.default = Reply(latency=0.15 if wait else 0.6)
    sweep_id = plan(models=[FAKE, FAKE2], concurrency=5, max_rows=20)
    report = run_sweep(sweep_id, processes=2, wait_for_workers=wait)
    assert report.processes == 2 and report.called == 40
    assert proc_env.max_in_flight_of("fake-model") == 3  # reached, and never passed
    assert proc_env.max_in_flight_of("fake-model-large") == 1
    assert proc_env.max_in_flight <= 5
    final = statuses(sweep_id)
    assert {st for st, _, _ in final.values()} == {"done"} and len(final) == 40
    with session_scope() as s:
        large = s.exec(select(Run.claimed_by).where(Run.sweep_id == sweep_id, Run.model == FAKE2)).all()
    assert len(set(large)) == 1, "the model limited to 1 runs in one process (and is not starved)"


def test_cancel_stops_every_process(proc_env):
    proc_env.default = Reply(latency=0.3)
    sweep_id = plan(concurrency=4)
    thread, result = in_thread(run_sweep, sweep_id, processes=2, wait_for_workers=True)
    workers = wait_for(lambda: other_pids(sweep_id), what="the worker to run cells")
    wait_for(lambda: proc_env.count() >= 6, what="some calls")
    request_cancel(sweep_id)
    thread.join(60)
    assert not thread.is_alive() and "error" not in result, result
    assert result["value"].cancelled
    final = statuses(sweep_id)
    assert {st for st, _, _ in final.values()} <= {"done", "cancelled"}
    assert proc_env.count() < 40, "the cancel should have stopped the calls"
    with session_scope() as s:
        assert s.get(Sweep, sweep_id).status == "cancelled"
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_killed_worker_process_has_its_cells_run_again(proc_env):
    proc_env.default = Reply(latency=0.3)
    sweep_id = plan(concurrency=4)
    thread, result = in_thread(run_sweep, sweep_id, processes=2, wait_for_workers=True)
    [worker] = wait_for(lambda: other_pids(sweep_id), what="the worker to run cells")
    wait_for(lambda: sum(st == "done" for st, _, _ in statuses(sweep_id).values()) >= 4, what="cells done")
    os.kill(worker, signal.SIGKILL)
    done_before = {m for st, m, _ in statuses(sweep_id).values() if st == "done"}
    thread.join(120)
    assert not thread.is_alive() and "error" not in result, result
    final = statuses(sweep_id)
    assert {st for st, _, _ in final.values()} == {"done"} and len(final) == 40
    for marker in done_before:
        assert proc_env.count(marker) == 1, f"{marker} was done before the kill but called again"
    # Only the cells in flight in the killed worker are called twice.
    assert all(proc_env.count(m) <= 2 for _, m, _ in final.values())
    with session_scope() as s:
        assert s.get(Sweep, sweep_id).status == "done"


def test_a_worker_whose_parent_is_killed_gives_its_cells_back_and_resume_finishes(proc_env):
    proc_env.default = Reply(latency=0.8)
    parent = cli(
        "sweep", "run", "--prompt", "echo", "--dataset", "rows", "--models", FAKE,
        "--concurrency", "4", "--processes", "2", "--json",
    )  # fmt: skip
    sweep_id = wait_for(lambda: plan_id(), what="the sweep to be planned")
    [worker] = wait_for(lambda: other_pids(sweep_id) - {parent.pid}, what="the worker to run cells")
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    dispose_engines()

    def worker_gone():
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(worker_gone, what="the worker to exit once its parent is gone")
    assert not other_pids(sweep_id) - {parent.pid}, "the worker should have given its cells back"
    done_before = {m for st, m, _ in statuses(sweep_id).values() if st == "done"}
    assert len(done_before) < 40
    proc_env.default = Reply(latency=0.05)
    resume = cli("sweep", "resume", str(sweep_id), "--json")
    _out, err = resume.communicate(timeout=120)
    assert resume.returncode == 0, err
    final = statuses(sweep_id)
    assert {st for st, _, _ in final.values()} == {"done"}
    for marker in done_before:
        assert proc_env.count(marker) == 1


def plan_id():
    with session_scope() as s:
        sweep = s.exec(select(Sweep)).first()
        return sweep.id if sweep else None


@sqlite_only
def test_budget_holds_with_several_processes(proc_env, capsys):
    from workbench.cli import main

    code = main(["sweep", "run", "--prompt", "echo", "--dataset", "rows", "--models", FAKE,
                 "--budget", "0.000001", "--processes", "2"])  # fmt: skip
    assert code == 2 and "budget" in capsys.readouterr().err.lower()
    assert proc_env.count() == 0 and not child_pids()
    sweep_id = plan(concurrency=4, budget_usd=0.05)
    run_sweep(sweep_id, processes=2, wait_for_workers=True)
    with session_scope() as s:
        costs = s.exec(select(Run.cost_usd).where(Run.sweep_id == sweep_id)).all()
    assert proc_env.count() == 40 and len(costs) == 40  # every cell billed once
    assert sum(costs) <= 0.05


@sqlite_only
def test_how_many_processes_a_sweep_gets(proc_env, tmp_path, monkeypatch):
    from workbench.db import get_engine
    from workbench.sweeps import processes

    engine = get_engine()
    monkeypatch.setattr(processes, "cores", lambda: 4)
    assert processes.choose_processes(engine, plan(concurrency=8))[0] == 1  # 40 cells: not worth it
    monkeypatch.setattr(processes, "MIN_CELLS", 40)
    assert processes.choose_processes(engine, plan(concurrency=8))[0] == 4  # one per core
    assert processes.choose_processes(engine, plan(concurrency=2))[0] == 2  # a share of one call each
    assert processes.choose_processes(engine, plan(concurrency=8), 3)[0] == 3  # as asked
    models = write_models_file(tmp_path / "one.toml", proc_env.base_url, concurrency=1)
    monkeypatch.setenv("WORKBENCH_MODELS", str(models))
    assert processes.choose_processes(engine, plan(concurrency=8), 4)[0] == 1  # one call at a time


@sqlite_only
def test_by_default_workers_start_only_when_the_sweep_is_short_of_cpu(proc_env, monkeypatch):
    from workbench.sweeps import processes

    monkeypatch.setattr(processes, "MIN_CELLS", 10)
    monkeypatch.setattr(processes, "cores", lambda: 2)
    proc_env.default = Reply(latency=0.5)
    waiting = run_sweep(plan(concurrency=4, max_rows=20))  # waits on the provider: one process
    assert waiting.processes == 1 and waiting.called == 20
    proc_env.default = Reply(latency=1.0)  # 10 s of sweep: a worker (~5 s to import LiteLLM) joins
    monkeypatch.setattr(processes, "CPU_BOUND", 0.0)  # now any use of the CPU counts as short
    monkeypatch.setattr(processes, "MIN_SECONDS_LEFT", 0.0)
    monkeypatch.setattr(processes, "FIRST_LOOK", 0.2)
    busy = run_sweep(plan(concurrency=4, use_cache=False))
    assert busy.processes == 2 and busy.called == 40
    assert not child_pids()


@sqlite_only
def test_the_cli_refuses_fewer_than_one_process_before_planning(proc_env, capsys):
    from workbench.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["sweep", "run", "--prompt", "echo", "--dataset", "rows", "--models", FAKE, "--processes", "0"])
    assert exit_.value.code == 2 and "--processes: must be at least 1" in capsys.readouterr().err
    assert plan_id() is None


@sqlite_only
def test_every_process_judges_its_own_cells_within_the_judges_total(proc_env, tmp_path, monkeypatch):
    from workbench.models import Score

    models = write_models_file(tmp_path / "judge.toml", proc_env.base_url, concurrency={FAKE: 4, FAKE2: 2})
    monkeypatch.setenv("WORKBENCH_MODELS", str(models))
    proc_env.default = Reply(latency=0.2)
    scoring = {"metrics": ["judge"], "judge_model": FAKE2, "judge_rubric": "Rate {{ output }} from 1 to 5."}
    sweep_id = plan(concurrency=8, scoring=scoring, max_rows=30)
    report = run_sweep(sweep_id, processes=4, wait_for_workers=True)  # the judge's 2 allow 2 processes
    assert report.processes == 2 and report.called == 30
    assert proc_env.max_in_flight_of("fake-model-large") == 2  # the judge's total, across processes
    assert proc_env.max_in_flight_of("fake-model") <= 4
    with session_scope() as s:
        ids = s.exec(select(Run.id).where(Run.sweep_id == sweep_id)).all()
        judged = s.exec(select(Score.run_id).where(Score.metric == "judge", Score.run_id.in_(ids))).all()
    assert sorted(judged) == sorted(ids)  # one judge score per cell
    assert proc_env.count("Rate ") == 30  # and one judge call per cell


@sqlite_only
def test_a_standby_worker_runs_the_sweep_and_no_fresh_one_starts(proc_env, monkeypatch):
    from workbench.db import get_engine
    from workbench.sweeps import processes, standby

    def fresh(*_args):
        raise AssertionError("a fresh worker started while a standby was waiting")

    monkeypatch.setattr(processes, "WorkerProcess", fresh)
    monkeypatch.setattr(processes, "MIN_CELLS", 10)
    monkeypatch.setattr(processes, "cores", lambda: 2)
    proc_env.default = Reply(latency=0.2)
    sweep_id = plan(concurrency=4)
    url = get_engine().url.render_as_string(hide_password=False)
    [waiting] = standby.pool().warm(url, 1)  # as `sweep run` and the Run page do, before the sweep
    assert waiting.ready.wait(120)
    # Ready for longer than a start may take (a user who read the preview for minutes): not late.
    monkeypatch.setattr(processes, "START_TIMEOUT", 0.5)
    time.sleep(0.6)
    report = run_sweep(sweep_id)  # the default: a waiting standby goes at once
    assert report.processes == 2 and report.called == 40
    final = statuses(sweep_id)
    assert all(proc_env.count(m) == 1 for _, m, _ in final.values()), "a cell was called twice"
    assert {int(c.split(":")[1]) for _, _, c in final.values()} == {os.getpid(), waiting.pid}
    assert standby.pool().waiting(url) == 0 and not child_pids()


@sqlite_only
def test_sweep_run_starts_its_worker_before_planning_and_uses_it(proc_env, monkeypatch, capsys):
    import json

    from workbench.cli import main
    from workbench.sweeps import processes, standby

    started = []
    real_warm = standby.StandbyPool.warm

    def warm(self, url, n):
        assert plan_id() is None, "the worker should start before the sweep is planned"
        started.extend(real_warm(self, url, n))
        return started

    def fresh(*_args):
        raise AssertionError("a fresh worker started: the one started before planning was not used")

    monkeypatch.setattr(standby.StandbyPool, "warm", warm)
    monkeypatch.setattr(processes, "WorkerProcess", fresh)
    # 20 s on one process: the standby (6-8 s to import LiteLLM here, more on a busy machine)
    # joins; nothing waits for it.
    proc_env.default = Reply(latency=1.0)
    code = main(["sweep", "run", "--prompt", "echo", "--dataset", "rows", "--models", FAKE,
                 "--concurrency", "2", "--processes", "2", "--json"])  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out)["report"]
    assert len(started) == 1 and report["processes"] == 2 and report["called"] == 40
    assert proc_env.count() == 40 and not child_pids()
    # A sweep that will run on one process (a single process asked for) starts no worker.
    started.clear()
    assert main(["sweep", "run", "--prompt", "echo", "--dataset", "rows", "--models", FAKE,
                 "--processes", "1", "--json"]) == 0  # fmt: skip
    assert started == []


@sqlite_only
def test_sweep_resume_starts_workers_for_the_cells_left(proc_env, monkeypatch, capsys):
    from workbench.cli import main
    from workbench.sweeps import processes, standby

    warmed = []
    monkeypatch.setattr(standby.StandbyPool, "warm", lambda self, url, n: warmed.append(n) or [])
    monkeypatch.setattr(processes, "cores", lambda: 2)
    monkeypatch.setattr(processes, "MIN_CELLS", 40)
    sweep_id = plan(concurrency=8)  # 40 pending cells
    assert main(["sweep", "resume", str(sweep_id), "--json"]) == 0
    assert warmed == [1] and proc_env.count() == 40
    warmed.clear()
    assert main(["sweep", "resume", str(plan(concurrency=8, max_rows=39, use_cache=False)), "--json"]) == 0
    assert warmed == []  # 39 cells left: one process, no worker
