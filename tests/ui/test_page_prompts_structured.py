"""The Prompts page's structured output, tools and conversations: edit a JSON Schema and tools, save
them with a version and load them back, refuse a bad schema without losing input, and preview a
conversation placeholder as chat bubbles (tool calls as `name(args)`), with clear errors for a
malformed conversation typed in or read from a dataset row."""

import json

from tests.ui.conftest import page
from workbench import datasets
from workbench.db import session_scope
from workbench.prompts import store

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
    "additionalProperties": False,
}
TOOLS = [
    {
        "name": "lookup_capital",
        "description": "Find the capital of a country.",
        "parameters": {
            "type": "object",
            "properties": {"country": {"type": "string"}},
            "required": ["country"],
        },
    }
]
HISTORY = [
    {"role": "user", "content": "Is it warm in Lima?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "name": "weather", "arguments": {"city": "Lima"}}],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "22 C, sunny"},
    {"role": "assistant", "content": "Yes, 22 C and sunny."},
]


def gen(at):
    return at.session_state["store.gen"]


def versions(name="capital"):
    with session_scope() as s:
        return store.versions_of(s, store.get_prompt(s, name).id)


def bubbles(at):
    """(role, text) of every chat bubble in the preview, the 'from `history`' caption left out."""
    return [(m.name, "\n".join(t.value for t in m.text)) for m in at.chat_message]


def test_schema_and_tools_are_saved_with_the_version_and_loaded_back(examples_db):
    at = page("pages/1_Prompts.py")
    g = gen(at)
    assert at.text_area(key=f"store.schema.{g}").value == ""  # the example has none
    at.text_area(key=f"store.schema.{g}").set_value(json.dumps(SCHEMA))
    at.checkbox(key=f"store.strict.{g}").check()
    at.text_area(key=f"store.tools.{g}").set_value(json.dumps(TOOLS))
    # The tool choice lists the tools' names once the preview has read the Tools box.
    at.button(key=f"store.preview.{g}").click().run()
    assert "lookup_capital" in at.selectbox(key=f"store.tool_choice.{g}").options
    at.selectbox(key=f"store.tool_choice.{g}").set_value("lookup_capital")
    at.text_input(key=f"store.note.{g}").set_value("JSON reply")
    at.button(key=f"store.save.{g}").click().run()
    assert not at.exception
    assert [s.value for s in at.success] == ["Saved capital@2."]

    v1, v2 = versions()
    assert v2.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": SCHEMA, "strict": True},
    }
    assert v2.tools == [{"type": "function", "function": TOOLS[0]}]
    assert v2.tool_choice == {"type": "function", "function": {"name": "lookup_capital"}}
    assert v2.messages == v1.messages and v2.content_hash != v1.content_hash

    # The editor now shows version 2's settings, and the preview summarises them.
    g = gen(at)
    assert json.loads(at.text_area(key=f"store.schema.{g}").value) == SCHEMA
    assert at.checkbox(key=f"store.strict.{g}").value is True
    assert json.loads(at.text_area(key=f"store.tools.{g}").value) == TOOLS
    assert at.selectbox(key=f"store.tool_choice.{g}").value == "lookup_capital"
    summary = "\n".join(m.value for m in at.markdown)
    assert "Reply: JSON `response` (strict) with fields `city`, `country`." in summary
    assert "Tool `lookup_capital(country)`: Find the capital of a country." in summary
    assert "Tool choice: always `lookup_capital`." in summary
    # What the editor loaded is exactly what was saved: saving again creates nothing.
    at.button(key=f"store.save.{g}").click().run()
    assert any("No change: identical to capital@2" in i.value for i in at.info)
    assert len(versions()) == 2
    # The diff between the versions shows the new settings.
    html = "".join(h.proto.body for h in at.tabs[1].get("html"))
    assert "response_format" in html and "lookup_capital" in html


