"""The sweep engine against a scripted OpenAI-compatible server: the error contract, cache,
cancel, circuit breaker and terminal states."""

import threading
import time

import pytest
from sqlmodel import select

from tests.fakeserver import Reply
from tests.sweep_helpers import FAKE, FAKE2, plan, run, seed
from workbench.db import session_scope
from workbench.errors import BudgetExceededError, MissingVariableError, ModelUnavailableError, ValidationError
from workbench.models import Run, Score, Sweep
from workbench.sweeps.lifecycle import request_cancel
from workbench.sweeps.plan import SweepSpec, create_sweep, preview
from workbench.sweeps.summary import progress, runs_frame, summarize


@pytest.fixture
def fake_env(fake_models):
    fake_server = fake_models
    seed(4)
    return fake_server


def runs_of(sweep_id):
    with session_scope() as s:
        return list(s.exec(select(Run).where(Run.sweep_id == sweep_id).order_by(Run.id)))


def test_grid_plans_every_cell_and_all_end_done(fake_env):
    sweep_id = plan(
        models=[FAKE, FAKE2],
        params={"temperature": [0, 0.7]},
        repeats=2,
        scoring={"metrics": ["exact", "length"]},
    )
    report = run(sweep_id)
    runs = runs_of(sweep_id)
    assert len(runs) == 2 * 2 * 4 * 2 == report.called
    assert {r.status for r in runs} == {"done"}
    assert fake_env.count() == 32  # one request per cell
    first = runs[0]
    assert first.output == "echo: cell-000 row 0" and first.finish_reason == "stop"
    assert first.prompt_tokens == 10 and first.completion_tokens == 4
    assert first.cost_usd == pytest.approx((10 * 1.0 + 4 * 2.0) / 1e6)
    assert first.latency_ms > 0 and first.ttft_ms is not None and first.request_id.startswith("req-")
    assert first.messages == [{"role": "user", "content": "cell-000 row 0"}]
    with session_scope() as s:
        assert s.get(Sweep, sweep_id).status == "done"
        exact = s.exec(select(Score).where(Score.metric == "exact")).all()
        assert len(exact) == 32 and all(sc.value == 1.0 for sc in exact)
        table = summarize(runs_frame(s, sweep_id))
    assert len(table) == 4 and set(table["n"]) == {8} and set(table["score_exact_mean"]) == {1.0}


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_fatal_errors_are_called_once_and_recorded(fake_env, status):
    fake_env.script("cell-001", [Reply(status=status)])
    sweep_id = plan()
    run(sweep_id)
    bad = next(r for r in runs_of(sweep_id) if "cell-001" in r.messages[0]["content"])
    assert fake_env.count("cell-001") == 1
    assert bad.status == "failed" and bad.attempts == 1 and bad.error_message
    assert {r.status for r in runs_of(sweep_id) if r.id != bad.id} == {"done"}


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 529])
def test_transient_errors_are_retried_then_succeed(fake_env, status):
    fake_env.script("cell-002", [Reply(status=status), Reply(status=status), Reply(text="finally")])
    sweep_id = plan()
    run(sweep_id)
    cell = next(r for r in runs_of(sweep_id) if "cell-002" in r.messages[0]["content"])
    assert fake_env.count("cell-002") == 3
    assert cell.status == "done" and cell.output == "finally" and cell.attempts == 3


def test_transient_errors_give_up_after_max_attempts(fake_env):
    fake_env.script("cell-003", [Reply(status=503)])
    sweep_id = plan()
    run(sweep_id)
    cell = next(r for r in runs_of(sweep_id) if "cell-003" in r.messages[0]["content"])
    assert fake_env.count("cell-003") == 3  # FAST_RETRY.max_attempts
    assert cell.status == "failed" and cell.error_kind == "server" and cell.attempts == 3


def test_retry_after_is_honoured(fake_env):
    fake_env.script("cell-000", [Reply(status=429, retry_after=1), Reply(text="ok")])
    sweep_id = plan()
    run(sweep_id)
    first, second = fake_env.arrival_times("cell-000")
    assert second - first >= 1.0  # a lower bound: the server said 1 s
    assert [r.status for r in runs_of(sweep_id)] == ["done"] * 4


def test_truncation_empty_and_malformed_are_recorded(fake_env):
    fake_env.script("cell-000", [Reply(text="cut off here", finish_reason="length")])
    fake_env.script("cell-001", [Reply(text="")])
    fake_env.script("cell-002", [Reply(malformed=True)])
    sweep_id = plan(scoring={"metrics": ["length"]})
    run(sweep_id)
    by_marker = {r.messages[0]["content"][:8]: r for r in runs_of(sweep_id)}
    assert by_marker["cell-000"].status == "done" and by_marker["cell-000"].finish_reason == "length"
    assert by_marker["cell-001"].status == "done" and by_marker["cell-001"].output == ""
    assert by_marker["cell-002"].status == "failed" and by_marker["cell-002"].error_kind == "malformed"
    with session_scope() as s:
        row = summarize(runs_frame(s, sweep_id)).iloc[0]
    assert (row["truncated"], row["empty"], row["failed"]) == (1, 1, 1)


