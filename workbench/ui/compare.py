"""The Compare page: outputs side by side, a summary per column, plotly charts (`compare_charts`),
and the paired differences against a baseline column (`compare_diff`; consistency over repeats:
`compare_consistency`). Outputs show through `outputs_view` (JSON pretty-printed, tool calls as
`name(args)`); the row detail adds a per-field table when two outputs are JSON, and the summary
the cached / reasoning tokens and json_match's score per field when there are any.

A column is (version, model, grid params); rows are dataset rows; repeats stack in a cell. The
cells of the chosen sweeps are loaded once per (sweeps, data versions) and cached; a selection
(those plus the filters) is the cache key of everything computed from it: the summary, the
consistency, the figures and the paired comparisons. Only the open tab is computed and sent; the
side-by-side grid is paginated and only the shown page's texts are built, so a sweep of 10,000
cells redraws in well under a second (tests/bench/bench_compare.py measures it).
"""

from __future__ import annotations

import difflib
import html
import math

import pandas as pd
import streamlit as st

from workbench import datasets, metrics, present
from workbench.sweeps.summary import data_version, field_scores_frame, list_sweeps, runs_frame, summarize
from workbench.ui import compare_charts, compare_consistency, outputs_view
from workbench.ui.common import db
from workbench.ui.mlflow import send_sweep_button

PAGE_SIZE = 20
NO_METRIC = "(none)"
TABS = ["Side by side", "Summary", "Charts", "Difference"]
TAB_KEY = "compare.tab"  # the open tab (session state: "Summary" opens the summary)
CELL_FIELDS = [
    "row",
    "column",
    "repeat",
    "status",
    "output",
    "tool_calls",
    "finish_reason",
    "error_kind",
    "error_message",
]
TOKEN_DETAILS = {"cached_tokens": "cached tokens", "reasoning_tokens": "reasoning tokens"}


@st.cache_resource(show_spinner="Loading results ...", max_entries=4)
def _frame(sweep_id: int, version: tuple) -> pd.DataFrame:
    """All cells of a sweep (cached until a cell finishes or a score is written).

    cache_resource, not cache_data: cache_data would pickle a copy of a 10,000-row frame on every
    rerun. Callers only filter it (new frames), never modify it in place.
    """
    with db() as s:
        df = runs_frame(s, sweep_id)
        if df.empty:
            return df
        ids = [int(i) for i in df["example_id"].dropna().unique()]
        rows = {e.id: (e.position, e.inputs, e.expected) for e in datasets.examples_by_id(s, ids).values()}
    # One lookup per dataset row, not one function call per cell.
    ids = df["example_id"]
    df["row"] = ids.map({i: r[0] + 1 for i, r in rows.items()}).fillna(1).astype(int)
    df["input"] = ids.map(
        {i: " · ".join(f"{k}: {v}" for k, v in r[1].items()) for i, r in rows.items()}
    ).fillna("(variables)")
    df["expected"] = ids.map({i: r[2] for i, r in rows.items()})  # missing (NaN) when unlabelled
    return df


@st.cache_resource(max_entries=4)
def _cells(version: tuple) -> pd.DataFrame:
    """The cells of the chosen sweeps, one frame; with several sweeps, columns are prefixed by
    their sweep id. `version` holds (sweep id, data version) per sweep, the first one chosen first."""
    frames = [(i, _frame(i, v)) for i, v in version]
    frames = [(i, f) for i, f in frames if not f.empty]
    if not frames:
        return pd.DataFrame()
    if len(frames) == 1:
        return frames[0][1]
    return pd.concat([f.assign(column=f"#{i} | " + f["column"]) for i, f in frames], ignore_index=True)


def render() -> None:
    """Draw the Compare page."""
    st.title("🔍 Compare")
    picked = _pick_sweeps()
    if picked is None:
        return
    chosen, remaining = picked
    send_sweep_button(chosen[0])  # shown only when an MLflow tracking URI is configured
    with db() as s:
        version = tuple((i, data_version(s, i)) for i in chosen)
    df = _cells(version)
    if df.empty:
        st.info("This sweep has no cells.")
        return
    if remaining:
        st.caption(f"{remaining:,} cells still running; reload to see more.")
    filtered, filter_key = _filters(df)
    if filtered.empty:
        st.warning("No cells match the filters.")
        return
    selection = (version, filter_key)  # identifies `filtered`: the cache key of all derived views
    _tabs(selection, filtered, compare_charts.column_keys(df["column"].unique()))


