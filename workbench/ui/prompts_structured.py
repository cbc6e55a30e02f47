"""The Prompts page's structured output, tools and conversations: the "Structured output and tools"
editor of the form (a JSON Schema with a strict box, a JSON list of functions, the tool choice),
and the preview column: variables (a dataset row or typed), the rendered chat as bubbles with every
placeholder expanded to the conversation its variable holds, and a summary of the schema and tools.

The draft keeps the editor's text as typed (`draft["structured"]`), so a mistake never loses input;
`check` turns it into the normalised settings with the core's validation (`prompts.structured`).
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from workbench import datasets
from workbench.errors import MissingVariableError, TemplateError, WorkbenchError
from workbench.prompts import conversation, structured, templates
from workbench.prompts.structured import Structured, StructuredError
from workbench.sweeps.outputs import message_text
from workbench.ui.common import db, show_error

AVATARS = {"system": "⚙️", "user": "🧑", "assistant": "🤖", "tool": "🛠️"}
DEFAULT_CHOICE = ""
_SCHEMA_EXAMPLE = '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}'
_TOOLS_EXAMPLE = (
    '[{"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]'
)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


# --- the draft ----------------------------------------------------------------------------------


def draft_fields(version: dict[str, Any] | None, params: dict[str, Any]) -> dict[str, Any]:
    """The editor text of a version's settings. Settings an older version kept among its params
    are moved out of `params` (which this changes), so the editor is their one place."""
    lifted = {key: params.pop(key, None) for key in structured.FIELDS}
    stored = {key: (version or {}).get(key) or lifted[key] for key in structured.FIELDS}
    schema, strict = _schema_text(stored["response_format"])
    tools = stored["tools"]
    if isinstance(tools, list) and all(
        isinstance(t, dict) and isinstance(t.get("function"), dict) for t in tools
    ):
        tools = [t["function"] for t in tools]  # the short spelling: name, description, parameters
    choice = stored["tool_choice"]
    if isinstance(choice, dict):
        choice = (choice.get("function") or choice).get("name", "")
    return {
        "schema": schema,
        "strict": strict,
        "tools": _pretty(tools) if tools else "",
        "tool_choice": choice if isinstance(choice, str) else DEFAULT_CHOICE,
    }


def _schema_text(response_format: Any) -> tuple[str, bool]:
    """A stored response_format as (text, strict): the bare schema when its name is the default."""
    if not response_format:
        return "", False
    try:
        rf = structured.check_response_format(response_format)
    except StructuredError:  # an old, unchecked value: shown as it is, so the check names the problem
        return _pretty(response_format), False
    if rf["type"] == "json_object":
        return _pretty({"type": "json_object"}), False
    inner = rf["json_schema"]
    if inner["name"] == structured.DEFAULT_SCHEMA_NAME and not inner.get("description"):
        return _pretty(inner["schema"]), inner["strict"]
    return _pretty({k: inner[k] for k in ("name", "description", "schema") if k in inner}), inner["strict"]


def read_fields(draft: dict[str, Any], gen: int) -> None:
    """Copy the editor's widget values into the draft (after any submit)."""
    state, fields = st.session_state, draft["structured"]
    fields["schema"] = state.get(f"store.schema.{gen}", fields["schema"])
    fields["strict"] = bool(state.get(f"store.strict.{gen}", fields["strict"]))
    fields["tools"] = state.get(f"store.tools.{gen}", fields["tools"])
    fields["tool_choice"] = state.get(f"store.tool_choice.{gen}", fields["tool_choice"]) or DEFAULT_CHOICE


def check(draft: dict[str, Any]) -> tuple[Structured | None, dict[str, StructuredError]]:
    """The draft's settings normalised, or None with the problem of each setting that has one."""
    fields = draft["structured"]
    problems: dict[str, StructuredError] = {}
    response_format = tools = choice = None
    try:
        response_format = structured.response_format_from_text(fields["schema"], strict=fields["strict"])
    except StructuredError as exc:
        problems["response_format"] = exc
    try:
        tools = structured.tools_from_text(fields["tools"])
        choice = structured.check_tool_choice(fields["tool_choice"] or None, tools)
    except StructuredError as exc:
        problems[exc.field] = exc
    if problems:
        return None, problems
    return Structured(response_format, tools, choice), {}


