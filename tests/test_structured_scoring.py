"""Scorers for structured output (json_valid, json_match, tool_call) and how outputs read."""

import json

import pytest

from workbench import metrics
from workbench.sweeps import outputs
from workbench.sweeps.scoring import ScoringConfig, json_match_fields, score_output

CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
PARIS = [{"id": "c1", "name": "get_weather", "arguments": {"city": "Paris", "unit": "C"}}]


def score(metric, output, expected=None, **kwargs):
    [(name, value, detail)] = score_output(ScoringConfig(metrics=[metric]), output, expected, **kwargs)
    assert name == metric
    return value, detail


def test_json_valid_checks_the_versions_schema():
    assert score("json_valid", '{"city": "Paris"}', schema=CITY) == (1.0, None)
    assert score("json_valid", '```json\n{"city": "Paris"}\n```', schema=CITY)[0] == 1.0
    assert score("json_valid", '{"town": "Paris"}', schema=CITY) == (
        0.0,
        "(root): 'city' is a required property",
    )
    assert score("json_valid", '{"city": 7}', schema=CITY) == (0.0, "city: 7 is not of type 'string'")
    value, detail = score("json_valid", "Paris", schema=CITY)
    assert value == 0.0 and detail.startswith("not JSON")
    value, detail = score("json_valid", "[1]")  # no schema: parsing is the test
    assert value == 1.0 and "no schema" in detail


def test_json_match_scores_each_expected_field():
    expected = json.dumps({"city": "Paris", "country": "France", "geo": {"lat": 48.9, "lon": 2.35}})
    value, detail = score(
        "json_match", '{"city": "paris", "country": "Spain", "geo": {"lat": 48.9}, "x": 1}', expected
    )
    assert json_match_fields(detail) == {"city": 1.0, "country": 0.0, "geo.lat": 1.0, "geo.lon": 0.0}
    assert value == pytest.approx(0.5)
    value, detail = score("json_match", "no json here", expected)
    assert value == 0.0 and json.loads(detail)["error"].startswith("not JSON")
    value, detail = score("json_match", '{"n": 1.0}', '{"n": 1}')
    assert value == 1.0
    assert score("json_match", '{"a": 1}', "plain text")[0] is None  # nothing to match field by field


def test_tool_call_needs_the_name_and_the_arguments():
    want = json.dumps({"name": "get_weather", "arguments": {"city": "paris", "unit": "C"}})
    assert score("tool_call", "", want, tool_calls=PARIS) == (1.0, None)
    value, detail = score(
        "tool_call", "", json.dumps({"name": "get_weather", "arguments": {"city": "Lyon"}}), tool_calls=PARIS
    )
    assert value == 0.0
    made = 'get_weather({"city": "Paris", "unit": "C"})'
    assert detail == f'expected get_weather({{"city": "Lyon"}}); the reply made {made}'
    assert score("tool_call", "", "get_weather", tool_calls=PARIS)[0] == 1.0  # a bare name: any arguments
    assert (
        score("tool_call", "It is sunny.", "get_weather")[1]
        == "expected get_weather; the reply made no tool call"
    )
    assert score("tool_call", "hi", "[]") == (1.0, None)  # expects no call
    two = [*PARIS, {"id": "c2", "name": "get_time", "arguments": {}}]
    assert score("tool_call", "", want, tool_calls=two)[1] == "unexpected call(s): get_time()"
    openai_shape = json.dumps(
        {"function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "C"}'}}
    )
    assert score("tool_call", "", openai_shape, tool_calls=PARIS)[0] == 1.0


def test_the_registry_knows_what_they_need():
    assert metrics.get("json_valid").can_gate and not metrics.get("json_valid").needs_expected
    assert metrics.get("json_match").needs_expected and not metrics.get("json_match").pass_fail
    assert metrics.get("tool_call").needs_expected and metrics.get("tool_call").pass_fail


def test_outputs_read_as_pretty_json_or_name_args():
    view = outputs.view('{"city":"Paris","tags":["a"]}')
    assert view.kind == "json" and view.text == '{\n  "city": "Paris",\n  "tags": [\n    "a"\n  ]\n}'
    assert outputs.view("Paris.").kind == "text"
    calls = outputs.view("", PARIS)
    assert calls.kind == "tool_calls" and calls.text == 'get_weather({"city": "Paris", "unit": "C"})'
    raw = outputs.format_tool_call({"name": "f", "arguments": "{not json"})
    assert raw == "f({not json)"


def test_per_field_json_diff_between_two_columns():
    a = '{"city": "Paris", "geo": {"lat": 48.9, "lon": 2.35}, "n": 1}'
    b = {"city": "Paris", "geo": {"lat": 49.0}, "n": 1.0, "extra": True}
    assert [(d.path, d.status) for d in outputs.json_field_diff(a, b)] == [
        ("city", "same"),
        ("geo.lat", "changed"),
        ("geo.lon", "only_a"),
        ("n", "same"),
        ("extra", "only_b"),
    ]
    assert [d.status for d in outputs.json_field_diff("not json", "not json")] == ["same"]


def test_only_a_400_about_a_missing_feature_is_called_unsupported():
    from workbench.errors import ProviderError
    from workbench.providers.catalog import ModelEntry
    from workbench.providers.features import unsupported_error

    entry = ModelEntry(id="openai/x")
    tools = {"tools": [{"type": "function", "function": {"name": "f"}}]}
    lacking = ProviderError(
        "'tools' is not supported with this model", kind="bad_request", transient=False, status_code=400
    )
    assert unsupported_error(entry, tools, lacking).kind == "unsupported"
    assert unsupported_error(entry, {}, lacking).kind == "bad_request"  # the call offered no tools
    other = ProviderError(
        "messages with role 'tool' must answer a tool call",
        kind="bad_request",
        transient=False,
        status_code=400,
    )
    assert unsupported_error(entry, tools, other) is other