def test_hung_provider_times_out_and_is_retried(fake_env):
    fake_env.script("cell-001", [Reply(hang=True), Reply(text="second try")])
    sweep_id = plan(timeout_s=0.5)
    run(sweep_id)
    cell = next(r for r in runs_of(sweep_id) if "cell-001" in r.messages[0]["content"])
    assert cell.status == "done" and cell.output == "second try" and cell.attempts == 2


def test_auth_failure_opens_the_circuit_for_that_model_only(fake_env, tmp_path, monkeypatch):
    seed(30, prompt="echo2", dataset="many")
    fake_env.script("cell-", [Reply(status=401)])
    sweep_id = plan(prompts=["echo2"], dataset="many", models=[FAKE], concurrency=2)
    report = run(sweep_id)
    runs = runs_of(sweep_id)
    assert {r.status for r in runs} == {"failed"}
    assert fake_env.count() <= 4  # the in-flight ones at most; the other 26+ cells were never called
    assert sum(r.error_kind == "circuit_open" for r in runs) >= 26
    assert FAKE in report.circuit_open
    with session_scope() as s:
        assert "authentication" in s.get(Sweep, sweep_id).error


def test_cache_reuses_done_cells_and_no_cache_calls_again(fake_env):
    first = plan(scoring={"metrics": ["exact"]})
    run(first)
    assert fake_env.count() == 4
    with session_scope() as s:
        assert preview(s, SweepSpec(prompts=["echo"], models=[FAKE], dataset="rows")).cached == 4
    second = plan(scoring={"metrics": ["exact"]})
    run(second)
    assert fake_env.count() == 4  # no new calls
    runs = runs_of(second)
    assert all(r.cached and r.cost_usd == 0.0 and r.cached_from_id for r in runs)
    with session_scope() as s:
        assert len(s.exec(select(Score).where(Score.run_id.in_([r.id for r in runs]))).all()) == 4
    third = plan(use_cache=False)
    run(third)
    assert fake_env.count() == 8


def test_cancel_keeps_finished_cells_and_marks_the_rest(fake_env):
    seed(40, prompt="slow", dataset="slowrows")
    fake_env.default = Reply(latency=0.3)
    sweep_id = plan(prompts=["slow"], dataset="slowrows", concurrency=4)
    timer = threading.Timer(0.8, request_cancel, args=(sweep_id,))
    timer.start()
    started = time.monotonic()
    report = run(sweep_id)
    elapsed = time.monotonic() - started
    runs = runs_of(sweep_id)
    statuses = {r.status for r in runs}
    assert report.cancelled and statuses <= {"done", "cancelled"} and "cancelled" in statuses
    done = [r for r in runs if r.status == "done"]
    assert done and all(r.output for r in done)
    with session_scope() as s:
        assert s.get(Sweep, sweep_id).status == "cancelled"
    print(f"cancel honoured after {elapsed - 0.8:.2f} s")


def test_cancel_of_a_sweep_nobody_runs(fake_env):
    sweep_id = plan()
    request_cancel(sweep_id)
    assert {r.status for r in runs_of(sweep_id)} == {"cancelled"}
    assert fake_env.count() == 0


def test_budget_refuses_an_expensive_plan(fake_env):
    with pytest.raises(BudgetExceededError, match="over the budget"):
        plan(budget_usd=0.000001)
    with session_scope() as s:
        assert s.exec(select(Sweep)).all() == []
    assert plan(budget_usd=1.0)


def test_planning_validates_before_any_call(fake_env, monkeypatch):
    with session_scope() as s:
        from workbench.prompts import store

        store.save_version(
            s, prompt_name="needs", messages=[{"role": "user", "content": "{{ marker }} {{ nope }}"}]
        )
    with pytest.raises(MissingVariableError) as err:
        plan(prompts=["needs"])
    assert "'nope'" in str(err.value) and "row 1 of dataset 'rows'" in str(err.value)
    with pytest.raises(ModelUnavailableError, match="Unknown local model"):
        plan(models=["local/nope"])
    monkeypatch.delenv("WB_FAKE_KEY")
    with pytest.raises(ModelUnavailableError, match="WB_FAKE_KEY"):
        plan()
    monkeypatch.setenv("WB_FAKE_KEY", "x")
    with pytest.raises(ValidationError, match="temperature=3"):
        plan(params={"temperature": [0, 3]})
    with pytest.raises(ValidationError, match="Unknown scorer"):
        plan(scoring={"metrics": ["vibes"]})
    assert fake_env.count() == 0


def test_ad_hoc_variables_and_progress(fake_env):
    sweep_id = plan(dataset=None, variables={"marker": "solo", "text": "x"}, repeats=3)
    run(sweep_id)
    with session_scope() as s:
        p = progress(s, sweep_id)
    assert (p.total, p.done, p.remaining, p.status) == (3, 3, 0, "done")
    assert p.cost_usd > 0


