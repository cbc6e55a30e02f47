"""AppTest of the Optimize page: estimate before starting, a background run, results, save."""

import time

import pytest
from streamlit.testing.v1 import AppTest

from tests.optimize_helpers import FAKE, PLANTED, answer, optimize, plant, setup, validation_countries
from workbench import config
from workbench.db import session_scope
from workbench.models import Optimization, PromptVersion

PAGE = str(config.PROJECT_ROOT / "pages" / "6_Optimize.py")


@pytest.fixture
def env(tmp_path, monkeypatch, fake_server):
    setup(tmp_path, monkeypatch, fake_server)
    answer(fake_server)
    return fake_server


def open_page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for e in [*at.success, *at.info, *at.warning, *at.error]]
    return "\n".join(str(p) for p in parts)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_the_plan_shows_split_estimate_and_cap_before_starting(env):
    at = open_page()
    at.selectbox(key="optimize.model").set_value(FAKE).run()
    at.selectbox(key="optimize.optimizer").set_value("bootstrap").run()
    assert metric(at, "Train / validation rows") == "4 / 4"
    assert metric(at, "Estimated calls") == "12" and metric(at, "Hard call cap") == "24"
    assert metric(at, "Estimated cost").startswith("$")
    at.number_input(key="optimize.max_calls").set_value(3).run()
    assert "too low" in texts(at)
    at.selectbox(key="optimize.optimizer").set_value("gepa").run()
    at.number_input(key="optimize.max_calls").set_value(0).run()
    assert "stronger prompt model is recommended" in texts(at)


def test_start_runs_in_the_background_and_shows_results(env):
    at = open_page()
    at.selectbox(key="optimize.model").set_value(FAKE).run()
    at.selectbox(key="optimize.optimizer").set_value("labeled").run()
    at.button(key="optimize.start").click().run()
    assert "started" in texts(at)
    with session_scope() as s:
        opt_id = s.query(Optimization).one().id
    for _ in range(600):  # wait for the background job (not a timing assertion)
        with session_scope() as s:
            if s.get(Optimization, opt_id).status == "done":
                break
        time.sleep(0.05)
    at.run()
    assert not at.exception
    assert metric(at, "Baseline (validation)") == "1.000" and metric(at, "Calls used") == "8 / 16"
    assert "Nothing better found" in texts(at)
    assert metric(at, "Verdict") == "not worse" and metric(at, "p-value") == "1"
    assert at.button(key="optimize.save").disabled


def test_save_creates_the_next_version_and_rescores_it(env):
    opt_id = optimize(optimizer="labeled", settings={"k": 2})
    with session_scope() as s:  # as if the run stopped before its final pass: only an override saves it
        row = s.get(Optimization, opt_id)
        row.final_score = None
        s.add(row)
    at = open_page()
    assert "the run stopped early" in texts(at) and at.button(key="optimize.save").disabled
    at.checkbox(key="optimize.override").check().run()
    at.button(key="optimize.save").click().run()
    assert not at.exception
    for _ in range(600):
        with session_scope() as s:
            if s.get(Optimization, opt_id).config.get("rescore"):
                break
        time.sleep(0.05)
    at.run()
    shown = texts(at)
    assert "Saved as cap@2 (source dspy" in shown and "Re-scored by sweep" in shown
    with session_scope() as s:
        version = s.get(PromptVersion, s.get(Optimization, opt_id).output_version_id)
        assert version.number == 2 and version.source == "dspy"


def _wait_for_rescore(opt_id: int) -> None:
    for _ in range(600):  # the re-scoring sweep runs in the background (not a timing assertion)
        with session_scope() as s:
            if s.get(Optimization, opt_id).config.get("rescore"):
                return
        time.sleep(0.05)


def test_a_gain_that_could_be_chance_is_saved_only_by_a_recorded_override(env):
    env.reset()
    plant(env, fixed=validation_countries(**PLANTED)[:1])  # one of seven held-out rows fixed
    opt_id = optimize(**PLANTED)
    at = open_page()
    shown = texts(at)
    assert "Not shown better" in shown and "could be chance" in shown
    assert metric(at, "Verdict") == "inconclusive" and metric(at, "p-value") == "1"
    assert metric(at, "Difference (optimized − input)") == "+0.143"
    assert at.button(key="optimize.save").disabled
    override = at.checkbox(key="optimize.override")
    assert "Override" in override.label and "lineage records the override" in override.label
    override.check().run()
    assert not at.button(key="optimize.save").disabled
    at.button(key="optimize.save").click().run()
    assert not at.exception
    _wait_for_rescore(opt_id)
    at.run()
    assert "saved by override" in texts(at)
    with session_scope() as s:
        row = s.get(Optimization, opt_id)
        saved = row.config["saved"]
        version = s.get(PromptVersion, row.output_version_id)
    assert saved["override"] is True and saved["evidence"]["verdict"] == "inconclusive"
    assert version.number == 2 and "Saved by override" in version.note


def test_a_clear_gain_on_the_held_out_rows_is_offered_for_saving(env):
    env.reset()
    plant(env, fixed=validation_countries(**PLANTED))  # all seven held-out rows fixed
    optimize(**PLANTED)
    at = open_page()
    assert metric(at, "Verdict") == "better" and "Better on the held-out rows by a paired test" in texts(at)
    assert not at.button(key="optimize.save").disabled
    assert not [c for c in at.checkbox if c.key == "optimize.override"]  # nothing to override


def test_a_run_lost_with_its_process_says_what_was_lost_and_starts_again(env):
    import socket

    from workbench.optimize.recovery import recover_orphans
    from workbench.optimize.run import OptimizeSpec, create_optimization

    spec = OptimizeSpec(prompt="cap", dataset="caps", model=FAKE, optimizer="labeled", settings={"k": 2})
    with session_scope() as s:
        row, _ = create_optimization(s, spec)
        row.status, row.lm_calls, row.cost_usd = "running", 15, 0.0042
        progress = {"phase": "final"}
        row.config = {**row.config, "runner": f"{socket.gethostname()}:999999:x", "progress": progress}
        s.add(row)
        s.flush()
        lost_id = row.id
    assert recover_orphans() == {lost_id: "failed"}  # 1 call left of 16: too few to start over
    at = open_page()
    shown = texts(at)
    assert "Lost: 15 calls ($0.0042) during the final phase" in shown
    assert metric(at, "Calls used") == "15 / 16"
    at.button(key="optimize.again").click().run()
    assert not at.exception
    with session_scope() as s:
        again = s.query(Optimization).filter(Optimization.id != lost_id).one()
        assert again.config["spec"] == s.get(Optimization, lost_id).config["spec"]
    assert at.selectbox(key="optimize.pick").value == again.id
    for _ in range(600):  # the new run goes to the end in the background
        with session_scope() as s:
            if s.get(Optimization, again.id).status == "done":
                break
        time.sleep(0.05)
    assert _status(again.id) == "done"


def _status(opt_id: int) -> str:
    with session_scope() as s:
        return s.get(Optimization, opt_id).status


def test_a_resumed_run_shows_the_calls_carried_over(env):
    opt_id = optimize(optimizer="labeled", settings={"k": 2})
    with session_scope() as s:
        row = s.get(Optimization, opt_id)
        restarts = [{"calls": 3, "cost_usd": 0.001, "phase": "baseline"}]
        row.config = {**row.config, "restarts": restarts}
        s.add(row)
    shown = texts(open_page())
    assert (
        "Resumed after the process running it stopped: 3 calls ($0.0010) during the baseline phase" in shown
    )
