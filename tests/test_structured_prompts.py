"""A version's response format, tools and tool choice: checked, normalised, hashed, diffed, read from
files and saved by `prompt add`."""

import hashlib
import json

import pytest

from tests.test_gate import wb
from workbench.db import migrate, session_scope
from workbench.errors import ValidationError
from workbench.prompts import diff, store, structured, templates
from workbench.prompts.files import load_prompt_file
from workbench.prompts.structured import StructuredError

CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
MSGS = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "{{ question }}"}]


def test_a_bare_schema_becomes_openais_response_format():
    rf = structured.check_response_format(CITY)
    assert rf == {"type": "json_schema", "json_schema": {"name": "response", "schema": CITY, "strict": False}}
    assert structured.schema_of(rf) == CITY
    # The whole object, and the {name, schema, strict} short form, normalise to the same thing.
    assert structured.check_response_format(rf) == rf
    assert structured.check_response_format({"name": "response", "schema": CITY}) == rf
    assert structured.check_response_format({"type": "json_object"}) == {"type": "json_object"}
    assert structured.check_response_format(None) is None


def test_strict_mode_rules_are_checked_where_they_break():
    with pytest.raises(StructuredError) as err:
        structured.check_response_format(CITY, strict=True)
    assert err.value.field == "response_format" and "additionalProperties" in str(err.value)
    nested = {
        "type": "object",
        "additionalProperties": False,
        "required": ["place"],
        "properties": {
            "place": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
                "required": ["city"],
            }
        },
    }
    with pytest.raises(StructuredError) as err:
        structured.check_response_format(nested, strict=True)
    assert err.value.path == "$.properties.place" and "missing: zip" in str(err.value)
    nested["properties"]["place"]["required"].append("zip")
    assert structured.check_response_format(nested, strict=True)["json_schema"]["strict"] is True


def test_editor_text_errors_name_the_line_and_the_problem():
    with pytest.raises(StructuredError) as err:
        structured.response_format_from_text('{\n  "type": "object",\n  "properties": {"city": }\n}')
    assert (err.value.line, err.value.column) == (3, 26) and "not valid JSON" in str(err.value)
    with pytest.raises(StructuredError, match=r"at \$\.properties\.city\.type: not a valid JSON Schema"):
        structured.response_format_from_text('{"type": "object", "properties": {"city": {"type": "text"}}}')
    assert structured.response_format_from_text("  ") is None
    assert structured.tools_from_text("") is None


def test_tools_are_normalised_and_checked():
    tools = structured.check_tools([WEATHER])
    assert tools == [{"type": "function", "function": WEATHER}]
    assert structured.check_tools(tools) == tools and structured.check_tools([]) is None
    bad = [
        ([{"name": "get weather"}], "$[0].name", "letters, digits"),
        ([WEATHER, WEATHER], "$[1].name", "defined twice"),
        ([{"name": "f", "parameters": {"type": "array"}}], "$[0].parameters", "type object"),
        ([{"type": "retrieval"}], "$[0].type", "not supported"),
        ("get_weather", "$", "a list of functions"),
    ]
    for value, path, words in bad:
        with pytest.raises(StructuredError) as err:
            structured.check_tools(value)
        assert err.value.field == "tools" and err.value.path == path and words in str(err.value)


def test_tool_choice_names_a_tool():
    tools = structured.check_tools([WEATHER])
    assert structured.check_tool_choice("auto", tools) == "auto"
    assert structured.check_tool_choice("get_weather", tools) == {
        "type": "function",
        "function": {"name": "get_weather"},
    }
    with pytest.raises(StructuredError, match="no tool is called 'get_time'"):
        structured.check_tool_choice("get_time", tools)
    with pytest.raises(StructuredError, match="needs tools"):
        structured.check_tool_choice("required", None)