def test_invalid_schema_json_is_refused_and_the_input_is_kept(examples_db):
    at = page("pages/1_Prompts.py")
    g = gen(at)
    broken = '{"type": "object",\n "properties": {"city": {"type": "string"}'
    at.text_area(key=f"store.content.{g}.0").set_value("Answer with the capital only.")
    at.text_area(key=f"store.schema.{g}").set_value(broken)
    at.button(key=f"store.save.{g}").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(e.startswith("Response format: not valid JSON") and "line 2" in e for e in errors), errors
    assert not any("--" in e for e in errors)  # page words, never a command-line flag
    assert any("nothing was saved" in i.value for i in at.info)
    assert len(versions()) == 1
    # Nothing typed is lost: the broken schema and the edited message are still there.
    assert at.text_area(key=f"store.schema.{g}").value == broken
    assert at.text_area(key=f"store.content.{g}.0").value == "Answer with the capital only."

    # A schema that parses but breaks the strict rules names the place, and is refused too.
    at.text_area(key=f"store.schema.{g}").set_value(
        json.dumps({"type": "object", "properties": {"city": {}}})
    )
    at.checkbox(key=f"store.strict.{g}").check()
    at.button(key=f"store.save.{g}").click().run()
    assert any("additionalProperties" in e.value for e in at.error)
    assert len(versions()) == 1

    # A tool choice naming a tool that is not there is refused with the tools' names.
    at.text_area(key=f"store.schema.{g}").set_value("")
    at.text_area(key=f"store.tools.{g}").set_value(json.dumps(TOOLS))
    at.button(key=f"store.preview.{g}").click().run()
    at.selectbox(key=f"store.tool_choice.{g}").set_value("lookup_capital")
    at.text_area(key=f"store.tools.{g}").set_value(json.dumps([{**TOOLS[0], "name": "find_capital"}]))
    at.button(key=f"store.save.{g}").click().run()
    assert any(
        "no tool is called 'lookup_capital'" in e.value and "find_capital" in e.value for e in at.error
    )
    assert len(versions()) == 1


def test_a_conversation_placeholder_previews_as_chat_bubbles(examples_db):
    at = page("pages/1_Prompts.py")
    at.button(key=f"store.add_conversation.{gen(at)}").click().run()
    g = gen(at)
    assert at.session_state["store.draft"]["messages"][-1] == {"role": "placeholder", "content": "history"}
    assert at.selectbox(key=f"store.role.{g}.2").value == "placeholder"
    assert at.text_area(key=f"store.content.{g}.2").value == "history"
    at.text_input(key="store.var.country").set_value("Peru")
    at.text_area(key="store.var.history").set_value(json.dumps(HISTORY)).run()
    assert not at.exception
    assert bubbles(at) == [
        ("system", "Answer with the name of the capital city only."),
        ("user", "What is the capital of Peru?"),
        ("user", "Is it warm in Lima?"),
        ("assistant", 'weather({"city": "Lima"})'),
        ("tool", "22 C, sunny"),
        ("assistant", "Yes, 22 C and sunny."),
    ]
    # The expanded turns say where they came from; the template's turns do not.
    assert [[c.value for c in m.caption] for m in at.chat_message] == [[], []] + [["from `history`"]] * 4

    # Saved, the placeholder is part of the version and its variable is one of the version's.
    at.button(key=f"store.save.{g}").click().run()
    assert [s.value for s in at.success] == ["Saved capital@2."]
    v2 = versions()[-1]
    assert v2.messages[-1] == {"role": "placeholder", "content": "history"}
    assert v2.variables == ["country", "history"]


def test_a_malformed_conversation_is_an_error_naming_the_item_and_the_row(examples_db):
    with session_scope() as s:
        table = datasets.ParsedTable(
            columns=["country", "history"],
            rows=[
                {"country": "Peru", "history": HISTORY},
                {"country": "Chile", "history": [{"role": "bot", "content": "hi"}]},
            ],
        )
        datasets.create_dataset(s, name="chats", table=table)
    at = page("pages/1_Prompts.py")
    at.button(key=f"store.add_conversation.{gen(at)}").click().run()
    at.text_input(key="store.var.country").set_value("Peru")
    at.text_area(key="store.var.history").set_value('[{"role": "user", "content": "hi"}').run()
    (error,) = [e.value for e in at.error]
    assert "'history'" in error and "not a JSON list of messages" in error and "line 1" in error
    assert "under Variables" in error and "--" not in error
    assert not at.chat_message

    # From a dataset: the good row previews, the bad one names its row and item.
    at.selectbox(key="store.preview_dataset").set_value("chats").run()
    at.button(key="store.use_row").click().run()
    assert json.loads(at.text_area(key="store.var.history").value) == HISTORY
    assert len(at.chat_message) == 6 and not at.error
    at.number_input(key="store.preview_row").set_value(2).run()
    at.button(key="store.use_row").click().run()
    (error,) = [e.value for e in at.error]
    assert "(row 2 of 'chats')" in error and "item 1" in error and "'bot'" in error, error
    assert "or the dataset row it came from" in error
    assert not at.chat_message
