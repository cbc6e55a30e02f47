"""Sweeps with structured output and tools against the scripted OpenAI server: what is sent, what is
stored, how it is scored, what it costs, and a clear per-cell error when a model cannot do it."""

import json

import pytest
from jsonschema import Draft202012Validator
from sqlmodel import select

from tests.fakeserver import Reply
from tests.sweep_helpers import FAST_RETRY
from workbench import datasets
from workbench.db import migrate, session_scope
from workbench.models import Run, Score
from workbench.prompts import store
from workbench.release import export
from workbench.sweeps.execute import ExecutorOptions, execute_sweep
from workbench.sweeps.plan import SweepSpec, create_sweep
from workbench.sweeps.summary import field_scores_frame, runs_frame, summarize

CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = {
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
ROWS = [("Paris", "France"), ("Rome", "Italy"), ("Lima", "Peru")]


@pytest.fixture
def server(fake_server, tmp_path, monkeypatch):
    """Models served by the fake server: priced with a cache price, unpriced and tool-less,
    and gpt-4o-mini priced by LiteLLM's own table."""
    base = fake_server.base_url
    (tmp_path / "models.toml").write_text(
        f'[[model]]\nid = "openai/fake-model"\napi_base = "{base}"\napi_key_env = "WB_FAKE_KEY"\n'
        "input_price_per_million = 1.0\noutput_price_per_million = 4.0\n"
        "cached_input_price_per_million = 0.25\n\n"
        f'[[model]]\nid = "openai/fake-model-small"\napi_base = "{base}"\napi_key_env = "WB_FAKE_KEY"\n'
        "supports_tools = false\n"
        "input_price_per_million = 1.0\noutput_price_per_million = 4.0\n\n"
        f'[[model]]\nid = "openai/gpt-4o-mini"\napi_base = "{base}"\napi_key_env = "WB_FAKE_KEY"\n\n'
        f'[[model]]\nid = "openai/gpt-3.5-turbo"\napi_base = "{base}"\napi_key_env = "WB_FAKE_KEY"\n'
    )
    monkeypatch.setenv("WORKBENCH_MODELS", str(tmp_path / "models.toml"))
    monkeypatch.setenv("WB_FAKE_KEY", "sk-fake")
    migrate()
    with session_scope() as s:
        store.save_version(
            s,
            prompt_name="city",
            messages=[{"role": "user", "content": "city of {{ country }}"}],
            response_format=CITY,
        )
        store.save_version(
            s,
            prompt_name="weather",
            messages=[{"role": "user", "content": "weather in {{ country }}"}],
            tools=[WEATHER],
            tool_choice="auto",
        )
        rows = [
            {
                "country": country,
                "answer": json.dumps({"city": city}),
                "call": json.dumps({"name": "get_weather", "arguments": {"city": city}}),
            }
            for city, country in ROWS
        ]
        table = datasets.ParsedTable(["country", "answer", "call"], rows)
        datasets.create_dataset(s, name="cities", table=table, expected_column="answer")
        datasets.create_dataset(s, name="calls", table=table, expected_column="call")
    return fake_server


def sweep(prompt: str, dataset: str, metrics: list[str], models=("openai/fake-model",), **spec) -> int:
    with session_scope() as s:
        sw, _ = create_sweep(
            s,
            SweepSpec(
                prompts=[prompt], models=list(models), dataset=dataset, scoring={"metrics": metrics}, **spec
            ),
        )
    execute_sweep(sw.id, ExecutorOptions(retry=FAST_RETRY))
    return sw.id


def runs_and_scores(sweep_id: int) -> tuple[list[Run], dict[tuple[int, str], Score]]:
    with session_scope() as s:
        runs = list(s.exec(select(Run).where(Run.sweep_id == sweep_id).order_by(Run.id)))
        scores = {(sc.run_id, sc.metric): sc for sc in s.exec(select(Score))}
    return runs, scores


@pytest.mark.parametrize("stream", [True, False])
def test_tool_calls_are_sent_stored_and_scored(server, stream):
    server.script("France", [Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])])
    server.script("Italy", [Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Milan"}}])])
    server.script("Peru", [Reply(text="I cannot check the weather.")])
    sweep_id = sweep("weather", "calls", ["tool_call"], stream=stream)
    body = server.requests[0]
    assert body["tools"] == [{"type": "function", "function": {**WEATHER}}] and body["tool_choice"] == "auto"
    runs, scores = runs_and_scores(sweep_id)
    paris, milan, text = runs
    assert paris.status == "done" and paris.output == "" and paris.finish_reason == "tool_calls"
    assert paris.tool_calls == [
        {"id": paris.tool_calls[0]["id"], "name": "get_weather", "arguments": {"city": "Paris"}}
    ]
    assert paris.tool_calls[0]["id"].startswith("call_")
    assert text.tool_calls is None and text.output == "I cannot check the weather."
    assert [scores[(r.id, "tool_call")].value for r in runs] == [1.0, 0.0, 0.0]
    assert "the reply made get_weather" in scores[(milan.id, "tool_call")].detail
    with session_scope() as s:
        table = summarize(runs_frame(s, sweep_id))
    assert table["empty"].iloc[0] == 0  # a reply that only calls a tool is not empty
    assert table["score_tool_call_mean"].iloc[0] == pytest.approx(1 / 3)


def test_structured_json_is_sent_validated_and_matched_field_by_field(server):
    server.script("France", [Reply(json={"city": "Paris"})])
    server.script("Italy", [Reply(json={"city": "Milan"})])
    server.script("Peru", [Reply(text="Lima")])
    sweep_id = sweep("city", "cities", ["json_valid", "json_match"])
    sent = server.requests[0]["response_format"]
    assert sent == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": CITY, "strict": False},
    }
    runs, scores = runs_and_scores(sweep_id)
    assert [scores[(r.id, "json_valid")].value for r in runs] == [1.0, 1.0, 0.0]
    assert [scores[(r.id, "json_match")].value for r in runs] == [1.0, 0.0, 0.0]
    assert Draft202012Validator(CITY).is_valid(json.loads(runs[0].output))
    with session_scope() as s:
        fields = field_scores_frame(s, sweep_id)
    assert fields[["field", "mean", "n"]].to_dict("records") == [
        {"field": "city", "mean": pytest.approx(1 / 3), "n": 3}
    ]


def test_cached_and_reasoning_tokens_are_recorded_and_priced_as_billed(server):
    server.default = Reply(
        json={"city": "X"}, prompt_tokens=1000, completion_tokens=100, cached_tokens=800, reasoning_tokens=60
    )
    sweep_id = sweep("city", "cities", [], models=("openai/fake-model", "openai/gpt-4o-mini"))
    runs, _ = runs_and_scores(sweep_id)
    ours = [r for r in runs if r.model == "openai/fake-model"]
    table_priced = [r for r in runs if r.model == "openai/gpt-4o-mini"]
    assert {(r.cached_tokens, r.reasoning_tokens, r.prompt_tokens, r.completion_tokens) for r in runs} == {
        (800, 60, 1000, 100)
    }
    # models.toml: 200 uncached at $1/M, 800 cached at $0.25/M, 100 out at $4/M (reasoning is output).
    assert ours[0].cost_usd == pytest.approx((200 * 1.0 + 800 * 0.25 + 100 * 4.0) / 1e6)
    # LiteLLM's table for gpt-4o-mini: $0.15/M in, $0.075/M cached, $0.60/M out.
    assert table_priced[0].cost_usd == pytest.approx((200 * 0.15 + 800 * 0.075 + 100 * 0.6) / 1e6)
    with session_scope() as s:
        table = summarize(runs_frame(s, sweep_id)).set_index("model")
        rows = export.runs_rows(s, sweep_id=sweep_id)
        doc = export.runs_document(s, sweep_id=sweep_id)
    assert table.loc["openai/fake-model", "cached_tokens"] == 2400
    assert table.loc["openai/fake-model", "reasoning_tokens"] == 180
    assert table.loc["openai/fake-model", "cost_usd"] == pytest.approx(3 * ours[0].cost_usd)
    assert (rows[0]["cached_tokens"], rows[0]["reasoning_tokens"]) == (800, 60)
    assert doc["runs"][0]["cached_tokens"] == 800 and doc["runs"][0]["reasoning_tokens"] == 60
    errors = list(Draft202012Validator(export.load_schema()).iter_errors(doc))
    assert errors == []


def test_a_model_without_the_feature_fails_its_cells_clearly(server):
    server.script("weather in", [Reply(status=400, error_message="tools is not supported for this model")])
    sweep_id = sweep("weather", "calls", [], models=("openai/fake-model-small", "openai/fake-model"))
    runs, _ = runs_and_scores(sweep_id)
    declared = [r for r in runs if r.model == "openai/fake-model-small"]
    refused = [r for r in runs if r.model == "openai/fake-model"]
    # Declared in models.toml: never called. Refused by the provider: one call, no retry.
    assert {(r.status, r.error_kind, r.attempts) for r in declared} == {("failed", "unsupported", 1)}
    assert "openai/fake-model-small cannot call tools" in declared[0].error_message
    assert {(r.status, r.error_kind) for r in refused} == {("failed", "unsupported")}
    assert "tools is not supported" in refused[0].error_message
    assert server.count() == 3
    # LiteLLM's table knows gpt-3.5-turbo has no JSON Schema replies: refused before any call.
    server.reset()
    sweep_id = sweep("city", "cities", [], models=("openai/gpt-3.5-turbo",))
    runs, _ = runs_and_scores(sweep_id)
    assert {r.error_kind for r in runs} == {"unsupported"} and server.count() == 0
    assert "cannot reply in a JSON Schema" in runs[0].error_message


def test_a_cache_hit_keeps_the_tool_calls_and_token_details(server):
    server.default = Reply(
        tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}], cached_tokens=4
    )
    first = sweep("weather", "calls", ["tool_call"])
    second = sweep("weather", "calls", ["tool_call"])
    runs, scores = runs_and_scores(second)
    assert all(r.cached and r.cost_usd == 0.0 for r in runs) and server.count() == 3
    original, _ = runs_and_scores(first)
    assert [r.tool_calls for r in runs] == [r.tool_calls for r in original]
    assert {r.cached_tokens for r in runs} == {4}
    assert [scores[(r.id, "tool_call")].value for r in runs] == [1.0, 0.0, 0.0]
