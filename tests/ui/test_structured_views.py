"""Compare and Rate on structured replies from the scripted server: JSON pretty-printed with a
per-field diff, tool calls as `name(args)`, cached / reasoning tokens and json_match per field."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from tests.fakeserver import Reply
from tests.sweep_helpers import FAKE, plan, run
from tests.ui.conftest import page
from tests.ui.test_page_compare import tab
from workbench import config, datasets, present
from workbench.db import session_scope
from workbench.prompts import store
from workbench.sweeps.outputs import pretty_json

CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = {
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
PARIS = {"city": "Paris", "country": "France"}
LYON = {"city": "Lyon", "size": "big"}
PARIS_CALL = 'get_weather({"city": "Paris"})'
ROME_TEXT = 'Checking the forecast.\nget_weather({"city": "Rome"})'


@pytest.fixture
def sweeps(fake_models):
    """Two done sweeps of two prompt versions each: JSON replies (json_match scored, the first
    version's usage with cached and reasoning tokens) and tool-call replies. Returns their ids."""
    server = fake_models
    with session_scope() as s:
        for template in ("city of {{ country }}", "capital of {{ country }}"):
            store.save_version(
                s, prompt_name="city", messages=[{"role": "user", "content": template}], response_format=CITY
            )
        for template in ("weather in {{ country }}", "forecast for {{ country }}"):
            store.save_version(
                s,
                prompt_name="weather",
                messages=[{"role": "user", "content": template}],
                tools=[WEATHER],
                tool_choice="auto",
            )
        rows = [
            {"country": c, "answer": json.dumps({"city": city})}
            for c, city in (("France", "Paris"), ("Italy", "Rome"))
        ]
        table = datasets.ParsedTable(["country", "answer"], rows)
        datasets.create_dataset(s, name="cities", table=table, expected_column="answer")
    server.script("city of", [Reply(json=PARIS, prompt_tokens=10, cached_tokens=6, reasoning_tokens=3)])
    server.script("capital of", [Reply(json=LYON)])
    server.script("weather in", [Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])])
    server.script(
        "forecast for",
        [
            Reply(
                text="Checking the forecast.",
                tool_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}}],
            )
        ],
    )
    ids = []
    for prompt, metric in (("city", ["json_match"]), ("weather", ["tool_call"])):
        sweep_id = plan(
            prompts=[f"{prompt}@1", f"{prompt}@2"],
            models=[FAKE],
            dataset="cities",
            scoring={"metrics": metric},
        )
        run(sweep_id)
        ids.append(sweep_id)
    return ids


def compare_page(sweep_id: int) -> AppTest:
    at = page("pages/4_Compare.py")
    at.selectbox(key="compare.sweep").set_value(sweep_id).run()
    assert not at.exception
    return at


def frame_with(at, columns: list[str]):
    """The one dataframe on the page with exactly these columns."""
    (found,) = [d.value for d in at.dataframe if list(d.value.columns) == columns]
    return found


def test_compare_grid_shows_pretty_json_and_tool_calls(sweeps):
    json_sweep, tool_sweep = sweeps
    grid = tab(compare_page(json_sweep), "Side by side").dataframe[0].value
    assert len(grid) == 2
    assert list(grid.iloc[0][3:]) == [pretty_json(PARIS), pretty_json(LYON)]
    grid = tab(compare_page(tool_sweep), "Side by side").dataframe[0].value
    # A reply that only calls a tool shows the call, not "(empty output)".
    assert list(grid.iloc[0][3:]) == [PARIS_CALL, ROME_TEXT]


def test_row_detail_diffs_two_json_outputs_field_by_field(sweeps):
    json_sweep, tool_sweep = sweeps
    at = compare_page(json_sweep)
    tab(at, "Side by side")
    # Each column's output in the detail is a highlighted JSON block.
    json_blocks = [c for c in at.code if c.language == "json"]
    assert [c.value for c in json_blocks] == [pretty_json(PARIS), pretty_json(LYON)]
    diff = frame_with(at, ["path", "A", "B", "status"])
    assert diff.to_dict("records") == [
        {"path": "city", "A": '"Paris"', "B": '"Lyon"', "status": "changed"},
        {"path": "country", "A": '"France"', "B": present.DASH, "status": "only in A"},
        {"path": "size", "A": present.DASH, "B": '"big"', "status": "only in B"},
    ]
    assert any("3 of 3 fields differ" in c.value for c in at.caption)
    # Two tool-call replies: the call's name and arguments field by field.
    at = compare_page(tool_sweep)
    tab(at, "Side by side")
    diff = frame_with(at, ["path", "A", "B", "status"])
    assert diff.to_dict("records") == [
        {"path": "arguments.city", "A": '"Paris"', "B": '"Rome"', "status": "changed"},
        {"path": "name", "A": '"get_weather"', "B": '"get_weather"', "status": "same"},
    ]


def test_summary_shows_token_details_and_json_match_per_field(sweeps):
    json_sweep, tool_sweep = sweeps
    at = compare_page(json_sweep)
    summary = tab(at, "Summary").dataframe[0].value
    assert list(summary["cached tokens"]) == ["12", present.DASH]  # 2 rows x 6; the other reported none
    # city@2's replies report no reasoning tokens: stored as none, or as the 0 LiteLLM fills in.
    assert summary["reasoning tokens"].iloc[0] == "6" and summary["reasoning tokens"].iloc[1] in (
        "0",
        present.DASH,
    )
    columns = list(summary["column"])
    fields = frame_with(at, ["field", *columns])
    # city@1 always answers Paris (right on the France row), city@2 always Lyon.
    assert fields.to_dict("records") == [
        {"field": "city", columns[0]: "0.500 (n=2)", columns[1]: "0.000 (n=2)"}
    ]
    summary = tab(compare_page(tool_sweep), "Summary").dataframe[0].value
    assert "cached tokens" not in summary and "reasoning tokens" not in summary  # none reported


def test_rate_card_shows_tool_calls_and_pretty_json(sweeps):
    json_sweep, _ = sweeps
    at = AppTest.from_file(str(config.PROJECT_ROOT / "pages" / "5_Rate.py"), default_timeout=60).run()
    at.text_input(key="rate.rater").input("ann").run()
    assert not at.exception
    assert {at.code[-2].value, at.code[-1].value} == {PARIS_CALL, ROME_TEXT}  # the newest sweep first
    at.selectbox(key="rate.sweep").set_value(json_sweep).run()
    assert not at.exception
    card = at.code[-2:]
    assert {c.value for c in card} == {pretty_json(PARIS), pretty_json(LYON)}
    assert {c.language for c in card} == {"json"}