def _pick_sweeps() -> tuple[list[int], int] | None:
    """The sweeps to compare (the first chosen first) and their cells still to run; None (and a
    note) when there is no sweep yet."""
    with db() as s:
        items = list_sweeps(s, 200)
    if not items:
        st.info("No sweeps yet: start one on the Run page.")
        return None
    labels = {sw.id: f"{sw.id}: {sw.name} ({p.total:,} cells, {sw.status})" for sw, p in items}
    default = st.session_state.get("run.sweep_id")
    ids = list(labels)
    sweep_id = st.selectbox(
        "Sweep",
        ids,
        index=ids.index(default) if default in ids else 0,
        format_func=labels.get,
        key="compare.sweep",
    )
    others = [i for i in ids if i != sweep_id]
    extra = st.multiselect(
        "Add the runs of other sweeps (for example earlier runs of the same prompt)",
        others,
        format_func=labels.get,
        key="compare.more_sweeps",
        help="Columns are then prefixed with their sweep id; rows line up by dataset row.",
    )
    chosen = [sweep_id, *extra]
    return chosen, sum(p.remaining for sw, p in items if sw.id in chosen)


def _tabs(selection: tuple, filtered: pd.DataFrame, keys: dict[str, str]) -> None:
    """The four tabs. Only the open one is computed (opening another reruns the page): the
    consistency, the figures and the paired tests cost nothing until their tab is opened."""
    grid, summary, charts, diff = st.tabs(TABS, key=TAB_KEY, on_change="rerun")
    if grid.open:
        with grid:
            _grid(filtered)
    if summary.open:
        with summary:
            consistency = compare_consistency.by_selection(selection, filtered)
            table = _summary_table(selection, filtered)
            _summary(table, keys, consistency.found)
            if metrics.get("json_match").mean_column in table:
                _field_scores(_field_table(selection[0]), list(table["column"]))
            compare_consistency.flaky_expander(consistency)
    if charts.open:
        with charts:
            compare_charts.render(selection, filtered, _summary_table(selection, filtered), keys)
    if diff.open:
        from workbench.ui import compare_diff  # loads scipy: only once this tab is opened

        with diff:
            compare_diff.render(filtered, selection)


@st.cache_resource(max_entries=16)
def _summary_table(selection: tuple, _filtered: pd.DataFrame) -> pd.DataFrame:
    """The per-column summary, computed once per selection (which identifies _filtered)."""
    return summarize(_filtered)


@st.cache_resource(max_entries=4)
def _field_table(version: tuple) -> pd.DataFrame:
    """Mean json_match score per column and JSON field of the chosen sweeps (columns prefixed by
    sweep id as in `_cells` when there are several); `version` as for `_cells`."""
    frames = []
    with db() as s:
        for sweep_id, _ in version:
            f = field_scores_frame(s, sweep_id)
            frames.append(f.assign(column=f"#{sweep_id} | " + f["column"]) if len(version) > 1 else f)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _field_scores(fields: pd.DataFrame, columns: list[str]) -> None:
    """json_match per field: one row per field, one column per compare column (mean over its rows)."""
    fields = fields[fields["column"].isin(columns)] if not fields.empty else fields
    if fields.empty:
        return
    st.markdown("**json_match by field**")
    means = {(r["column"], r["field"]): (r["mean"], r["n"]) for r in fields.to_dict("records")}
    rows = []
    for field in dict.fromkeys(fields["field"]):
        row = {"field": field}
        for column in columns:
            mean, n = means.get((column, field), (None, 0))
            row[column] = f"{present.score(mean)} (n={n})" if n else present.DASH
        rows.append(row)
    st.dataframe(rows, hide_index=True, width="stretch", key="compare.field_scores")
    st.caption(
        "Share of scored rows whose output has the expected value in that field (n: rows scored), over "
        "all of each column's rows: the status and score filters do not narrow it."
    )


