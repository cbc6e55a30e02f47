"""Workbench versions <-> MLflow chat prompts: templates, parameters, names and aliases.

**Templates stay Jinja.** MLflow's prompt format is double-brace variables, `{{ name }}`, which is
Jinja's own variable syntax, and MLflow renders a template that holds a `{% ... %}` tag with Jinja2
itself (sandboxed). So a version's messages are registered as they are, character for character:
plain `{{ question }}` templates read and format the same in MLflow (`PromptVersion.format`), and
conditionals and loops keep working. The one gap is a template with Jinja *expressions* (a filter
such as `{{ name | upper }}`, `{{ a ~ b }}`, an attribute `{{ user.name }}`, whitespace control
`{{- x }}` or a `{# comment #}`) but no `{% %}` tag anywhere: MLflow would substitute plain
variables only and leave those in the text. Such a template gets `JINJA_MARKER`, a `{% set %}` tag that
renders to nothing, in front of its first message, which makes MLflow render it with Jinja too; a
pull takes the marker off again, so the content (and its hash) is unchanged by the round trip. (One
difference stays with MLflow's plain format: it substitutes variables one after another, so a value
that itself holds `{{ other }}` is filled in too, where the workbench keeps values as data.) A
placeholder entry (a conversation held by a variable) goes as a message with role "placeholder" and
the variable's name as content.

**Parameters** go to MLflow's model config: `model` as `model_name`, `stop` as `stop_sequences`,
the rest under their own names (temperature, max_tokens, top_p, seed, ... as MLflow's fields or
its extra params). A version's response format goes to MLflow's `response_format`; tools and tool
choice, which MLflow has no field for, go into version tags as JSON.

**Names**: MLflow allows letters, digits, '_', '-' and '.' in a prompt name, so a space becomes
'_' (the workbench name is kept in the tag `workbench.prompt`). An alias allows letters, digits,
'_' and '-', and refuses "latest" and "v<digits>"; a label that does not fit stays a tag only.
"""

from __future__ import annotations

import re
from typing import Any

from workbench.errors import ValidationError

JINJA_MARKER = "{% set workbench_jinja = true %}"
PLACEHOLDER = "placeholder"
# MLflow's plain format reads `{{ a.b }}` as one variable named "a.b"; Jinja as attribute b of a.
_SIMPLE_VARIABLE = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*$")
_EXPRESSION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_ALIAS = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)
TO_MLFLOW = {"model": "model_name", "stop": "stop_sequences"}
FROM_MLFLOW = {v: k for k, v in TO_MLFLOW.items()}


def _texts(messages: list[dict[str, Any]]) -> list[str]:
    return [str(m.get("content") or "") for m in messages if m.get("role") != PLACEHOLDER]


def _mlflow_uses_jinja(text: str) -> bool:
    """MLflow's own test (PromptVersion._is_jinja2_template), for one message."""
    return "{%" in text and "%}" in text


def needs_marker(messages: list[dict[str, Any]]) -> bool:
    """True when MLflow would not render these templates the way Jinja does (see the module doc)."""
    texts = _texts(messages)
    if any(_mlflow_uses_jinja(t) for t in texts):
        return False  # MLflow renders every message with Jinja then
    return any("{#" in t or any(not _SIMPLE_VARIABLE.match(e) for e in _EXPRESSION.findall(t)) for t in texts)


def to_mlflow_template(messages: list[dict[str, Any]]) -> tuple[list[dict[str, str]], bool]:
    """A version's messages as an MLflow chat template, and whether the Jinja marker was added."""
    out = [{"role": m["role"], "content": m["content"]} for m in messages]
    if not needs_marker(messages):
        return out, False
    first = next(i for i, m in enumerate(out) if m["role"] != PLACEHOLDER)
    out[first]["content"] = JINJA_MARKER + out[first]["content"]
    return out, True


def from_mlflow_template(template: Any) -> list[dict[str, str]]:
    """An MLflow template (a chat message list or one text) as workbench messages, marker removed.

    A text prompt becomes one user message. Messages that are more than a role and text (images,
    tool calls) cannot be a workbench template: ValidationError.
    """
    if isinstance(template, str):
        return [{"role": "user", "content": template}]
    if not isinstance(template, list) or not template:
        raise ValidationError("The MLflow prompt has no messages.")
    out = []
    for i, msg in enumerate(template):
        content = msg.get("content") if isinstance(msg, dict) else None
        if not isinstance(content, str):
            raise ValidationError(
                f"Message {i + 1} of the MLflow prompt is not plain text (images, audio or tool "
                "calls); the workbench keeps text templates only."
            )
        if content.startswith(JINJA_MARKER):
            content = content[len(JINJA_MARKER) :]
        out.append({"role": str(msg.get("role", "")), "content": content})
    return out


def model_config(params: dict[str, Any]) -> dict[str, Any]:
    """A version's default params as MLflow's prompt model config."""
    return {TO_MLFLOW.get(k, k): v for k, v in params.items() if v is not None}


def params_from(config: dict[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    """MLflow's model config as workbench params, and notes on what did not carry over.

    MLflow's `provider` joins the model name as a LiteLLM id ("openai" + "gpt-4o-mini" ->
    "openai/gpt-4o-mini") when the name has no provider part yet.
    """
    config = dict(config or {})
    notes = []
    provider = config.pop("provider", None)
    params = {FROM_MLFLOW.get(k, k): v for k, v in config.items() if v is not None}
    if provider:
        model = params.get("model")
        if model and "/" not in str(model):
            params["model"] = f"{provider}/{model}"
        else:
            notes.append(f"provider '{provider}' not kept (the model id names its provider)")
    return params, notes


def mlflow_name(name: str) -> str:
    """The MLflow prompt name of a workbench prompt (spaces become '_')."""
    return name.strip().replace(" ", "_")


def alias_problem(label: str) -> str | None:
    """Why a workbench label cannot be an MLflow alias, or None when it can."""
    if _RESERVED_ALIAS.match(label):
        return f"'{label}' is a name MLflow reserves for aliases"
    if not _ALIAS.match(label):
        return f"'{label}' has characters MLflow aliases do not allow (letters, digits, '_' and '-' only)"
    return None
