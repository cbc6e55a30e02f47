"""Conversations: a `placeholder` message expands to the messages a variable (a dataset column) holds."""

import json

import pytest

from workbench import datasets
from workbench.db import migrate, session_scope
from workbench.errors import MissingVariableError, TemplateError, ValidationError
from workbench.prompts import store, templates
from workbench.prompts.conversation import history_messages
from workbench.sweeps.plan import SweepSpec, build_cells

TEMPLATE = [
    {"role": "system", "content": "You are a travel agent for {{ company }}."},
    {"placeholder": "history"},
    {"role": "user", "content": "{{ question }}"},
]
THREE_TURNS = [
    {"role": "user", "content": "I want to go to Paris."},
    {"role": "assistant", "content": "When would you like to leave?"},
    {"role": "user", "content": "In May. What is the weather like?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "name": "get_weather", "arguments": {"city": "Paris", "month": 5}}],
    },
    {"role": "tool", "tool_call_id": "c1", "content": {"high_c": 20}},
    {"role": "assistant", "content": "Mild: about 20 degrees."},
]


def test_a_three_turn_conversation_from_a_dataset_column_renders_exactly():
    migrate()
    with session_scope() as s:
        store.save_version(s, prompt_name="agent", messages=TEMPLATE)
        table = datasets.ParsedTable(
            ["company", "history", "question"],
            [{"company": "Acme", "history": json.dumps(THREE_TURNS), "question": "Book it."}],
        )
        datasets.create_dataset(s, name="chats", table=table)
        cells, _summary, _ = build_cells(
            s, SweepSpec(prompts=["agent"], models=["local/smollm2-135m-instruct"], dataset="chats")
        )
    assert cells[0]["messages"] == [
        {"role": "system", "content": "You are a travel agent for Acme."},
        {"role": "user", "content": "I want to go to Paris."},
        {"role": "assistant", "content": "When would you like to leave?"},
        {"role": "user", "content": "In May. What is the weather like?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris", "month": 5}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"high_c": 20}'},
        {"role": "assistant", "content": "Mild: about 20 degrees."},
        {"role": "user", "content": "Book it."},
    ]


def test_history_is_data_never_a_template():
    msgs = templates.check_messages(TEMPLATE)
    out = templates.render_messages(
        msgs, {"company": "A", "question": "q", "history": [{"role": "user", "content": "{{ company }}"}]}
    )
    assert out[1] == {"role": "user", "content": "{{ company }}"}
    assert templates.render_messages(msgs, {"company": "A", "question": "q", "history": ""})[1:] == [
        {"role": "user", "content": "q"}
    ]


def test_placeholder_variables_are_required_and_found():
    msgs = templates.check_messages(TEMPLATE)
    assert templates.message_variables(msgs) == ["company", "history", "question"]
    assert templates.required_message_variables(msgs) == ["company", "history", "question"]
    with pytest.raises(MissingVariableError, match="'history' \\(row 2\\)"):
        templates.render_messages(msgs, {"company": "A", "question": "q"}, context="(row 2)")
    with pytest.raises(ValidationError, match="plain name"):
        templates.check_messages([{"placeholder": "chat history"}])


@pytest.mark.parametrize(
    "value, words",
    [
        ("[{'role': 'user'}]", "is not a JSON list of messages: Expecting property name"),
        (json.dumps({"role": "user", "content": "hi"}), "must hold a list of messages, not dict"),
        (json.dumps([{"role": "robot", "content": "hi"}]), "item 1 has role 'robot'"),
        (json.dumps([{"role": "user", "content": 3}]), "item 1 (user) needs text content"),
        (json.dumps([{"role": "user", "content": "hi", "lang": "en"}]), "unknown key(s) lang"),
        (
            json.dumps([{"role": "tool", "tool_call_id": "x", "content": "1"}]),
            "answers tool call 'x', which no",
        ),
        (
            json.dumps(
                [
                    {"role": "assistant", "tool_calls": [{"id": "a", "name": "f"}]},
                    {"role": "user", "content": "?"},
                ]
            ),
            "item 2: the tool call(s) f (a) have no tool result before this user message",
        ),
        (
            json.dumps([{"role": "assistant", "tool_calls": [{"name": "f", "arguments": "{oops"}]}]),
            "arguments are not valid JSON",
        ),
    ],
)
def test_a_malformed_conversation_names_the_row_and_the_item(value, words):
    msgs = templates.check_messages(TEMPLATE)
    context = "(agent@1, row 7 of dataset 'chats')"
    with pytest.raises(TemplateError) as err:
        templates.render_messages(msgs, {"company": "A", "question": "q", "history": value}, context=context)
    text = str(err.value)
    assert text.startswith(f"Template error (message 2): The variable 'history' {context}")
    assert words in text


def test_a_bad_row_stops_planning_before_any_call():
    migrate()
    with session_scope() as s:
        store.save_version(s, prompt_name="agent", messages=TEMPLATE)
        rows = [{"company": "A", "history": json.dumps(THREE_TURNS[:2]), "question": "q"}] * 2
        rows.append({"company": "A", "history": '[{"role": "user"}]', "question": "q"})
        datasets.create_dataset(
            s, name="chats", table=datasets.ParsedTable(["company", "history", "question"], rows)
        )
        with pytest.raises(TemplateError, match=r"row 3 of dataset 'chats'.*item 1 \(user\) needs text"):
            build_cells(
                s, SweepSpec(prompts=["agent"], models=["local/smollm2-135m-instruct"], dataset="chats")
            )


def test_tool_results_without_ids_answer_the_waiting_call():
    out = history_messages(
        [
            {"role": "assistant", "tool_calls": [{"name": "f", "arguments": {}}, {"name": "g"}]},
            {"role": "tool", "name": "g", "content": "G"},
            {"role": "tool", "content": "F"},
        ]
    )
    assert [c["id"] for c in out[0]["tool_calls"]] == ["call_1_1", "call_1_2"]
    assert [(m["tool_call_id"], m["content"]) for m in out[1:]] == [("call_1_2", "G"), ("call_1_1", "F")]


def test_render_prints_the_conversation(tmp_path, capsys):
    from tests.test_gate import wb

    migrate()
    with session_scope() as s:
        store.save_version(s, prompt_name="agent", messages=TEMPLATE)
    history = tmp_path / "history.json"
    history.write_text(json.dumps(THREE_TURNS[2:]))
    args = [
        "render",
        "agent",
        "--var",
        "company=Acme",
        "--var",
        f"history=@{history}",
        "--var",
        "question=Go",
    ]
    assert wb(*args) == 0
    out = capsys.readouterr().out
    assert '--- assistant\nget_weather({"city": "Paris", "month": 5})\n' in out
    assert '--- tool (result of c1)\n{"high_c": 20}\n' in out and out.endswith("--- user\nGo\n")
