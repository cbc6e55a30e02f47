"""Deterministic scorers and the retry policy."""

import random

import pytest

from workbench.errors import ProviderError, ValidationError
from workbench.sweeps.retry import RetryPolicy
from workbench.sweeps.scoring import ScoringConfig, normalize, parse_judge, score_output


def scores(metrics, output, expected=None, **cfg):
    return {m: v for m, v, _ in score_output(ScoringConfig(metrics=metrics, **cfg), output, expected)}


def test_exact_and_contains_normalised_and_raw():
    assert scores(["exact", "exact_raw"], " Positive.", "positive") == {"exact": 1.0, "exact_raw": 0.0}
    assert scores(["contains", "contains_raw"], "I think: POSITIVE!", "positive") == {
        "contains": 1.0,
        "contains_raw": 0.0,
    }
    assert normalize("  Héllo,   World! ") == "héllo world"


def test_expected_scorers_skip_unlabelled_rows():
    assert scores(["exact", "length"], "abc", None) == {"length": 3.0}


def test_regex_json_and_schema():
    assert scores(["regex"], "id: 42", regex=r"\d+") == {"regex": 1.0}
    schema = {"type": "object", "required": ["label"], "properties": {"label": {"enum": ["pos", "neg"]}}}
    assert scores(["json"], '```json\n{"label": "pos"}\n```', json_schema=schema) == {
        "json": 1.0,
        "json_schema": 1.0,
    }
    result = score_output(ScoringConfig(metrics=["json"], json_schema=schema), '{"label": "meh"}', None)
    assert result[1][0] == "json_schema" and result[1][1] == 0.0 and "label" in result[1][2]
    assert scores(["json"], "not json") == {"json": 0.0}


def test_bad_scorer_config_is_refused():
    with pytest.raises(ValidationError, match=r"The regex scorer needs a pattern\.$") as err:
        ScoringConfig(metrics=["regex"])
    assert err.value.field == "regex"
    with pytest.raises(ValidationError, match="does not compile"):
        ScoringConfig(metrics=["regex"], regex="(")
    with pytest.raises(ValidationError, match="JSON Schema is invalid"):
        ScoringConfig(metrics=["json"], json_schema={"type": 5})
    with pytest.raises(ValidationError, match=r"The judge scorer needs a model\.$") as err:
        ScoringConfig(metrics=["judge"])
    assert err.value.field == "judge_model"
    with pytest.raises(ValidationError, match="Unknown scorer") as err:
        ScoringConfig(metrics=["vibes"])
    assert err.value.field == "score"


def test_scorer_errors_name_no_command_line_flag():
    for bad in ({"metrics": ["regex"]}, {"metrics": ["judge"]}, {"metrics": ["vibes"]}):
        with pytest.raises(ValidationError) as err:
            ScoringConfig(**bad)
        assert "--" not in str(err.value)


def test_expected_answers_and_winners_come_from_the_metric_registry():
    from workbench import metrics
    from workbench.sweeps.scoring import SCORERS

    assert set(SCORERS) == set(metrics.METRICS) - {"json_schema"}
    needs = {m.name for m in metrics.METRICS.values() if m.needs_expected}
    assert needs == {"exact", "exact_raw", "contains", "contains_raw", "json_match", "tool_call"}
    # Without an expected answer, exactly the metrics that need one are skipped.
    offline = [m for m in SCORERS if m != "judge"]  # every scorer that makes no call
    assert set(scores(offline, "abc", None, regex="a")) == set(offline) - needs


def test_parse_judge():
    assert parse_judge("Score: 5") == 1.0
    assert parse_judge("I'd say 1.") == 0.0
    assert parse_judge("no number") is None


def test_retry_policy_backoff_and_retry_after():
    policy = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=8.0)
    transient = ProviderError("x", kind="server", transient=True)
    fatal = ProviderError("x", kind="auth", transient=False)
    assert policy.should_retry(transient, 3) and not policy.should_retry(transient, 4)
    assert not policy.should_retry(fatal, 1)
    rng = random.Random(0)
    delays = [policy.delay(transient, a, rng) for a in range(1, 8)]
    assert all(0 <= d <= min(8.0, 2 ** (a - 1)) for a, d in zip(range(1, 8), delays, strict=True))
    told = ProviderError("x", kind="rate_limit", transient=True, retry_after=5)
    assert 5 <= policy.delay(told, 1, rng) <= 5.5
    assert (
        policy.delay(ProviderError("x", kind="rate_limit", transient=True, retry_after=9999), 1, rng) <= 121
    )


def test_judge_rubric_is_checked_before_any_call():
    with pytest.raises(ValidationError, match="answer"):
        ScoringConfig(metrics=["judge"], judge_model="m", judge_rubric="Rate {{ answer }}")
    with pytest.raises(ValidationError, match="does not work"):
        ScoringConfig(metrics=["judge"], judge_model="m", judge_rubric="Rate {{ output ")
    ScoringConfig(
        metrics=["judge"], judge_model="m", judge_rubric="{{ input }} -> {{ output }} ({{ expected }})"
    )
