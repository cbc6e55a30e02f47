"""The Export page (AppTest): preview and download versions, winners, labels; import with a dry run."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from tests.sweep_helpers import plan, run, seed
from tests.test_export import sweep_two_versions
from tests.test_gate import plant
from workbench import config
from workbench.db import migrate, session_scope
from workbench.prompts import store
from workbench.release import export

PAGE = str(config.PROJECT_ROOT / "pages" / "7_Export.py")


def page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60).run()


def preview_rows(at: AppTest) -> list[str]:
    df = next(d.value for d in at.dataframe if "prompt" in d.value.columns)  # the preview table
    return [f"{p}@{v}" for p, v in zip(df["prompt"], df["version"], strict=True)]


@pytest.fixture
def swept(fake_models):
    seed(4)
    sweep_id = sweep_two_versions()
    with session_scope() as s:
        store.set_label(s, version_id=store.resolve(s, "echo@2").id, label="staging")
    return sweep_id


def test_versions_preview_filters_and_offers_both_downloads(swept):
    at = page()
    assert not at.exception
    assert preview_rows(at) == ["echo@1", "echo@2"]
    assert {b.label for b in at.get("download_button")} >= {"Download CSV", "Download JSON"}
    at.multiselect(key="export.versions").set_value(["echo@2"]).run()
    assert preview_rows(at) == ["echo@2"]
    assert "1 version selected." in [c.value for c in at.caption]


def test_winners_of_a_sweep_and_a_label(swept):
    at = page()
    at.radio(key="export.mode").set_value("Winners of a sweep").run()
    assert not at.exception
    # Four rows cannot tell all right from all wrong apart (p = 0.125): echo@2 ties with the best.
    assert at.success[0].value.startswith(
        "Winners of sweep #1: **echo@1**, by the best mean 'exact' score, tied with **echo@2**"
    )
    assert preview_rows(at) == ["echo@1", "echo@2"]
    evidence = at.dataframe[0].value
    assert list(evidence["version"]) == ["echo@1", "echo@2"]
    assert list(evidence["Δ vs best"]) == ["best", "-1.000"] and list(evidence["p (Holm)"]) == ["", "0.125"]
    assert evidence["test"].iloc[1] == "exact McNemar" and evidence["rows"].iloc[1] == "4"
    assert evidence["only best / only this right"].iloc[1] == "4 / 0"
    assert any("unless it is significantly worse (Holm-adjusted" in c.value for c in at.caption)
    at.radio(key="export.mode").set_value("A label").run()
    at.selectbox(key="export.label").set_value("staging").run()
    assert preview_rows(at) == ["echo@2"]


def test_a_clear_winner_is_shown_alone(fake_models):
    seed(8)
    plant(fake_models, "[Z]", 8, wrong=range(8))
    sweep_id = plan(prompts=["echo@1", "echo@2"], scoring={"metrics": ["exact"]})
    run(sweep_id)
    at = page()
    at.radio(key="export.mode").set_value("Winners of a sweep").run()
    assert "Winner of sweep #1: **echo@1**, by the best mean 'exact' score." in at.success[0].value
    assert preview_rows(at) == ["echo@1"] and len(at.dataframe) == 1
    assert at.dataframe[0].value["score_exact_mean"].tolist() == [1.0]


def test_runs_and_ratings_downloads_for_a_sweep(swept):
    at = page()
    assert at.selectbox(key="export.sweep").value == swept
    labels = {b.label for b in at.get("download_button")}
    assert {"Runs CSV", "Runs JSON", "Ratings CSV", "Ratings JSON"} <= labels


def _file() -> bytes:
    with session_scope() as s:
        store.save_version(s, prompt_name="shipped", messages=[{"role": "user", "content": "Hi {{ who }}"}])
        text = export.export_versions(s, selection=export.Selection(prompts=["shipped"]), fmt="json")
    # Remove it again, as if the file came from another machine.
    from sqlmodel import delete

    from workbench.models import Prompt, PromptVersion

    with session_scope() as s:
        pid = store.get_prompt(s, "shipped").id
        s.exec(delete(PromptVersion).where(PromptVersion.prompt_id == pid))
        s.exec(delete(Prompt).where(Prompt.id == pid))
    return text.encode()


def test_import_shows_a_dry_run_then_imports():
    migrate()
    data = _file()
    at = page()
    at.file_uploader(key="export.import_file").set_value(("shipped.json", data, "application/json")).run()
    assert not at.exception
    shown = [m.value for m in at.markdown]
    assert "- 1 versions would add, 0 already present, 0 conflicts, 1 new prompts." in shown
    with session_scope() as s:
        assert store.get_prompt(s, "shipped") is None
    at.button(key="export.import").click().run()
    assert "Imported. 1 versions added" in at.success[0].value
    with session_scope() as s:
        assert store.resolve(s, "shipped@1").source == "import"


def test_a_bad_file_is_refused_with_its_json_path():
    migrate()
    doc = json.loads(_file())
    doc["versions"][0]["messages"][0]["role"] = "bot"
    at = page()
    at.file_uploader(key="export.import_file").set_value(
        ("bad.json", json.dumps(doc).encode(), "application/json")
    )
    at.run()
    assert "bad.json** was not imported" in at.error[0].value
    assert "Problem at `$.versions[0].messages[0].role`" in [m.value for m in at.markdown]
    assert len(at.button) == 0  # no Import button for a refused file


def test_a_sweep_without_a_winner_says_why_and_the_rest_still_works(swept):
    unscored = plan()
    run(unscored)
    at = page()
    at.radio(key="export.mode").set_value("Winners of a sweep").run()
    at.selectbox(key="export.winners_sweep").set_value(unscored).run()
    assert not at.exception
    shown = at.error[0].value
    assert "has no scores and no ratings, so it has no winner" in shown
    assert "on the Run page" in shown and "--" not in shown  # the page's advice, not a CLI flag
    assert at.file_uploader(key="export.import_file") is not None