def test_a_version_without_them_keeps_its_old_hash(session):
    old = hashlib.sha256(
        json.dumps(
            {"messages": MSGS, "params": {"temperature": 0.0}},
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
    ).hexdigest()
    assert old == "e6727fcc8671a454288810253e6ad79bd98bd2accf41bb62eca10bf64937c3a3"
    v, _ = store.save_version(session, prompt_name="qa", messages=MSGS, params={"temperature": 0})
    assert v.content_hash == old == templates.content_hash(MSGS, {"temperature": 0.0})
    assert (v.response_format, v.tools, v.tool_choice) == (None, None, None)


def test_schema_and_tools_are_content_a_new_version_and_a_diff(session):
    v1, _ = store.save_version(session, prompt_name="qa", messages=MSGS)
    v2, created = store.save_version(session, prompt_name="qa", messages=MSGS, response_format=CITY)
    v3, _ = store.save_version(
        session, prompt_name="qa", messages=MSGS, response_format=CITY, tools=[WEATHER], tool_choice="auto"
    )
    assert created and len({v1.content_hash, v2.content_hash, v3.content_hash}) == 3
    same, again = store.save_version(session, prompt_name="qa", messages=MSGS, response_format=CITY)
    assert same.id == v2.id and not again
    # In params (as a prompt file may put them) they are lifted out: the same content.
    lifted, again = store.save_version(
        session, prompt_name="qa", messages=MSGS, params={"response_format": CITY}
    )
    assert lifted.id == v2.id and not again and lifted.params == {}
    assert store.call_params(v3) == {
        "response_format": v3.response_format,
        "tools": [{"type": "function", "function": WEATHER}],
        "tool_choice": "auto",
    }
    text = diff.unified(v2, v3, a_name="qa@2", b_name="qa@3")
    assert "+### tools" in text and '+      "name": "get_weather",' in text and "+### tool_choice" in text
    assert "response_format" not in text  # unchanged lines are context, not changes
    assert "-### response_format" not in diff.unified(v1, v2) and "+### response_format" in diff.unified(
        v1, v2
    )
    copy = store.duplicate_prompt(session, source_name="qa", new_name="qa copy")
    assert copy.tools == v3.tools and copy.content_hash == v3.content_hash


def test_a_bad_schema_saves_nothing(session):
    with pytest.raises(ValidationError) as err:
        store.save_version(session, prompt_name="qa", messages=MSGS, tools=[WEATHER], tool_choice="nope")
    assert err.value.field == "tool_choice"
    assert store.get_prompt(session, "qa") is None


def test_prompt_file_carries_schema_tools_and_placeholders(tmp_path):
    path = tmp_path / "weather.yaml"
    path.write_text(
        "name: weather\n"
        "messages:\n"
        "  - {role: system, content: Answer with the city.}\n"
        "  - placeholder: history\n"
        "  - {role: user, content: '{{ question }}'}\n"
        "response_format: {type: object, properties: {city: {type: string}}, required: [city]}\n"
        "tools:\n"
        "  - name: get_weather\n"
        "    parameters: {type: object, properties: {city: {type: string}}}\n"
        "tool_choice: auto\n"
    )
    pf = load_prompt_file(path)
    assert pf.structured()["response_format"] == CITY and pf.tool_choice == "auto"
    migrate()
    with session_scope() as s:
        v, _ = store.save_version(s, prompt_name="weather", messages=pf.messages, **pf.structured())
        assert v.messages[1] == {"role": "placeholder", "content": "history"}
        assert v.variables == ["history", "question"] and v.tools[0]["function"]["name"] == "get_weather"


def test_prompt_add_options_override_the_file(tmp_path, capsys):
    migrate()
    prompt = tmp_path / "p.json"
    prompt.write_text(json.dumps({"messages": MSGS}))
    schema = tmp_path / "schema.json"
    schema.write_text(
        json.dumps({**CITY, "additionalProperties": False}),
    )
    tools = tmp_path / "tools.yaml"
    tools.write_text(
        "- name: get_weather\n  parameters: {type: object, properties: {city: {type: string}}}\n"
    )
    argv = ["prompt", "add", "qa", "--file", str(prompt), "--schema", str(schema), "--strict"]
    assert wb(*argv, "--tools", str(tools), "--tool-choice", "get_weather") == 0
    assert "Saved qa@1" in capsys.readouterr().out
    with session_scope() as s:
        v = store.resolve(s, "qa@1")
        assert v.response_format["json_schema"]["strict"] is True
        assert v.tool_choice == {"type": "function", "function": {"name": "get_weather"}}
    assert wb("prompt", "show", "qa@1") == 0
    shown = capsys.readouterr().out
    assert 'response_format: {"type": "json_schema"' in shown and "tool_choice:" in shown
    assert wb("prompt", "add", "qa", "--file", str(prompt), "--tool-choice", "auto") == 2
    assert "Tool choice: a tool choice needs tools" in capsys.readouterr().err