def test_judge_scorer_counts_its_own_cost(fake_env):
    fake_env.script("Reply with a single integer", [Reply(text="4")])
    sweep_id = plan(scoring={"metrics": ["judge"], "judge_model": FAKE2})
    run(sweep_id)
    with session_scope() as s:
        judged = s.exec(select(Score).where(Score.metric == "judge")).all()
    assert len(judged) == 4 and all(sc.value == 0.75 and sc.cost_usd > 0 for sc in judged)
    with session_scope() as s:
        p = progress(s, sweep_id)
        table = summarize(runs_frame(s, sweep_id))
    assert p.scoring_cost_usd == pytest.approx(sum(sc.cost_usd for sc in judged))
    assert table["scoring_cost_usd"].sum() == pytest.approx(p.scoring_cost_usd)


def test_unpriced_model_cost_is_unknown_and_budget_refused(fake_env, tmp_path, monkeypatch):
    path = tmp_path / "unpriced.toml"
    path.write_text(
        f'[[model]]\nid = "openai/fake-model"\napi_base = "{fake_env.base_url}"\n'
        'api_key_env = "WB_FAKE_KEY"\n'
    )
    monkeypatch.setenv("WORKBENCH_MODELS", str(path))
    with pytest.raises(BudgetExceededError, match="has none"):
        plan(budget_usd=10)
    sweep_id = plan()
    run(sweep_id)
    assert {r.cost_usd for r in runs_of(sweep_id)} == {None}
    with session_scope() as s:
        assert summarize(runs_frame(s, sweep_id)).iloc[0]["cost_usd"] is None


def test_create_sweep_writes_pending_cells_before_any_call(fake_env):
    with session_scope() as s:
        sweep, summary = create_sweep(s, SweepSpec(prompts=["echo"], models=[FAKE, FAKE2], dataset="rows"))
    assert summary.cells == 8 and summary.estimated_cost_usd > 0
    assert {r.status for r in runs_of(sweep.id)} == {"pending"}
    assert fake_env.count() == 0


def test_a_scorer_failure_never_loses_a_paid_result(fake_env, monkeypatch):
    from workbench.sweeps import execute

    def broken(*args, **kwargs):
        raise RuntimeError("scorer bug")

    monkeypatch.setattr(execute, "score_output", broken)
    sweep_id = plan(scoring={"metrics": ["exact"]})
    run(sweep_id)
    runs = runs_of(sweep_id)
    assert {r.status for r in runs} == {"done"} and all(r.output for r in runs)
    with session_scope() as s:
        errors = s.exec(select(Score).where(Score.metric == "scoring_error")).all()
        assert len(errors) == 4 and all("scorer bug" in e.detail for e in errors)
        assert s.get(Sweep, sweep_id).status == "done"


def test_two_executors_scoring_the_same_cache_hits_do_not_collide(fake_env):
    import asyncio

    from tests.sweep_helpers import FAST_RETRY
    from workbench.sweeps.execute import ExecutorOptions, SweepExecutor

    run(plan())  # fills the cache
    sweep_id = plan(scoring={"metrics": ["exact", "length"]})  # all cache hits, scores still to write

    async def both():
        a = SweepExecutor(sweep_id, ExecutorOptions(retry=FAST_RETRY))
        b = SweepExecutor(sweep_id, ExecutorOptions(retry=FAST_RETRY))
        return await asyncio.gather(a.run(), b.run())

    asyncio.run(both())
    with session_scope() as s:
        ids = [r.id for r in runs_of(sweep_id)]
        scores = s.exec(select(Score).where(Score.run_id.in_(ids))).all()
        assert len(scores) == 8 and s.get(Sweep, sweep_id).status == "done"


def test_cancel_of_a_sweep_whose_process_died(fake_env):
    import socket

    from workbench.db import get_engine
    from workbench.sweeps import claims

    sweep_id = plan()
    claims.claim(get_engine(), worker_id=f"{socket.gethostname()}:999999:dead", limit=2, sweep_id=sweep_id)
    with session_scope() as s:
        sweep = s.get(Sweep, sweep_id)
        sweep.status = "running"
        s.add(sweep)
    request_cancel(sweep_id)
    with session_scope() as s:
        assert s.get(Sweep, sweep_id).status == "cancelled"
    assert {r.status for r in runs_of(sweep_id)} == {"cancelled"}


def test_every_sweep_entry_point_says_no_sweep_with_one_error(fake_env):
    from workbench.errors import SweepNotFoundError
    from workbench.sweeps.execute import execute_sweep
    from workbench.sweeps.lifecycle import prepare_resume

    calls = [
        lambda: request_cancel(999),
        lambda: prepare_resume(999),
        lambda: execute_sweep(999),
    ]
    for call in calls:
        with pytest.raises(SweepNotFoundError, match="No sweep with id 999") as err:
            call()
        assert err.value.field == "sweep"
    with session_scope() as s, pytest.raises(SweepNotFoundError):
        progress(s, 999)
