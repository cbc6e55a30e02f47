"""One retry loop for every provider call of a sweep: LLM-judge calls are retried, counted and
stopped by the circuit breaker exactly like cells (against the scripted fake server)."""

import asyncio

import pytest
from sqlmodel import select

from tests.fakeserver import Reply
from tests.sweep_helpers import FAKE, FAKE2, FAST_RETRY, plan, run, seed, write_models_file
from workbench.db import session_scope
from workbench.errors import ProviderError
from workbench.models import Run, Score, Sweep
from workbench.providers.completion import acomplete
from workbench.sweeps.circuit import CONSECUTIVE_AUTH_FAILURES_TO_OPEN, CircuitBreaker
from workbench.sweeps.retry import ProviderCalls

JUDGE_KEY = "Reply with a single integer"  # in every call of the default judge rubric, in no cell


@pytest.fixture
def one_at_a_time(fake_models, tmp_path, monkeypatch):
    """Both fake models limited to one call at a time, so the order of judge calls is fixed."""
    path = write_models_file(tmp_path / "serial.toml", fake_models.base_url, concurrency=1)
    monkeypatch.setenv("WORKBENCH_MODELS", str(path))
    seed(4)
    return fake_models


def judge_scores(sweep_id):
    with session_scope() as s:
        return list(
            s.exec(
                select(Score)
                .join(Run, Run.id == Score.run_id)
                .where(Run.sweep_id == sweep_id, Score.metric == "judge")
                .order_by(Score.run_id)
            )
        )


def test_a_judge_call_that_gets_429_and_503_is_retried_and_counted(one_at_a_time):
    one_at_a_time.script(JUDGE_KEY, [Reply(status=429), Reply(status=503), Reply(text="4")])
    sweep_id = plan(
        dataset=None,
        variables={"marker": "solo", "text": "x"},
        scoring={"metrics": ["judge"], "judge_model": FAKE2},
    )
    report = run(sweep_id)
    assert one_at_a_time.count(JUDGE_KEY) == 3
    assert report.provider_requests == 1 + 3  # the cell's call, then three judge attempts
    [score] = judge_scores(sweep_id)
    assert score.value == 0.75 and score.detail is None and score.cost_usd > 0


def test_a_judge_call_gives_up_after_max_attempts_with_the_reason(one_at_a_time):
    one_at_a_time.script(JUDGE_KEY, [Reply(status=503)])
    sweep_id = plan(
        dataset=None,
        variables={"marker": "solo", "text": "x"},
        scoring={"metrics": ["judge"], "judge_model": FAKE2},
    )
    report = run(sweep_id)
    assert one_at_a_time.count(JUDGE_KEY) == FAST_RETRY.max_attempts
    assert report.provider_requests == 1 + FAST_RETRY.max_attempts
    [score] = judge_scores(sweep_id)
    assert score.value is None and score.detail.startswith("judge failed:")
    with session_scope() as s:
        assert {r.status for r in s.exec(select(Run).where(Run.sweep_id == sweep_id))} == {"done"}


def test_an_auth_failing_judge_model_opens_its_circuit_like_a_cell_model(one_at_a_time):
    one_at_a_time.script(JUDGE_KEY, [Reply(status=401)])
    sweep_id = plan(scoring={"metrics": ["judge"], "judge_model": FAKE2})
    report = run(sweep_id)
    assert one_at_a_time.count(JUDGE_KEY) == 1  # the first refusal opens the circuit: no more calls
    assert report.circuit_open == {FAKE2: "authentication failed (401)"}
    assert FAKE not in report.circuit_open and report.done == 4  # the cells' own model is fine
    details = [sc.detail for sc in judge_scores(sweep_id)]
    assert len(details) == 4 and all(sc.value is None for sc in judge_scores(sweep_id))
    assert sum("Not called" in d for d in details) == 3
    assert all(d.startswith("judge failed:") for d in details)
    with session_scope() as s:
        sweep = s.get(Sweep, sweep_id)
        assert sweep.status == "done" and "authentication" in sweep.error and FAKE2 in sweep.error


def call_once(server, calls, marker):
    from workbench.providers.catalog import get_model

    entry = get_model(FAKE)
    return asyncio.run(
        calls.call(
            FAKE, lambda: acomplete(FAKE, [{"role": "user", "content": marker}], stream=False, entry=entry)
        )
    )


def test_a_cancel_stops_retrying(fake_models):
    fake_models.script("busy", [Reply(status=503)])
    cancelled = asyncio.Event()
    cancelled.set()
    calls = ProviderCalls(FAST_RETRY, breaker=CircuitBreaker(), cancelled=cancelled)
    outcome = call_once(fake_models, calls, "busy")
    assert outcome.attempts == 1 and outcome.error.kind == "server" and fake_models.count("busy") == 1


def test_a_key_revoked_mid_sweep_opens_after_consecutive_failures(fake_models):
    counted = []
    calls = ProviderCalls(
        FAST_RETRY, breaker=CircuitBreaker(), cancelled=asyncio.Event(), on_request=lambda: counted.append(1)
    )
    assert call_once(fake_models, calls, "fine").result is not None
    fake_models.script("revoked", [Reply(status=401)])
    for _ in range(CONSECUTIVE_AUTH_FAILURES_TO_OPEN):
        assert call_once(fake_models, calls, "revoked").error.kind == "auth"
    refused = call_once(fake_models, calls, "revoked")
    assert refused.attempts == 0 and refused.error.kind == "circuit_open"
    assert refused.error.field == "retry_failed" and "--" not in str(refused.error)
    assert fake_models.count("revoked") == CONSECUTIVE_AUTH_FAILURES_TO_OPEN
    assert len(counted) == 1 + CONSECUTIVE_AUTH_FAILURES_TO_OPEN


def test_an_unexpected_error_is_recorded_not_raised():
    async def broken():
        raise RuntimeError("library bug")

    calls = ProviderCalls(FAST_RETRY, breaker=CircuitBreaker(), cancelled=asyncio.Event())
    outcome = asyncio.run(calls.call(FAKE, broken))
    assert outcome.attempts == 1 and outcome.error.kind == "internal" and "library bug" in str(outcome.error)
    assert isinstance(outcome.error, ProviderError)
