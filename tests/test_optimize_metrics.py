"""Metrics: 0-1 scores matching the sweep scorers, feedback only for GEPA, and the truthy-Prediction trap."""

import pytest

from workbench.errors import ValidationError
from workbench.optimize.metrics import SWEEP_SCORER, MetricSpec, first_number, make_metric, score
from workbench.sweeps.scoring import score_output


@pytest.mark.parametrize(
    ("spec", "output", "expected", "value"),
    [
        (MetricSpec("exact"), "Paris", "Paris", 1.0),
        (MetricSpec("exact"), "Paris\n", "Paris", 0.0),
        (MetricSpec("normalized_exact"), " paris. ", "Paris", 1.0),
        (MetricSpec("normalized_exact"), "It is Paris", "Paris", 0.0),
        (MetricSpec("contains"), "It is PARIS!", "Paris", 1.0),
        (MetricSpec("regex", regex=r"^\s*(positive|negative)\b"), "negative, clearly", "x", 1.0),
        (MetricSpec("regex", regex=r"^\d+$"), "12 apples", "x", 0.0),
        (MetricSpec("numeric"), "The answer is 1,234.0 units", "1234", 1.0),
        (MetricSpec("numeric", tolerance=0.5), "3.4", "3", 1.0),
        (MetricSpec("numeric", tolerance=0.1), "3.4", "3", 0.0),
        (MetricSpec("numeric"), "no number", "3", 0.0),
    ],
)
def test_scores(spec, output, expected, value):
    assert score(spec, output, expected, {}) == value


def test_first_number():
    assert first_number("-2.5e3 and 7") == -2500.0 and first_number("none") is None


def test_judge_scores_through_the_judge_function_with_the_sweep_rubric():
    seen = []

    def judge(messages):
        seen.append(messages)
        return "I'd say 4."

    spec = MetricSpec("judge", judge_model="openai/fake-model")
    assert score(spec, "Paris", "Paris", {"country": "France"}, judge) == 0.75
    assert "country: France" in seen[0][0]["content"] and "Reference answer:\nParis" in seen[0][0]["content"]


def test_invalid_specs_say_what_to_do():
    with pytest.raises(ValidationError, match="Choose from"):
        MetricSpec("bleu")
    with pytest.raises(ValidationError, match="needs a judge model"):
        MetricSpec("judge")
    with pytest.raises(ValidationError, match="does not compile"):
        MetricSpec("regex", regex="(")


def test_a_missing_setting_is_named_in_domain_words():
    for spec, field in ((dict(name="regex"), "regex"), (dict(name="judge"), "judge_model")):
        with pytest.raises(ValidationError) as err:
            MetricSpec(**spec)
        assert err.value.field == field and "--" not in str(err.value)


@pytest.mark.parametrize(
    ("spec", "output", "expected"),
    [
        (MetricSpec("exact"), "Paris\n", "Paris"),
        (MetricSpec("normalized_exact"), " paris. ", "Paris"),
        (MetricSpec("contains"), "It is PARIS!", "Paris"),
        (MetricSpec("contains"), "London", "Paris"),
        (MetricSpec("regex", regex=r"^\d+$"), "12", "x"),
    ],
)
def test_the_sweep_scorer_gives_the_same_number(spec, output, expected):
    [(name, value, _detail)] = score_output(spec.scoring_config(), output, expected)
    assert name == SWEEP_SCORER[spec.name].name and value == score(spec, output, expected, {})


def test_every_sweep_scorer_is_higher_is_better_as_dspy_maximises():
    assert all(m.can_pick_winner for m in SWEEP_SCORER.values())


def test_metric_returns_a_float_and_feedback_only_for_gepa():
    from workbench.optimize.adapter import dspy

    metric = make_metric(MetricSpec("normalized_exact"), output_name="output", input_names=["q"])
    gold = dspy.Example(q="2+2", output="4").with_inputs("q")
    assert metric(gold, dspy.Prediction(output="5")) == 0.0
    assert metric(gold, dspy.Prediction(output="5"), trace=[]) == 0.0  # falsy while bootstrapping
    fb = metric(gold, dspy.Prediction(output="4"), [], "self", [])
    assert fb.score == 1.0 and "Expected answer: '4'" in fb.feedback


def test_truthy_prediction_trap_is_avoided(tmp_path, monkeypatch, fake_server):
    """A Prediction(score=0) is truthy: BootstrapFewShot would keep a failed trace. Ours keeps none."""
    from tests.optimize_helpers import FAKE, setup
    from workbench.db import session_scope
    from workbench.optimize.adapter import WorkbenchAdapter, dspy, make_program, make_shape, predictor_of
    from workbench.optimize.engine import CallBudget, make_lm
    from workbench.prompts import store

    setup(tmp_path, monkeypatch, fake_server)  # every reply is an echo: always wrong
    with session_scope() as s:
        version = store.resolve(s, "cap")
    shape = make_shape(version.messages, ["country"])
    train = [
        dspy.Example(country=c, output=a).with_inputs("country")
        for c, a in [("France", "Paris"), ("Japan", "Tokyo")]
    ]
    ours = make_metric(MetricSpec("normalized_exact"), output_name="output", input_names=["country"])

    def naive(gold, pred, trace=None, pred_name=None, pred_trace=None):
        return dspy.Prediction(score=ours(gold, pred), feedback="wrong")

    budget = CallBudget(cap=20)
    with dspy.context(lm=make_lm(FAKE, budget), adapter=WorkbenchAdapter(shape)):
        trapped = dspy.BootstrapFewShot(metric=naive, max_labeled_demos=0).compile(
            make_program(shape), trainset=train
        )
        safe = dspy.BootstrapFewShot(metric=ours, metric_threshold=1.0, max_labeled_demos=0).compile(
            make_program(shape), trainset=train
        )
    budget.close()
    assert len(predictor_of(trapped).demos) == 2  # the trap: failed echoes became demos
    assert predictor_of(safe).demos == []
