"""The Prompts page: edit chat messages, preview with variables, save versions, diff, labels, and
(when an MLflow server is configured) send the chosen version to MLflow's Prompt Registry.

The editor is a form, so typing does not rerun the page; its submit buttons add, remove and
reorder turns (a `placeholder` turn stands for a conversation held by a variable), refresh the
preview, or save. The draft lives in session state as plain data (messages, params, the structured
output and tools text, the version it started from); widget keys carry a generation number so that
loading another version resets the widgets. The structured-output editor and the preview column
live in `prompts_structured`.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from workbench.errors import TemplateError, WorkbenchError
from workbench.models import PromptVersion
from workbench.prompts import conversation, diff, store, templates
from workbench.prompts.structured import Structured
from workbench.ui import prompts_structured
from workbench.ui.common import db, error_text, show_error
from workbench.ui.mlflow import push_version_button

ROLES = [*templates.ROLES, conversation.PLACEHOLDER]
NEW = "➕ New prompt"


def _versions(prompt_name: str) -> list[dict[str, Any]]:
    with db() as s:
        prompt = store.require_prompt(s, prompt_name)
        labels = store.labels_by_version(s, prompt.id)
        numbers = {v.id: v.number for v in store.versions_of(s, prompt.id)}
        return [
            {
                "id": v.id,
                "number": v.number,
                "labels": labels.get(v.id, []),
                "messages": v.messages,
                "params": v.params,
                "variables": v.variables,
                "response_format": v.response_format,
                "tools": v.tools,
                "tool_choice": v.tool_choice,
                "source": v.source,
                "note": v.note,
                "hash": v.content_hash[:10],
                "parent": numbers.get(v.parent_id),
                "created": v.created_at.strftime("%Y-%m-%d %H:%M"),
            }
            for v in store.versions_of(s, prompt.id)
        ]


def _load_draft(prompt_name: str | None, version: dict[str, Any] | None) -> None:
    state = st.session_state
    state["store.gen"] = state.get("store.gen", 0) + 1
    params = dict(version["params"]) if version else {"temperature": 0.0, "max_tokens": 256}
    state["store.draft"] = {
        "prompt": prompt_name,
        "base_number": version["number"] if version else None,
        "messages": [dict(m) for m in version["messages"]]
        if version
        else [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "{{ question }}"},
        ],
        "structured": prompts_structured.draft_fields(version, params),
        "params": params,
    }


def _version_label(v: dict[str, Any]) -> str:
    labels = f"  [{', '.join(v['labels'])}]" if v["labels"] else ""
    return f"v{v['number']}{labels} · {v['source']} · {v['created']}"


def render() -> None:
    """Draw the Prompts page."""
    state = st.session_state
    goto = state.pop("store.goto", None)
    if goto:  # set by a save or duplicate in the previous run, before the widgets exist
        state["store.select"], state["store.version"] = goto
    st.title("📝 Prompts")
    with db() as s:
        names = [p.name for p in store.list_prompts(s)]
    col_pick, col_ver = st.columns([2, 3])
    choice = col_pick.selectbox(
        "Prompt", [*names, NEW], key="store.select", help="Pick a prompt to edit, or create a new one."
    )
    if choice == NEW:
        _render_new_prompt()
        return
    versions = _versions(choice)
    if not versions:
        st.info(f"'{choice}' has no versions yet.")
        return
    by_number = {v["number"]: v for v in versions}
    number = col_ver.selectbox(
        "Version",
        sorted(by_number, reverse=True),
        key="store.version",
        format_func=lambda n: _version_label(by_number[n]),
    )
    current = by_number[number]
    draft = state.get("store.draft")
    if not draft or draft["prompt"] != choice or draft["base_number"] != number:
        _load_draft(choice, current)

    tab_edit, tab_versions, tab_labels = st.tabs(["Edit & preview", "Versions & diff", "Labels"])
    with tab_edit:
        _render_editor(choice, current)
    with tab_versions:
        _render_versions(choice, versions)
        push_version_button(current["id"])
    with tab_labels:
        _render_labels(choice, versions)


def _render_new_prompt() -> None:
    st.subheader("New prompt")
    name = st.text_input(
        "Name",
        key="store.new_name",
        placeholder="e.g. support-triage",
        help="Letters, digits, spaces, '_', '-', '.'; no '@' or ':'.",
    )
    if st.session_state.get("store.draft", {}).get("prompt") is not None:
        _load_draft(None, None)
    _render_editor(None, None, new_name=name)


def _read_form(draft: dict[str, Any]) -> None:
    """Copy the form's widget values into the draft (after any submit)."""
    state = st.session_state
    gen = state["store.gen"]
    for i, msg in enumerate(draft["messages"]):
        msg["role"] = state.get(f"store.role.{gen}.{i}", msg["role"])
        msg["content"] = state.get(f"store.content.{gen}.{i}", msg["content"])
        if conversation.is_placeholder(msg):
            msg["content"] = msg["content"].strip()
    prompts_structured.read_fields(draft, gen)
    params = draft["params"]
    params["temperature"] = state.get(f"store.temperature.{gen}", params.get("temperature", 0.0))
    params["max_tokens"] = int(state.get(f"store.max_tokens.{gen}", params.get("max_tokens", 256)))
    stop = state.get(f"store.stop.{gen}", ", ".join(params.get("stop", [])))
    stops = [x.strip() for x in stop.split(",") if x.strip()] if stop else []
    if stops:
        params["stop"] = stops
    else:
        params.pop("stop", None)
    model = state.get(f"store.model.{gen}", params.get("model", ""))
    if model:
        params["model"] = model
    else:
        params.pop("model", None)


