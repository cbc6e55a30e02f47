"""The Run page: plan preview, start in the background, progress, cancel, past sweeps."""

import time

import pytest

from tests.fakeserver import Reply
from tests.sweep_helpers import FAKE, seed
from tests.ui.conftest import page
from workbench.db import session_scope
from workbench.prompts.examples import load_examples
from workbench.sweeps.summary import list_sweeps, progress


@pytest.fixture
def fake_run_env(fake_models):
    fake_server = fake_models
    seed(6)
    return fake_server


def wait_for(sweep_id, condition, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope() as s:
            p = progress(s, sweep_id)
        if condition(p):
            return p
        time.sleep(0.2)
    raise AssertionError(f"sweep {sweep_id} did not get there: {p}")


def setup_form(at):
    at.multiselect(key="run.versions").set_value(["echo@1"])
    at.selectbox(key="run.dataset").set_value("rows")
    at.multiselect(key="run.models").set_value([FAKE])
    at.text_input(key="run.temperatures").set_value("0, 1").run()
    return at


def test_plan_preview_then_run_in_background(fake_run_env):
    at = setup_form(page("pages/3_Run.py"))
    metrics = {m.label: m.value for m in at.metric}
    assert (
        metrics["Cells"] == "12"
        and metrics["To call"] == "12"
        and metrics["Estimated cost (max)"] != "unknown"
    )
    at.button(key="run.start").click().run()
    assert not at.exception
    sweep_id = at.session_state["run.sweep_id"]
    wait_for(sweep_id, lambda p: p.status == "done")
    at.run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Done"] == "12" and metrics["Remaining"] == "0" and metrics["ETA"] == "done"
    latest = at.dataframe[-1].value
    assert len(latest) == 12 and set(latest["status"]) == {"done"}
    assert fake_run_env.count() == 12


def test_second_identical_plan_is_all_cached(fake_run_env):
    at = setup_form(page("pages/3_Run.py"))
    at.button(key="run.start").click().run()
    wait_for(at.session_state["run.sweep_id"], lambda p: p.status == "done")
    at.run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["From cache"] == "12" and metrics["To call"] == "0"


def test_cancel_from_the_progress_panel(fake_run_env):
    fake_run_env.default = Reply(latency=0.5)
    at = setup_form(page("pages/3_Run.py"))
    at.number_input(key="run.concurrency").set_value(1).run()
    at.button(key="run.start").click().run()
    sweep_id = at.session_state["run.sweep_id"]
    wait_for(sweep_id, lambda p: p.done >= 1)
    at.run()
    at.button(key="run.cancel").click().run()
    p = wait_for(sweep_id, lambda p: p.status == "cancelled")
    assert p.cancelled >= 1 and p.done >= 1 and p.remaining == 0
    at.run()
    assert at.button(key="run.resume")


def test_bad_input_is_explained_before_starting(fake_run_env):
    at = setup_form(page("pages/3_Run.py"))
    at.text_input(key="run.temperatures").set_value("0, 5").run()
    assert any("temperature=5" in e.value for e in at.error)
    with pytest.raises(KeyError):
        at.button(key="run.start")
    at.text_input(key="run.temperatures").set_value("0").run()
    at.multiselect(key="run.models").set_value([]).run()
    assert any("at least one model" in e.value for e in at.error)
    with session_scope() as s:
        assert list_sweeps(s) == []


def test_unavailable_models_are_listed_with_the_reason(fake_run_env, monkeypatch):
    monkeypatch.delenv("WB_FAKE_KEY")
    at = page("pages/3_Run.py")
    assert FAKE not in at.multiselect(key="run.models").options
    assert any("openai/fake-model (needs WB_FAKE_KEY)" in c.value for c in at.caption)


def test_past_sweeps_can_be_reopened(fake_run_env):
    at = setup_form(page("pages/3_Run.py"))
    at.button(key="run.start").click().run()
    sweep_id = at.session_state["run.sweep_id"]
    wait_for(sweep_id, lambda p: p.status == "done")
    fresh = page("pages/3_Run.py")  # a new browser session: nothing selected yet
    assert fresh.session_state["run.sweep_id"] is None
    fresh.selectbox(key="run.open_id").set_value(sweep_id)
    fresh.button(key="run.open").click().run()
    assert {m.label: m.value for m in fresh.metric}["Done"] == "12"


@pytest.fixture
def examples_run_env(fake_models):
    with session_scope() as s:
        load_examples(s)
    return fake_models


def test_default_rows_are_a_dataset_that_covers_the_default_version(examples_run_env):
    at = page("pages/3_Run.py")
    assert at.multiselect(key="run.versions").value == ["capital@1"]  # the first prompt by name
    rows = at.selectbox(key="run.dataset")
    assert rows.value == "capitals"
    assert rows.options[0] == "capitals"  # datasets that cover the versions come first, the rest marked
    assert "articles (no column for country)" in rows.options[1:]
    assert not any("Missing variable" in e.value for e in at.error)
    assert {m.label: m.value for m in at.metric}["Cells"] != "0"


def test_rows_follow_the_versions_until_the_user_picks(examples_run_env):
    at = page("pages/3_Run.py")
    at.multiselect(key="run.versions").set_value(["sentiment@1"]).run()
    assert at.selectbox(key="run.dataset").value == "sentiment"
    at.selectbox(key="run.dataset").set_value("articles").run()  # the user's choice stands
    at.multiselect(key="run.versions").set_value(["capital@1"]).run()
    assert at.selectbox(key="run.dataset").value == "articles"
    assert any("Missing variable 'country'" in e.value for e in at.error)


def test_a_preview_of_a_big_sweep_starts_its_workers_while_the_user_reads(fake_run_env, monkeypatch):
    from workbench.sweeps import processes, standby

    warmed = []
    monkeypatch.setattr(standby.StandbyPool, "warm", lambda self, url, n: warmed.append(n) or [])
    monkeypatch.setattr(processes, "cores", lambda: 2)
    setup_form(page("pages/3_Run.py"))  # 12 cells: too small to pay for a second process
    assert warmed == []
    monkeypatch.setattr(processes, "MIN_CELLS", 10)
    setup_form(page("pages/3_Run.py"))
    assert warmed and set(warmed) == {1}  # one worker beside the server's own process
    # While a sweep runs in this server (the page reruns after Start, the preview still drawn),
    # no worker starts: the sweep took the standby and uses the cores.
    from workbench.ui import background

    class Busy:
        def any_running(self, prefix):
            return prefix == "sweep-"

    monkeypatch.setattr(background, "runner", lambda: Busy())
    warmed.clear()
    setup_form(page("pages/3_Run.py"))
    assert warmed == []
