"""Optimization runs against the fake provider: lineage, call cap, cancel, nothing-better, estimates."""

import threading
import time

import pytest
from sqlmodel import select

from tests.optimize_helpers import FAKE, answer, optimize, setup
from workbench.db import session_scope
from workbench.errors import NotFoundError, ValidationError
from workbench.models import Optimization, PromptVersion
from workbench.optimize.rescore import rescore
from workbench.optimize.results import proposal_of, request_cancel, require_optimization, save_result
from workbench.optimize.run import OptimizeSpec, plan_optimization
from workbench.prompts import store


@pytest.fixture
def env(tmp_path, monkeypatch, fake_server):
    setup(tmp_path, monkeypatch, fake_server)
    return fake_server


def _row(opt_id: int) -> Optimization:
    with session_scope() as s:
        return s.get(Optimization, opt_id)


def test_labelled_few_shot_makes_no_calls_of_its_own(env):
    answer(env)
    opt_id = optimize(optimizer="labeled", settings={"k": 2})
    row = _row(opt_id)
    assert row.status == "done" and row.baseline_score == 1.0
    # One baseline and one final pass over validation, nothing else.
    assert row.lm_calls == 2 * len(row.config["plan"]["val_ids"]) == env.count()
    assert len(row.program["demos"]) == 2 and row.cost_usd > 0


def test_nothing_better_leaves_the_users_version_untouched_and_says_so(env):
    answer(env)  # the model is always right: demos cannot make it better
    with session_scope() as s:
        version = store.resolve(s, "cap")
    opt_id = optimize(optimizer="bootstrap", settings={"max_bootstrapped_demos": 2, "max_labeled_demos": 0})
    row = _row(opt_id)
    assert row.status == "done", row.log
    assert row.baseline_score == 1.0 and row.final_score == 1.0
    prop = proposal_of(row)
    assert prop.changed and not prop.improved and not prop.can_save and prop.can_override
    assert "Nothing better found" in prop.reason
    with session_scope() as s, pytest.raises(ValidationError, match="Nothing better found") as err:
        save_result(s, optimization_id=opt_id)
    assert err.value.field == "override" and "--" not in str(err.value)
    with session_scope() as s:  # the user's version is untouched and no version was added
        assert [v.number for v in s.exec(select(PromptVersion))] == [version.number]
    # Demos were bootstrapped from the model's own correct answers.
    assert len(row.program["demos"]) == 2 and row.program["messages"][2]["role"] == "assistant"


def test_call_cap_is_never_exceeded_and_stops_the_optimizer(env):
    # Every reply is wrong, so bootstrapping would try every training row.
    opt_id = optimize(optimizer="bootstrap", max_calls=9, settings={"max_labeled_demos": 0})
    row = _row(opt_id)
    val = len(row.config["plan"]["val_ids"])
    assert row.call_cap == 9 and row.lm_calls <= 9 and env.count() == row.lm_calls
    assert row.status == "done" and "Stopped at" in row.log
    # Baseline (val calls), then the optimizer's share (cap minus the final pass kept in reserve).
    assert row.lm_calls == val + (9 - 2 * val)
    assert proposal_of(row).reason == "The optimizer learned nothing to propose."


def test_a_cap_below_two_validation_passes_is_refused(env):
    with session_scope() as s, pytest.raises(ValidationError, match="too low") as err:
        plan_optimization(s, OptimizeSpec(prompt="cap", dataset="caps", model=FAKE, max_calls=3))
    assert err.value.field == "max_calls" and "--" not in str(err.value)


@pytest.mark.parametrize(
    "extra",
    [
        {"response_format": {"type": "object", "properties": {"city": {"type": "string"}}}},
        {"tools": [{"name": "lookup", "parameters": {"type": "object", "properties": {}}}]},
        {"placeholder": True},
    ],
    ids=["response_format", "tools", "placeholder"],
)
def test_a_version_with_more_than_chat_text_is_refused_before_any_call(env, extra):
    from tests.optimize_helpers import SYSTEM, USER

    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]
    if extra.pop("placeholder", False):
        msgs.insert(1, {"placeholder": "history"})
    with session_scope() as s:
        store.save_version(s, prompt_name="cap", messages=msgs, **extra)
    calls = env.count()
    with session_scope() as s, pytest.raises(ValidationError, match="plain chat messages only"):
        plan_optimization(s, OptimizeSpec(prompt="cap@2", dataset="caps", model=FAKE))
    assert env.count() == calls


def test_an_unknown_optimization_is_not_found(env):
    with session_scope() as s, pytest.raises(NotFoundError, match="No optimization with id 999") as err:
        require_optimization(s, 999)
    assert err.value.field == "optimization"