def _apply_action(draft: dict[str, Any], action: str) -> None:
    msgs = draft["messages"]
    kind, _, index = action.partition(":")
    i = int(index) if index else None
    if kind == "add":
        role = "assistant" if msgs and msgs[-1]["role"] == "user" else "user"
        msgs.append({"role": role, "content": ""})
    elif kind == "conversation":
        used = set(conversation.placeholder_names(msgs))
        names = ["history", *(f"history_{k}" for k in range(2, len(msgs) + 3))]
        msgs.append({"role": conversation.PLACEHOLDER, "content": next(n for n in names if n not in used)})
    elif kind == "remove" and i is not None and len(msgs) > 1:
        msgs.pop(i)
    elif kind == "up" and i:
        msgs[i - 1], msgs[i] = msgs[i], msgs[i - 1]
    elif kind == "down" and i is not None and i < len(msgs) - 1:
        msgs[i + 1], msgs[i] = msgs[i], msgs[i + 1]
    else:
        return
    # Structure changed: new widget keys so the widgets pick up the reordered values.
    st.session_state["store.gen"] += 1


def _syntax_errors(messages: list[dict[str, str]]) -> dict[int, str]:
    errors = {}
    for i, msg in enumerate(messages):
        try:
            if conversation.is_placeholder(msg):
                conversation.placeholder_entry(msg, i)
            else:
                templates.parse(msg["content"], message_index=i)
        except (TemplateError, ValueError) as exc:
            errors[i] = str(exc)
    return errors


