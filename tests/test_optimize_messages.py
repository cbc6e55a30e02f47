"""The saved version renders to exactly the messages DSPy scored (adapter == messages == wire)."""

import pytest

from workbench.db import migrate, session_scope
from workbench.optimize import messages
from workbench.prompts import store, templates

NASTY = [
    "plain",
    "a {{ x }} b",
    "{% raw %}{% endraw %}",
    "trailing newline\n",
    "quotes ' \" and \\ backslash",
    "}} {{ ' }}",
    "unicode ü 🎉 {# not a comment #}",
    "\r\nctrl\x00\x7f",
    "",
]


@pytest.mark.parametrize("text", NASTY)
def test_literal_renders_to_the_text_itself(text):
    assert templates.render_text(messages.literal(text), {}) == text


def test_plain_text_stays_readable():
    assert messages.literal("Review: great\nSentiment:") == "Review: great\nSentiment:"


def test_demos_go_before_the_final_user_turn_and_instructions_replace_the_system():
    base = messages.split_template(
        [
            {"role": "system", "content": "Old {{ tone }}"},
            {"role": "user", "content": "Q: {{ q }}"},
        ]
    )
    msgs = messages.build_messages(
        base, instructions="New, for {{ q }}", demos=[messages.Demo({"q": "1+1", "tone": "dry"}, "2")]
    )
    assert msgs == [
        {"role": "system", "content": "New, for {{ q }}"},
        {"role": "user", "content": "Q: 1+1"},
        {"role": "assistant", "content": "2"},
        {"role": "user", "content": "Q: {{ q }}"},
    ]
    # Instructions that are not a valid template of known variables stay literal text.
    odd = messages.build_messages(base, instructions="Use {{ unknown }} and {% if")
    assert templates.render_text(odd[0]["content"], {}) == "Use {{ unknown }} and {% if"


def test_a_version_without_system_message_gets_one_only_when_instructions_change():
    base = messages.split_template([{"role": "user", "content": "{{ q }}"}])
    assert messages.build_messages(base, instructions="") == [{"role": "user", "content": "{{ q }}"}]
    assert messages.build_messages(base, instructions="Be brief.")[0] == {
        "role": "system",
        "content": "Be brief.",
    }


def test_adapter_messages_equal_the_saved_versions_rendering():
    from workbench.optimize.adapter import WorkbenchAdapter, dspy, make_program, make_shape, predictor_of

    migrate()
    version_messages = [
        {"role": "system", "content": "Classify {{ review }}'s sentiment."},
        {"role": "user", "content": "Review: {{ review }}\nSentiment:"},
    ]
    shape = make_shape(version_messages, ["review"])
    program = make_program(shape)
    predictor = predictor_of(program)
    predictor.signature = predictor.signature.with_instructions("Rewritten: {{ review }} {{ nope }}\n")
    predictor.demos = [
        dspy.Example(review=text, output=f"label {i}\n").with_inputs("review") for i, text in enumerate(NASTY)
    ]
    inputs = {"review": "I {{ love }} it {% raw %}"}
    adapter = WorkbenchAdapter(shape)
    formatted = adapter.format(predictor.signature, predictor.demos, inputs)

    exported = shape.messages(predictor.signature.instructions, predictor.demos)
    with session_scope() as s:
        version, _ = store.save_version(s, prompt_name="p", messages=exported, source="dspy")
        rendered = store.render_version(version, inputs)
    assert rendered == formatted
    assert len(formatted) == 2 + 2 * len(NASTY)
    assert formatted[0]["content"] == "Rewritten: {{ review }} {{ nope }}"  # literal, not rendered
    assert formatted[2] == {"role": "assistant", "content": "label 0\n"}


def test_what_the_provider_receives_is_the_rendered_version(tmp_path, monkeypatch, fake_server):
    from tests.optimize_helpers import FAKE, setup
    from workbench.optimize.adapter import WorkbenchAdapter, dspy, make_program, make_shape, predictor_of
    from workbench.optimize.engine import CallBudget, make_lm

    setup(tmp_path, monkeypatch, fake_server)
    with session_scope() as s:
        version = store.resolve(s, "cap")
    shape = make_shape(version.messages, ["country"])
    program = make_program(shape)
    predictor_of(program).demos = [dspy.Example(country="Peru {{ x }}", output="Lima\n")]
    budget = CallBudget(cap=5)
    with dspy.context(lm=make_lm(FAKE, budget, params=version.params), adapter=WorkbenchAdapter(shape)):
        pred = program(country="France")
    budget.close()
    exported = shape.messages(predictor_of(program).signature.instructions, predictor_of(program).demos)
    sent = [{"role": m["role"], "content": m["content"]} for m in fake_server.requests[-1]["messages"]]
    assert sent == messages.render(exported, {"country": "France"})
    assert pred.output == "echo: Capital of France?" and budget.calls == 1
    assert fake_server.requests[-1]["temperature"] == 0 and fake_server.requests[-1]["max_tokens"] == 8
