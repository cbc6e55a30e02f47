"""The Run page says how many rows a 5-point difference needs: before a sweep, from the prompt's last
finished sweep, and after one, from the sweep itself."""

from tests.fakeserver import Reply
from tests.sweep_helpers import FAKE, plan, run, seed
from tests.ui.conftest import page
from tests.ui.test_page_run import wait_for
from workbench.db import session_scope
from workbench.prompts import store
from workbench.stats import power

V2_TEMPLATE = "Answer: {{ marker }} {{ text }}"


def fill(at, versions: list[str], temperatures: str = "0"):
    at.multiselect(key="run.versions").set_value(versions)
    at.selectbox(key="run.dataset").set_value("rows")
    at.multiselect(key="run.models").set_value([FAKE])
    at.text_input(key="run.temperatures").set_value(temperatures).run()
    assert not at.exception
    return at


def estimates(at) -> list[str]:
    return [i.value for i in at.info if "difference between" in i.value]


def captions(at) -> str:
    return "\n".join(c.value for c in at.caption)


def test_without_a_finished_sweep_it_says_there_is_nothing_to_go_by(fake_models):
    seed(6)
    plan(prompts=["echo"])  # planned but never run: not a finished sweep
    at = fill(page("pages/3_Run.py"), ["echo@1"])
    assert estimates(at) == []
    assert "No finished sweep of echo yet" in captions(at)


def test_before_and_after_a_sweep_of_two_versions(fake_models):
    # echo@1 echoes the expected answer on all 6 rows; echo@2 ("Answer: ...") only on rows 2 and 4.
    seed(6)
    with session_scope() as s:
        store.save_version(s, prompt_name="echo", messages=[{"role": "user", "content": V2_TEMPLATE}])
    for row in (2, 4):
        fake_models.script(f"Answer: cell-00{row}", [Reply(text=f"echo: cell-00{row} row {row}")])
    previous = plan(prompts=["echo@1", "echo@2"], scoring={"metrics": ["exact"]})
    run(previous)
    needed = power.rows_needed_pass_fail(4 / 6)

    at = fill(page("pages/3_Run.py"), ["echo@2", "echo@1"])
    assert estimates(at) == [
        f"Your dataset has 6 rows; detecting a 5-point difference between versions needs about "
        f"{needed:,} rows (from sweep #{previous})."
    ]
    assert "Measured on exact: echo@1 | openai/fake-model vs echo@2 | openai/fake-model, 4 of 6 rows " in (
        captions(at)
    )
    at.number_input(key="run.limit").set_value(3).run()
    assert estimates(at)[0].startswith("This sweep uses 3 rows; detecting a 5-point difference")

    at.number_input(key="run.limit").set_value(0).run()
    at.button(key="run.start").click().run()
    assert not at.exception
    sweep_id = at.session_state["run.sweep_id"]
    wait_for(sweep_id, lambda p: p.status == "done")
    at.run()
    assert (
        f"This sweep used 6 rows; detecting a 5-point difference between versions needs about {needed:,} "
        "rows (from this sweep)."
    ) in estimates(at)
    # The builder now goes by the newest finished sweep of the prompt: this one.
    assert f"rows (from sweep #{sweep_id})." in estimates(at)[0]


def test_after_a_sweep_of_one_column_it_says_why_there_is_no_figure(fake_models):
    seed(4)
    at = fill(page("pages/3_Run.py"), ["echo@1"])
    at.button(key="run.start").click().run()
    wait_for(at.session_state["run.sweep_id"], lambda p: p.status == "done")
    at.run()
    assert not at.exception
    why = "This sweep used 4 rows; how many a difference needs cannot be told from this sweep: it has one"
    assert why in captions(at)
    assert estimates(at) == []
