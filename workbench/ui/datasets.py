"""The Datasets page: import CSV / JSON / JSONL with a preview and column mapping, edit rows, export.

An import is all or nothing (parsing and validation happen before anything is written). Edits in
the data editor are saved only with the Save button, and a save keeps row ids so sweep results
stay linked to their rows.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from workbench import datasets, present
from workbench.errors import WorkbenchError
from workbench.ui.common import db, show_error

NONE = "(none)"


def render() -> None:
    """Draw the Datasets page."""
    st.title("🗂️ Datasets")
    tab_browse, tab_import = st.tabs(["Browse & edit", "Import a file"])
    with tab_import:
        _render_import()
    with tab_browse:
        _render_browse()


def _render_import() -> None:
    state = st.session_state
    upload = st.file_uploader(
        "CSV, JSON (array of objects) or JSONL",
        type=["csv", "tsv", "json", "jsonl"],
        key="datasets.upload",
        help=f"Up to {datasets.MAX_IMPORT_BYTES // 1_000_000} MB, UTF-8, header row for CSV.",
    )
    if upload is None:
        st.caption(
            "Each row becomes one set of template variables; a column of expected answers makes the "
            "dataset labelled (used by exact/contains scorers and DSPy)."
        )
        return
    try:
        table = datasets.parse_file(upload.getvalue(), upload.name)
    except WorkbenchError as exc:
        show_error(exc)
        return
    st.success(f"Read {len(table.rows):,} rows with columns: {', '.join(table.columns)}")
    st.dataframe(
        pd.DataFrame(table.rows[:20]), hide_index=True, width="stretch", key="datasets.import_preview"
    )
    guess = datasets.guess_expected_column(table.columns)
    options = [NONE, *table.columns]
    expected = st.selectbox(
        "Column with expected answers",
        options,
        index=options.index(guess) if guess else 0,
        key="datasets.expected",
    )
    st.markdown("**Variable names** (rename a column, or clear the name to leave the column out)")
    mapping: dict[str, str] = {}
    cols = st.columns(min(4, max(1, len(table.columns))))
    for i, column in enumerate(c for c in table.columns if c != expected):
        mapping[column] = cols[i % len(cols)].text_input(column, column, key=f"datasets.map.{column}").strip()
    default_name = upload.name.rsplit(".", 1)[0]
    name = st.text_input("Dataset name", default_name, key="datasets.name")
    if st.button("Import", type="primary", key="datasets.import"):
        try:
            with db() as s:
                ds = datasets.create_dataset(
                    s,
                    name=name,
                    table=table,
                    expected_column=None if expected == NONE else expected,
                    mapping={k: v for k, v in mapping.items() if v != k},
                )
                state["datasets.select"] = ds.name
            st.success(f"Imported {len(table.rows):,} rows into '{name}'.")
        except WorkbenchError as exc:
            show_error(exc)


def _render_browse() -> None:
    with db() as s:
        all_sets = datasets.list_datasets(s)
        counts = datasets.row_counts(s)
    if not all_sets:
        st.info("No datasets yet: import one in the next tab.")
        return
    names = [d.name for d in all_sets]
    st.dataframe(
        [
            {
                "dataset": d.name,
                "rows": counts.get(d.id, (0, 0))[0],
                "labelled": counts.get(d.id, (0, 0))[1],
                "variables": ", ".join(d.columns),
                "updated": d.updated_at.strftime("%Y-%m-%d %H:%M"),
            }
            for d in all_sets
        ],
        hide_index=True,
        width="stretch",
        key="datasets.list",
    )
    if st.session_state.get("datasets.select") not in names:
        st.session_state["datasets.select"] = names[0]
    name = st.selectbox("Edit dataset", names, key="datasets.select")
    with db() as s:
        ds = datasets.require_dataset(s, name)
        rows = datasets.examples_of(s, ds.id)
        ds_id, columns = ds.id, list(ds.columns)
    frame = pd.DataFrame(
        [
            {"_id": r.id, **{c: _display(r.inputs.get(c)) for c in columns}, "expected": r.expected}
            for r in rows
        ],
        columns=["_id", *columns, "expected"],
    )
    st.caption(
        "Add rows at the bottom, delete with the row checkbox; nothing is stored until you save. "
        "Structured values (lists, objects) are shown as JSON and saved back as JSON."
    )
    edited = st.data_editor(
        frame,
        num_rows="dynamic",
        hide_index=True,
        width="stretch",
        key=f"datasets.editor.{ds_id}",
        column_config={
            "_id": st.column_config.NumberColumn("row id", disabled=True),
            "expected": st.column_config.TextColumn("expected", help="Expected answer (optional)"),
        },
    )
    records = []
    for rec in edited.to_dict(orient="records"):
        rec = {k: present.json_safe(v) for k, v in rec.items()}  # the editor's NaN is an empty cell
        if rec.get("_id") is None:
            rec.pop("_id", None)
        else:
            rec["_id"] = int(rec["_id"])
        for c in columns:
            rec[c] = _parse_cell(rec.get(c))
        records.append(rec)
    c1, c2, c3 = st.columns(3)
    if c1.button("💾 Save changes", type="primary", key="datasets.save"):
        try:
            with db() as s:
                n = datasets.replace_rows(s, dataset_id=ds_id, rows=records)
            st.success(f"Saved {n} rows.")
        except WorkbenchError as exc:
            show_error(exc)
    with st.expander("Save the edited rows as a new dataset (keeps this one as it is)"):
        n1, n2 = st.columns([3, 1], vertical_alignment="bottom")
        copy_name = n1.text_input("New dataset name", f"{name}-v2", key="datasets.copy_name")
        if n2.button("Save as new dataset", key="datasets.copy"):
            try:
                with db() as s:
                    new = datasets.copy_dataset(
                        s, name=copy_name, rows=records, description=f"Edited copy of {name}"
                    )
                    new_name = new.name
                st.success(f"Saved {len(records)} rows as the new dataset '{new_name}'.")
            except WorkbenchError as exc:
                show_error(exc)
    with db() as s:
        export = datasets.export_rows(s, ds_id)
    c2.download_button("Download CSV", datasets.to_csv(export), f"{name}.csv", "text/csv", key="datasets.csv")
    c3.download_button(
        "Download JSON",
        json.dumps(export, ensure_ascii=False, indent=2),
        f"{name}.json",
        "application/json",
        key="datasets.json",
    )


def _display(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value


def _parse_cell(value: Any) -> Any:
    """Text that looks like a JSON object or list goes back to structured data."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value