def _filters(df: pd.DataFrame) -> tuple[pd.DataFrame, tuple]:
    with st.expander("Filters", expanded=False):
        c1, c2, c3, c4 = st.columns(4)
        versions = c1.multiselect("Versions", sorted(df["version"].unique()), key="compare.f_versions")
        models = c2.multiselect("Models", sorted(df["model"].unique()), key="compare.f_models")
        grids = c3.multiselect("Parameters", sorted(df["grid"].unique()), key="compare.f_grid")
        statuses = c4.multiselect("Status", sorted(df["status"].unique()), key="compare.f_status")
        scored = {m.name: m for m in metrics.score_columns(df.columns)}
        metric = None
        if scored:
            c5, c6 = st.columns(2)
            metric = c5.selectbox(
                "Score filter",
                [NO_METRIC, *scored],
                format_func=lambda name: scored[name].label if name in scored else name,
                key="compare.f_metric",
            )
            if metric != NO_METRIC:
                values = df[scored[metric].column].dropna()
                lo, hi = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
                if lo == hi:
                    hi = lo + 1
                rng = c6.slider("Score range", lo, hi, (lo, hi), key=f"compare.f_range.{metric}")
    out = df
    if versions:
        out = out[out["version"].isin(versions)]
    if models:
        out = out[out["model"].isin(models)]
    if grids:
        out = out[out["grid"].isin(grids)]
    if statuses:
        out = out[out["status"].isin(statuses)]
    key: tuple = (tuple(versions), tuple(models), tuple(grids), tuple(statuses))
    if metric and metric != NO_METRIC:
        col = out[scored[metric].column]
        out = out[(col >= rng[0]) & (col <= rng[1])]
        key += (metric, tuple(rng))
    return out, key


def _summary(table: pd.DataFrame, keys: dict[str, str], consistency: compare_consistency.Found) -> None:
    scored = metrics.mean_columns(table.columns)
    with_keys = compare_charts.uses_keys(keys)
    details = [k for k in TOKEN_DETAILS if k in table and table[k].fillna(0).astype(float).gt(0).any()]
    rows = []
    for r in table.to_dict("records"):
        row = {"key": keys.get(r["column"], "")} if with_keys else {}
        row.update(
            {
                "column": r["column"],
                "n": r["n"],
                "failed": r["failed"],
                "cached": r["cached"],
                "truncated": r["truncated"],
            }
        )
        for m in scored:
            mean, std = r[m.mean_column], r.get(m.std_column)
            spread = "" if present.is_missing(mean) or present.is_missing(std) else f" ± {present.score(std)}"
            row[m.name] = present.score(mean) + spread
        row.update(compare_consistency.summary_cells(consistency, r["column"]))
        row.update(
            {
                "tokens in": r["prompt_tokens"],
                "tokens out": r["completion_tokens"],
                **{TOKEN_DETAILS[k]: present.number(r[k], ",.0f") for k in details},
                "cost": present.money(r["cost_usd"]),
                "p50 ms": present.ms(r["latency_p50_ms"]),
                "p95 ms": present.ms(r["latency_p95_ms"]),
                "TTFT p50 ms": present.ms(r["ttft_p50_ms"]),
            }
        )
        rows.append(row)
    st.dataframe(rows, hide_index=True, width="stretch", key="compare.summary")
    st.caption(
        "Scores are means ± standard deviation over done cells; cost shows unknown when a model is unpriced."
        + (
            " Cached tokens are part of tokens in, reasoning tokens part of tokens out; cost is what the "
            "provider bills for them (a cache discount included)."
            if details
            else ""
        )
        + (" Keys (C1, C2, ...) are how the charts name the columns." if with_keys else "")
        + (f" {compare_consistency.CAPTION}" if consistency else "")
    )


def _text(value: object) -> str:
    """A text cell as shown: missing (None or NaN) is empty."""
    return "" if value is None or present.is_missing(value) else str(value)


def _one_text(r: dict) -> str:
    """One cell's text: its output, its error or its status."""
    if r["status"] == "done":
        text = outputs_view.output_text(r["output"], r["tool_calls"])
        return text + "  ✂ truncated" if r["finish_reason"] == "length" else text
    if r["status"] == "failed":
        return f"⚠ {r['error_kind']}: {r['error_message']}"
    return f"… {r['status']}"


def _cell_texts(cells: pd.DataFrame) -> dict[tuple, str]:
    """(row, column) -> the text of its cell, repeats in order and numbered when there are several."""
    grouped: dict[tuple, list[dict]] = {}
    for r in cells.sort_values("repeat", kind="stable")[CELL_FIELDS].to_dict("records"):
        grouped.setdefault((r["row"], r["column"]), []).append(r)
    return {
        key: "\n".join(_one_text(r) if len(rs) == 1 else f"[{r['repeat'] + 1}] {_one_text(r)}" for r in rs)
        for key, rs in grouped.items()
    }


def _cell_text(cells: pd.DataFrame) -> str:
    """The text of one cell (the cells of one row and column)."""
    return next(iter(_cell_texts(cells).values()), "")