def _render_editor(prompt_name: str | None, current: dict[str, Any] | None, *, new_name: str = "") -> None:
    state = st.session_state
    draft = state["store.draft"]
    gen = state["store.gen"]
    errors = _syntax_errors(draft["messages"])
    settings, problems = prompts_structured.check(draft)
    left, right = st.columns([3, 2], gap="large")
    with left, st.form(f"store.form.{gen}", border=True):
        st.markdown(
            "**Messages** — Jinja templates; `{{ name }}` is a variable. A `placeholder` turn holds the "
            "name of a variable whose conversation (a JSON list of messages) goes there."
        )
        action = None
        for i, msg in enumerate(draft["messages"]):
            c_role, c_up, c_down, c_del = st.columns([4, 1, 1, 1], vertical_alignment="bottom")
            c_role.selectbox(
                "Role",
                ROLES,
                index=ROLES.index(msg["role"]),
                key=f"store.role.{gen}.{i}",
                label_visibility="collapsed",
            )
            if c_up.form_submit_button("↑", key=f"store.up.{gen}.{i}", help="Move up", disabled=i == 0):
                action = f"up:{i}"
            if c_down.form_submit_button(
                "↓", key=f"store.down.{gen}.{i}", help="Move down", disabled=i == len(draft["messages"]) - 1
            ):
                action = f"down:{i}"
            if c_del.form_submit_button(
                "✕",
                key=f"store.remove.{gen}.{i}",
                help="Remove this turn",
                disabled=len(draft["messages"]) == 1,
            ):
                action = f"remove:{i}"
            st.text_area(
                f"Message {i + 1}",
                value=msg["content"],
                key=f"store.content.{gen}.{i}",
                height={"system": 120, conversation.PLACEHOLDER: 68}.get(msg["role"], 100),
                label_visibility="collapsed",
            )
            if i in errors:
                st.error(errors[i], icon="⚠️")
        c_add, c_conv = st.columns(2)
        if c_add.form_submit_button("➕ Add turn", key=f"store.add.{gen}"):
            action = "add"
        if c_conv.form_submit_button(
            "➕ Add conversation placeholder",
            key=f"store.add_conversation.{gen}",
            help="A turn that expands to the messages a variable holds (e.g. a dataset's history column).",
        ):
            action = "conversation"
        st.markdown("**Default parameters**")
        p = draft["params"]
        c1, c2, c3 = st.columns(3)
        c1.number_input(
            "temperature", 0.0, 2.0, float(p.get("temperature", 0.0)), 0.1, key=f"store.temperature.{gen}"
        )
        c2.number_input("max_tokens", 1, 32_000, int(p.get("max_tokens", 256)), key=f"store.max_tokens.{gen}")
        c3.text_input("stop (comma-separated)", ", ".join(p.get("stop", [])), key=f"store.stop.{gen}")
        st.text_input(
            "default model (optional)",
            p.get("model", ""),
            key=f"store.model.{gen}",
            placeholder="local/smollm2-135m-instruct",
        )
        prompts_structured.render_fields(draft, gen, problems)
        st.text_input("Note for the new version", key=f"store.note.{gen}", placeholder="What changed and why")
        c_prev, c_save = st.columns(2)
        preview = c_prev.form_submit_button("Update preview", key=f"store.preview.{gen}")
        save = c_save.form_submit_button("💾 Save as new version", type="primary", key=f"store.save.{gen}")
    if action or preview or save:
        _read_form(draft)
        if action:
            _apply_action(draft, action)
            st.rerun()
        errors = _syntax_errors(draft["messages"])
        settings, problems = prompts_structured.check(draft)
        if save:
            _save(prompt_name or new_name, draft, errors, settings)
        st.rerun()
    flash = state.pop("store.flash", None)
    if flash:
        (st.success if flash[0] == "ok" else st.info)(flash[1])
    with right:
        prompts_structured.render_preview(draft, errors, settings)


def _save(name: str, draft: dict[str, Any], errors: dict[int, str], settings: Structured | None) -> None:
    state = st.session_state
    if errors:
        state["store.flash"] = ("info", "Fix the template errors before saving; nothing was saved.")
        return
    if settings is None:
        state["store.flash"] = (
            "info",
            "Fix the structured output and tools (shown in the editor) before saving; nothing was saved.",
        )
        return
    if not name.strip():
        state["store.flash"] = ("info", "Give the new prompt a name first; nothing was saved.")
        return
    note = state.get(f"store.note.{state['store.gen']}", "")
    try:
        with db() as s:
            version, created = store.save_version(
                s,
                prompt_name=name.strip(),
                messages=draft["messages"],
                params=draft["params"],
                note=note,
                **settings.to_dict(),
            )
            number = version.number
    except WorkbenchError as exc:
        state["store.save_error"] = error_text(exc)
        return
    state.pop("store.save_error", None)
    if created:
        state["store.flash"] = ("ok", f"Saved {name}@{number}.")
    else:
        state["store.flash"] = ("info", f"No change: identical to {name}@{number}, nothing new was saved.")
    state["store.goto"] = (name.strip(), number)
    state.pop("store.draft", None)