# --- the editor (inside the page's form) -------------------------------------------------------


def render_fields(draft: dict[str, Any], gen: int, problems: dict[str, StructuredError]) -> None:
    """The "Structured output and tools" expander of the form."""
    fields = draft["structured"]
    is_set = any([fields["schema"].strip(), fields["tools"].strip(), fields["tool_choice"]])
    with st.expander("Structured output and tools", expanded=bool(is_set or problems)):
        st.text_area(
            "Response format (JSON Schema)",
            fields["schema"],
            key=f"store.schema.{gen}",
            height=150,
            placeholder=_SCHEMA_EXAMPLE,
            help="The JSON Schema every reply must follow; empty for a plain-text reply. "
            'Also accepted: {"name": ..., "schema": {...}}, or {"type": "json_object"} for any JSON.',
        )
        st.checkbox(
            "Strict",
            fields["strict"],
            key=f"store.strict.{gen}",
            help="Strict structured output: every object lists all its properties in 'required' and sets "
            "'additionalProperties': false. This box decides, whatever the text says.",
        )
        _field_problem(problems, "response_format")
        st.text_area(
            "Tools (JSON list of functions)",
            fields["tools"],
            key=f"store.tools.{gen}",
            height=150,
            placeholder=_TOOLS_EXAMPLE,
            help="Functions the model may call: each a name, an optional description and JSON-Schema "
            "parameters (OpenAI's {'type': 'function', 'function': {...}} form works too). Empty: no tools.",
        )
        _field_problem(problems, "tools")
        options = [DEFAULT_CHOICE, *structured.TOOL_CHOICES, *_tool_names(fields["tools"])]
        if fields["tool_choice"] not in options:
            options.append(fields["tool_choice"])  # a removed tool: kept, so the check names it
        st.selectbox(
            "Tool choice",
            options,
            index=options.index(fields["tool_choice"]),
            key=f"store.tool_choice.{gen}",
            format_func=lambda c: c or "(the provider's default)",
            help="auto: the model decides; none: no calls; required: at least one call; a tool's name: "
            "that tool. The list of names follows the Tools box after Update preview.",
        )
        _field_problem(problems, "tool_choice")


def _field_problem(problems: dict[str, StructuredError], field: str) -> None:
    if field in problems:
        show_error(problems[field])


def _tool_names(text: str) -> list[str]:
    try:
        return structured.tool_names(structured.tools_from_text(text))
    except StructuredError:
        return []


# --- the preview column -------------------------------------------------------------------------


def render_preview(
    draft: dict[str, Any],
    errors: dict[int, str],
    settings: Structured | None,
) -> None:
    """Variables, the rendered chat (placeholders expanded) and the structured-output summary."""
    state = st.session_state
    if state.get("store.save_error"):
        st.error(state["store.save_error"], icon="⚠️")
    st.markdown("**Variables**")
    if errors:
        st.caption("The preview waits until every template parses.")
        return
    messages = draft["messages"]
    variables = templates.message_variables(messages)
    conversations = set(conversation.placeholder_names(messages))
    if not variables:
        st.caption("No variables: this prompt renders the same every time.")
    else:
        _row_picker(variables)
    # An empty input counts as missing, so the preview names it instead of rendering a blank.
    values = {v: state[f"store.var.{v}"] for v in variables if state.get(f"store.var.{v}")}
    for v in variables:
        if v in conversations:
            st.text_area(
                v,
                key=f"store.var.{v}",
                height=150,
                placeholder='[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]',
                help="The conversation this placeholder holds: a JSON list of messages (role and content; "
                "an assistant's tool_calls, a tool's result).",
            )
        else:
            st.text_input(v, key=f"store.var.{v}")
    st.markdown("**Preview** (what the model receives)")
    _render_chat(messages, values, conversations)
    _render_summary(settings)


def _row_context(values: dict[str, str]) -> str:
    """'(row N of 'name')' while the values are still those a dataset row filled in."""
    loaded = st.session_state.get("store.row_values")
    if loaded and all(values.get(k) == v for k, v in loaded[1].items()):
        return loaded[0]
    return ""