def _grid(df: pd.DataFrame) -> None:
    columns = list(dict.fromkeys(df["column"]))
    chosen = st.multiselect(
        "Columns",
        columns,
        default=columns[: min(4, len(columns))],
        key=f"compare.columns.{hash(tuple(columns)) & 0xFFFFFFFF}",
    )
    if not chosen:
        st.caption("Pick at least one column.")
        return
    sub = df[df["column"].isin(chosen)]
    rows = sorted(sub["row"].unique())
    pages = max(1, math.ceil(len(rows) / PAGE_SIZE))
    page = st.number_input(f"Page (of {pages}, {len(rows):,} rows)", 1, pages, 1, key="compare.page")
    shown_rows = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    window = sub[sub["row"].isin(shown_rows)]
    texts = _cell_texts(window)
    firsts = window.drop_duplicates("row").set_index("row")
    table = []
    for row in shown_rows:
        entry = {"row": row, "input": firsts.at[row, "input"], "expected": _text(firsts.at[row, "expected"])}
        for column in chosen:
            entry[column] = texts.get((row, column), "")
        table.append(entry)
    st.dataframe(
        pd.DataFrame(table),
        hide_index=True,
        width="stretch",
        key="compare.grid",
        row_height=60,
        column_config={c: st.column_config.TextColumn(c, width="large") for c in chosen},
    )
    st.caption("Double-click a cell to read a long output in full.")
    _row_detail(window, shown_rows, chosen)


def _row_detail(window: pd.DataFrame, shown_rows: list[int], chosen: list[str]) -> None:
    with st.expander("Row detail and diff", expanded=False):
        row = st.selectbox("Row", shown_rows, key="compare.detail_row")
        cells = window[window["row"] == row]
        st.markdown(f"**Input** — {html.escape(cells.iloc[0]['input'])}")
        expected = _text(cells.iloc[0]["expected"])
        if expected:
            st.markdown(f"**Expected** — {html.escape(expected)}")
        cols = st.columns(min(len(chosen), 4))
        for i, column in enumerate(chosen[:4]):
            with cols[i]:
                st.caption(column)
                mine = cells[cells["column"] == column]
                if len(mine) == 1 and mine.iloc[0]["status"] == "done":  # one output: JSON highlighted
                    outputs_view.show_output(mine.iloc[0]["output"], mine.iloc[0]["tool_calls"])
                    if mine.iloc[0]["finish_reason"] == "length":
                        st.caption("✂ truncated (cut off at max_tokens)")
                else:
                    st.text(_cell_text(mine))
        if len(chosen) >= 2:
            c1, c2 = st.columns(2)
            a = c1.selectbox("Diff from", chosen, index=0, key="compare.diff_a")
            b = c2.selectbox("to", chosen, index=1, key="compare.diff_b")
            cells_a, cells_b = cells[cells["column"] == a], cells[cells["column"] == b]
            _field_diff(cells_a, cells_b)
            st.html(_diff_html(_cell_text(cells_a), _cell_text(cells_b)))


def _structured(cells: pd.DataFrame) -> tuple[str, object, int]:
    """A column's first done cell in this row: its output kind ("" when none is done), its JSON
    value (`outputs_view.structured_value`; None for text) and its repeat."""
    done = cells[cells["status"] == "done"].sort_values("repeat", kind="stable")
    if done.empty:
        return "", None, 0
    first = done.iloc[0]
    kind = outputs_view.view(first["output"], first["tool_calls"]).kind
    return kind, outputs_view.structured_value(first["output"], first["tool_calls"]), int(first["repeat"])


def _field_diff(cells_a: pd.DataFrame, cells_b: pd.DataFrame) -> None:
    """When both outputs are JSON (or both tool calls): the per-field table above the word diff."""
    (kind_a, a, repeat_a), (kind_b, b, repeat_b) = _structured(cells_a), _structured(cells_b)
    if a is None or b is None or kind_a != kind_b:
        return
    outputs_view.show_field_diff(a, b, key="compare.field_diff")
    if cells_a["repeat"].nunique() > 1 or cells_b["repeat"].nunique() > 1:
        st.caption(f"Fields of repeat {repeat_a + 1} (A) and repeat {repeat_b + 1} (B).")


def _diff_html(a: str, b: str) -> str:
    """Word-level diff of two outputs: deletions red, insertions green."""
    wa, wb = a.split(" "), b.split(" ")
    out = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=wa, b=wb, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(html.escape(" ".join(wa[i1:i2])))
            continue
        if i2 > i1:
            out.append(f"<del style='background:#ffd6d6'>{html.escape(' '.join(wa[i1:i2]))}</del>")
        if j2 > j1:
            out.append(f"<ins style='background:#d4f8d4'>{html.escape(' '.join(wb[j1:j2]))}</ins>")
    return "<div style='font-family:monospace;white-space:pre-wrap'>" + " ".join(out) + "</div>"
