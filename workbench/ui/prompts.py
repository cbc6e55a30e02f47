"""The Prompts page: edit chat messages, preview with variables, save versions, diff, labels, and
(when an MLflow server is configured) send the chosen version to MLflow's Prompt Registry.

The editor is a form, so typing does not rerun the page; its submit buttons add, remove and
reorder turns, refresh the preview, or save. The draft lives in session state as plain data
(messages, params, the version it started from); widget keys carry a generation number so that
loading another version resets the widgets.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from workbench import datasets
from workbench.errors import MissingVariableError, TemplateError, WorkbenchError
from workbench.models import PromptVersion
from workbench.prompts import diff, store, templates
from workbench.ui.common import db, error_text, show_error
from workbench.ui.mlflow import push_version_button

ROLES = list(templates.ROLES)
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
    state["store.draft"] = {
        "prompt": prompt_name,
        "base_number": version["number"] if version else None,
        "messages": [dict(m) for m in version["messages"]]
        if version
        else [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "{{ question }}"},
        ],
        "params": dict(version["params"]) if version else {"temperature": 0.0, "max_tokens": 256},
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
            templates.parse(msg["content"], message_index=i)
        except TemplateError as exc:
            errors[i] = str(exc)
    return errors


def _render_editor(prompt_name: str | None, current: dict[str, Any] | None, *, new_name: str = "") -> None:
    state = st.session_state
    draft = state["store.draft"]
    gen = state["store.gen"]
    errors = _syntax_errors(draft["messages"])
    left, right = st.columns([3, 2], gap="large")
    with left, st.form(f"store.form.{gen}", border=True):
        st.markdown("**Messages** — Jinja templates; `{{ name }}` is a variable.")
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
                height=120 if msg["role"] == "system" else 100,
                label_visibility="collapsed",
            )
            if i in errors:
                st.error(errors[i], icon="⚠️")
        if st.form_submit_button("➕ Add turn", key=f"store.add.{gen}"):
            action = "add"
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
        if save:
            _save(prompt_name or new_name, draft, errors)
        st.rerun()
    flash = state.pop("store.flash", None)
    if flash:
        (st.success if flash[0] == "ok" else st.info)(flash[1])
    with right:
        _render_preview(draft, errors)


def _save(name: str, draft: dict[str, Any], errors: dict[int, str]) -> None:
    state = st.session_state
    if errors:
        state["store.flash"] = ("info", "Fix the template errors before saving; nothing was saved.")
        return
    if not name.strip():
        state["store.flash"] = ("info", "Give the new prompt a name first; nothing was saved.")
        return
    note = state.get(f"store.note.{state['store.gen']}", "")
    try:
        with db() as s:
            version, created = store.save_version(
                s, prompt_name=name.strip(), messages=draft["messages"], params=draft["params"], note=note
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


def _render_preview(draft: dict[str, Any], errors: dict[int, str]) -> None:
    state = st.session_state
    if state.get("store.save_error"):
        st.error(state["store.save_error"], icon="⚠️")
    st.markdown("**Variables**")
    if errors:
        st.caption("The preview waits until every template parses.")
        return
    variables = templates.variables_of([m["content"] for m in draft["messages"]])
    if not variables:
        st.caption("No variables: this prompt renders the same every time.")
    else:
        _row_picker(variables)
    # An empty input counts as missing, so the preview names it instead of rendering a blank.
    values = {v: state[f"store.var.{v}"] for v in variables if state.get(f"store.var.{v}")}
    for v in variables:
        st.text_input(v, key=f"store.var.{v}")
    st.markdown("**Preview** (what the model receives)")
    try:
        rendered = templates.render_messages(draft["messages"], values)
    except WorkbenchError as exc:  # a missing value is something to fill in: a warning, not an error
        show_error(exc, warning=isinstance(exc, MissingVariableError))
        return
    for msg in rendered:
        with st.chat_message(
            msg["role"], avatar={"system": "⚙️", "user": "🧑", "assistant": "🤖"}[msg["role"]]
        ):
            st.text(msg["content"] or " ")


def _row_picker(variables: list[str]) -> None:
    """Fill the variable inputs from a dataset row."""
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
        for v in variables:
            if v in inputs:
                st.session_state[f"store.var.{v}"] = str(inputs[v])
        missing = [v for v in variables if v not in inputs]
        if missing:
            st.warning(f"Row {row} of '{ds}' has no value for: {', '.join(missing)}.")


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