def _render_chat(messages: list[dict[str, Any]], values: dict[str, str], conversations: set[str]) -> None:
    context = _row_context(values)
    try:
        rendered = templates.render_messages(messages, values, context=context)
    except MissingVariableError as exc:  # a missing value is something to fill in: a warning
        show_error(exc, warning=True)
        return
    except TemplateError as exc:
        index = exc.message_index
        if index is not None and conversation.is_placeholder(messages[index]):
            # The conversation's value is wrong, not the template: say where to fix it.
            name = messages[index]["content"]
            where = ", or the dataset row it came from" if context else ""
            exc = WorkbenchError(f"{exc} Correct the '{name}' value under Variables{where}.")
        show_error(exc)
        return
    except WorkbenchError as exc:
        show_error(exc)
        return
    sources = _sources(messages, values)
    for msg, source in zip(rendered, sources, strict=True):
        with st.chat_message(msg["role"], avatar=AVATARS.get(msg["role"], "💬")):
            if source:
                st.caption(f"from `{source}`")
            st.text(message_text(msg) or " ")


def _sources(messages: list[dict[str, Any]], values: dict[str, str]) -> list[str | None]:
    """For each rendered message, the placeholder variable it came from (None for a template's)."""
    out: list[str | None] = []
    for m in messages:
        if conversation.is_placeholder(m):
            name = m["content"]
            out += [name] * len(conversation.history_messages(values[name], name=name))
        else:
            out.append(None)
    return out


def _render_summary(settings: Structured | None) -> None:
    if settings is None:
        st.caption("Structured output and tools: fix the problems shown in the editor.")
        return
    if settings.empty:
        return
    st.markdown("**Structured output and tools**")
    st.markdown("\n".join(f"- {line}" for line in summary_lines(settings)))


def summary_lines(settings: Structured) -> list[str]:
    """What the settings ask of the model, one line each (Markdown)."""
    lines = []
    rf = settings.response_format
    if rf and rf["type"] == "json_object":
        lines.append("Reply: any JSON object (no schema).")
    elif rf:
        inner = rf["json_schema"]
        fields = list((inner["schema"].get("properties") or {}).keys())
        shape = f"fields {', '.join(f'`{f}`' for f in fields)}" if fields else "its schema"
        strict = "strict" if inner["strict"] else "not strict"
        lines.append(f"Reply: JSON `{inner['name']}` ({strict}) with {shape}.")
    for tool in settings.tools or []:
        fn = tool["function"]
        params = ", ".join((fn.get("parameters") or {}).get("properties") or {})
        about = f": {fn['description']}" if fn.get("description") else ""
        lines.append(f"Tool `{fn['name']}({params})`{about}")
    choice = settings.tool_choice
    if choice is not None:
        shown = choice if isinstance(choice, str) else f"always `{choice['function']['name']}`"
        lines.append(f"Tool choice: {shown}.")
    return lines


def _row_picker(variables: list[str]) -> None:
    """Fill the variable inputs from a dataset row (a conversation column as its JSON text)."""
    with db() as s:
        names = [d.name for d in datasets.list_datasets(s)]
    if not names:
        return
    c1, c2, c3 = st.columns([3, 2, 2], vertical_alignment="bottom")
    ds = c1.selectbox("Values from dataset", ["(type them)", *names], key="store.preview_dataset")
    if ds == "(type them)":
        return
    row = c2.number_input("row", 1, 100_000, 1, key="store.preview_row")
    if c3.button("Use row", key="store.use_row"):
        with db() as s:
            dataset = datasets.require_dataset(s, ds)
            rows = datasets.examples_of(s, dataset.id)
        if row > len(rows):
            st.warning(f"'{ds}' has {len(rows)} rows.")
            return
        inputs = rows[int(row) - 1].inputs
        loaded = {}
        for v in variables:
            if v in inputs:
                value = inputs[v]
                loaded[v] = (
                    json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else str(value)
                )
                st.session_state[f"store.var.{v}"] = loaded[v]
        st.session_state["store.row_values"] = (f"(row {int(row)} of '{ds}')", loaded)
        missing = [v for v in variables if v not in inputs]
        if missing:
            st.warning(f"Row {row} of '{ds}' has no value for: {', '.join(missing)}.")