def test_estimate_and_default_cap(env):
    with session_scope() as s:
        plan = plan_optimization(
            s, OptimizeSpec(prompt="cap", dataset="caps", model=FAKE, optimizer="bootstrap", seed=3)
        )
        again = plan_optimization(
            s, OptimizeSpec(prompt="cap", dataset="caps", model=FAKE, optimizer="bootstrap", seed=3)
        )
    assert (len(plan.train_ids), len(plan.val_ids)) == (4, 4)
    assert plan.train_ids == again.train_ids  # seeded
    assert plan.calls == {"baseline": 4, "optimizer_task": 4, "optimizer_prompt": 0, "final": 4, "judge": 0}
    assert plan.estimated_calls == 12 and plan.call_cap == 24
    assert plan.estimated_cost_usd is not None and plan.estimated_cost_usd > 0


def test_cancel_stops_within_one_call_and_keeps_what_was_learned(env):
    answer(env, latency=0.1)
    with session_scope() as s:
        from workbench.optimize.run import create_optimization

        row, plan = create_optimization(
            s,
            OptimizeSpec(
                prompt="cap",
                dataset="caps",
                model=FAKE,
                seed=1,
                optimizer="bootstrap",
                settings={"max_bootstrapped_demos": 6, "max_labeled_demos": 0},
                train_fraction=0.75,
            ),
        )
    from workbench.optimize.worker import run_optimization

    worker = threading.Thread(target=run_optimization, args=(row.id,))
    worker.start()
    val = len(plan.val_ids)
    while env.count() < val + 2 and worker.is_alive():  # two bootstrap calls made
        time.sleep(0.01)
    with session_scope() as s:
        request_cancel(s, optimization_id=row.id)
    calls_at_cancel = env.count()
    worker.join(60)
    done = _row(row.id)
    assert done.status == "cancelled"
    assert env.count() <= calls_at_cancel + 1 and done.lm_calls == env.count()
    assert done.final_score is None and done.program["demos"]  # bootstrapped demos are kept
    # Not scored on the held-out rows: no paired test backs it, so only an override saves it.
    prop = proposal_of(done)
    assert not prop.can_save and prop.can_override and "no paired test" in prop.reason


def test_save_and_rescore_after_cancel(env):
    answer(env)
    opt_id = optimize(optimizer="labeled", settings={"k": 2})
    with session_scope() as s:
        row = s.get(Optimization, opt_id)
        row.final_score = None  # as if the run had stopped before scoring: only an override saves it
        s.add(row)
    with session_scope() as s:
        version, created = save_result(s, optimization_id=opt_id, override=True)
        assert created and version.number == 2 and version.source == "dspy"
        parent = store.resolve(s, "cap@1")
        assert version.parent_id == parent.id
        assert "Saved by override" in version.note
    result = rescore(opt_id)
    assert result.sweep_score == 1.0 and result.rows == 4
    # The sweep ran the input version too, on the same rows: the paired comparison of the two.
    assert result.input_score == 1.0 and result.paired["n"] == 4
    assert result.paired["verdict"] == "not worse" and result.paired["diff"] == 0
    with session_scope() as s:
        row = s.get(Optimization, opt_id)
        version = s.get(PromptVersion, row.output_version_id)
        assert row.output_version_id == version.id
        assert f"Re-scored by sweep #{result.sweep_id}: 1.000" in version.note
        assert row.config["rescore"]["sweep_score"] == 1.0


def test_provider_auth_error_fails_the_run_with_its_message(env):
    from tests.fakeserver import Reply

    env.default = Reply(status=401)
    opt_id = optimize(optimizer="labeled", num_threads=1)
    row = _row(opt_id)
    assert row.status == "failed" and "auth" in row.error and row.lm_calls == 1


@pytest.mark.parametrize("optimizer", ["gepa", "mipro"])
def test_instruction_optimizers_are_wired_and_stay_within_the_cap(env, optimizer):
    from tests.fakeserver import Reply
    from tests.optimize_helpers import FAKE2

    answer(env, ["France", "Japan", "Italy"])
    env.script(
        "proposed_instruction", [Reply(text="[[ ## proposed_instruction ## ]]\nName the capital only.")]
    )
    env.default = Reply(text="```\nName the capital city, one word.\n```")
    settings = {"max_metric_calls": 12} if optimizer == "gepa" else {}
    opt_id = optimize(optimizer=optimizer, prompt_model=FAKE2, settings=settings, max_calls=60, num_threads=1)
    row = _row(opt_id)
    assert row.status == "done", row.log + (row.error or "")
    assert row.lm_calls <= 60 and row.lm_calls == env.count()
    assert row.prompt_model == FAKE2 and row.final_score is not None
