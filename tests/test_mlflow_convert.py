"""Versions <-> MLflow chat prompts without a server: MLflow's own `PromptVersion.format` renders a
pushed template to exactly what the workbench renders, and a pull gives back the same content."""

from __future__ import annotations

import pytest

from workbench.mlflow_sync import convert
from workbench.prompts import templates

mlflow_entities = pytest.importorskip("mlflow.entities.model_registry", reason="needs mlflow")

CASES = [
    # (messages, variables, marker expected)
    ([{"role": "user", "content": "Capital of {{ country }}?"}], {"country": "Peru"}, False),
    (
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "{{q}} and {{ q }}"}],
        {"q": "x"},
        False,
    ),
    ([{"role": "user", "content": "Hello {{ name | upper }}!"}], {"name": "ada"}, True),
    ([{"role": "user", "content": "{{ a ~ '-' ~ b }}"}], {"a": "1", "b": "2"}, True),
    ([{"role": "user", "content": "Hi {# not shown #}{{ name }}"}], {"name": "bo"}, True),
    ([{"role": "user", "content": "  {{- name }}  "}], {"name": "trimmed"}, True),
    (
        [
            {"role": "system", "content": "Plain {{ topic }}, and {{ topic | title }}"},
            {"role": "user", "content": "{% for x in items %}{{ x }};{% endfor %}"},
        ],
        {"topic": "jinja prompts", "items": ["a", "b"]},
        False,  # a {% %} tag anywhere: MLflow renders every message with Jinja already
    ),
    (
        [{"role": "user", "content": "{% if urgent %}NOW: {% endif %}{{ task }}"}],
        {"urgent": True, "task": "t"},
        False,
    ),
    ([{"role": "user", "content": "{{ user.name }} wrote"}], {"user": {"name": "Ana"}}, True),
]


@pytest.mark.parametrize(("messages", "variables", "marker"), CASES)
def test_mlflow_renders_a_pushed_template_as_the_workbench_does(messages, variables, marker):
    template, marked = convert.to_mlflow_template(messages)
    assert marked is marker
    prompt = mlflow_entities.PromptVersion("p", 1, template)
    assert prompt.format(**variables) == templates.render_messages(messages, variables)
    assert convert.from_mlflow_template(template) == messages  # the marker comes off again


def test_a_placeholder_travels_as_a_message_and_comes_back():
    messages = [
        {"role": "system", "content": "Sum up {{ topic | lower }}"},
        {"role": "placeholder", "content": "history"},
    ]
    template, marked = convert.to_mlflow_template(messages)
    assert marked and template[1] == {"role": "placeholder", "content": "history"}
    assert template[0]["content"].startswith(convert.JINJA_MARKER)
    assert convert.from_mlflow_template(template) == messages


def test_a_text_prompt_is_one_user_message_and_rich_content_is_refused():
    assert convert.from_mlflow_template("Hi {{x}}") == [{"role": "user", "content": "Hi {{x}}"}]
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]}]
    with pytest.raises(Exception, match="not plain text"):
        convert.from_mlflow_template(image)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"temperature": 0.0, "max_tokens": 256},
        {"model": "openai/gpt-4o-mini", "temperature": 0.7, "top_p": 0.9, "stop": ["\n", "END"], "seed": 3},
    ],
)
def test_params_round_trip_through_mlflow_model_config(params):
    config = convert.model_config(params)
    checked = mlflow_entities.PromptModelConfig.from_dict(config).to_dict()  # MLflow validates it
    assert convert.params_from(checked) == (params, [])


def test_model_config_made_in_mlflow():
    params, notes = convert.params_from({"provider": "anthropic", "model_name": "claude-x", "top_k": 5})
    assert params == {"model": "anthropic/claude-x", "top_k": 5} and notes == []
    params, notes = convert.params_from({"provider": "openai", "model_name": "openai/gpt-4o"})
    assert params == {"model": "openai/gpt-4o"} and "provider 'openai' not kept" in notes[0]


@pytest.mark.parametrize(
    ("label", "ok"),
    [("production", True), ("canary-2", True), ("my_label", True), ("prod.v2", False), ("latest", False),
     ("V3", False), ("v3a", True)],
)  # fmt: skip
def test_which_labels_can_be_aliases(label, ok):
    assert (convert.alias_problem(label) is None) is ok


def test_names():
    assert convert.mlflow_name("support triage") == "support_triage"
    assert convert.mlflow_name("capital.v2-x") == "capital.v2-x"