def _render_versions(name: str, versions: list[dict[str, Any]]) -> None:
    st.dataframe(
        [
            {
                "version": v["number"],
                "labels": ", ".join(v["labels"]),
                "source": v["source"],
                "parent": v["parent"],
                "note": v["note"],
                "variables": ", ".join(v["variables"]),
                "hash": v["hash"],
                "created": v["created"],
            }
            for v in reversed(versions)
        ],
        hide_index=True,
        width="stretch",
        key="store.versions_table",
    )
    if len(versions) < 2:
        st.caption("Save a second version to compare two versions.")
    else:
        numbers = [v["number"] for v in versions]
        c1, c2, c3 = st.columns([2, 2, 3])
        a = c1.selectbox("From", numbers, index=len(numbers) - 2, key="store.diff_a")
        b = c2.selectbox("To", numbers, index=len(numbers) - 1, key="store.diff_b")
        mode = c3.radio("View", ["Side by side", "Unified"], horizontal=True, key="store.diff_mode")
        by_number = {v["number"]: v for v in versions}
        va, vb = (PromptVersion(**_row(by_number[n])) for n in (a, b))
        if mode == "Unified":
            text = diff.unified(va, vb, a_name=f"{name}@{a}", b_name=f"{name}@{b}")
            st.code(text or "No differences.", language="diff")
        else:
            st.html(_DIFF_CSS + diff.side_by_side_html(va, vb, a_name=f"{name}@{a}", b_name=f"{name}@{b}"))
    st.divider()
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    new_name = c1.text_input("Duplicate this prompt as", key="store.dup_name", placeholder=f"{name}-copy")
    if c2.button("Duplicate", key="store.duplicate"):
        try:
            with db() as s:
                store.duplicate_prompt(s, source_name=name, new_name=new_name)
            st.session_state["store.goto"] = (new_name.strip(), 1)
            st.session_state.pop("store.draft", None)
            st.rerun()
        except WorkbenchError as exc:
            show_error(exc)


def _row(v: dict[str, Any]) -> dict[str, Any]:
    return {
        "prompt_id": 0,
        "number": v["number"],
        "messages": v["messages"],
        "params": v["params"],
        "response_format": v["response_format"],
        "tools": v["tools"],
        "tool_choice": v["tool_choice"],
        "content_hash": v["hash"],
    }


_DIFF_CSS = """<style>
table.diff {font-family: ui-monospace, monospace; font-size: 0.8rem; border-collapse: collapse; width: 100%;}
table.diff td {padding: 1px 6px; vertical-align: top; white-space: pre-wrap;}
.diff_header {color: #888;} .diff_next {display: none;}
.diff_add {background: #d4f8d4;} .diff_chg {background: #fff3b0;} .diff_sub {background: #ffd6d6;}
</style>"""


def _render_labels(name: str, versions: list[dict[str, Any]]) -> None:
    with db() as s:
        prompt = store.require_prompt(s, name)
        numbers = {v["id"]: v["number"] for v in versions}
        current = [
            {"label": lb.name, "version": numbers.get(lb.version_id)} for lb in store.labels_of(s, prompt.id)
        ]
        history = [
            {
                "label": e.label,
                "from": numbers.get(e.from_version_id),
                "to": numbers.get(e.to_version_id),
                "by": e.actor,
                "when": e.created_at.strftime("%Y-%m-%d %H:%M"),
            }
            for e in store.label_history(s, prompt.id)
        ]
    if current:
        st.dataframe(current, hide_index=True, key="store.labels_table")
    else:
        st.caption("No labels yet. Point `production` at the version your code should use.")
    c1, c2, c3, c4 = st.columns([2, 2, 2, 1], vertical_alignment="bottom")
    label = c1.text_input("Label", "production", key="store.label_name")
    number = c2.selectbox("Version", [v["number"] for v in reversed(versions)], key="store.label_version")
    actor = c3.text_input("Your name", key="store.label_actor")
    if c4.button("Set label", key="store.set_label", type="primary"):
        try:
            with db() as s:
                version = store.resolve(s, f"{name}@{number}")
                store.set_label(s, version_id=version.id, label=label, actor=actor)
            st.success(f"{name}:{label} → version {number}")
            st.rerun()
        except WorkbenchError as exc:
            show_error(exc)
    if history:
        st.markdown("**History**")
        st.dataframe(history, hide_index=True, key="store.label_history")
