"""How Compare and Rate show a run's output, through `outputs.view`: JSON pretty-printed, tool calls
as `name(args)`, and the per-field table of two structured outputs (path, A, B, status).

A tool-call reply has no text but is not empty: only an output with neither text nor tool calls
reads "(empty output)".
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from workbench import present
from workbench.sweeps import outputs

EMPTY = "(empty output)"
STATUS_WORDS = {"same": "same", "changed": "changed", "only_a": "only in A", "only_b": "only in B"}


def calls_of(value: Any) -> list[dict[str, Any]] | None:
    """A run's tool calls as stored or as a frame cell holds them: the list, or None (none, NaN)."""
    return value if isinstance(value, list) and value else None


def view(output: Any, tool_calls: Any = None) -> outputs.OutputView:
    """`outputs.view` of values as a frame holds them (a missing output is NaN there)."""
    text = None if output is None or present.is_missing(output) else str(output)
    return outputs.view(text, calls_of(tool_calls))


def output_text(output: Any, tool_calls: Any = None) -> str:
    """The display text of an output: pretty JSON, text then `name(args)` lines, or "(empty output)"."""
    text = view(output, tool_calls).text
    return text if text.strip() else EMPTY


def show_output(output: Any, tool_calls: Any = None) -> outputs.OutputView:
    """Draw an output as a code block (JSON highlighted) and return its view."""
    shown = view(output, tool_calls)
    st.code(
        shown.text if shown.text.strip() else EMPTY,
        language="json" if shown.kind == "json" else None,
        wrap_lines=True,
    )
    return shown


def structured_value(output: Any, tool_calls: Any = None) -> Any:
    """What a field diff compares: the parsed JSON, the tool calls as {"name", "arguments"} (one
    call) or numbered ("1", "2", ...; several), or None for plain text."""
    shown = view(output, tool_calls)
    if shown.kind == "json":
        return shown.value
    calls = calls_of(tool_calls)
    if shown.kind != "tool_calls" or calls is None:
        return None
    as_json = [{"name": c.get("name"), "arguments": outputs.tool_call_args(c)} for c in calls]
    return as_json[0] if len(as_json) == 1 else {str(i + 1): c for i, c in enumerate(as_json)}


def _shown(value: Any, status_missing: bool) -> str:
    if status_missing:
        return present.DASH
    return json.dumps(value, ensure_ascii=False)


def field_diff_rows(a: Any, b: Any) -> list[dict[str, str]]:
    """One display row per field of two JSON values: path, A, B (as JSON; a dash when a side
    lacks the field) and status (same, changed, only in A, only in B)."""
    return [
        {
            "path": d.path,
            "A": _shown(d.a, d.status == "only_b"),
            "B": _shown(d.b, d.status == "only_a"),
            "status": STATUS_WORDS[d.status],
        }
        for d in outputs.json_field_diff(a, b)
    ]


def show_field_diff(a: Any, b: Any, *, key: str) -> None:
    """The per-field table of two JSON values, changed fields first, with a count of differences."""
    rows = field_diff_rows(a, b)
    differ = [r for r in rows if r["status"] != "same"]
    st.dataframe(
        differ + [r for r in rows if r["status"] == "same"], hide_index=True, width="stretch", key=key
    )
    st.caption(
        f"{len(differ)} of {len(rows)} fields differ. Nested objects are compared field by field, "
        "lists as a whole."
    )
