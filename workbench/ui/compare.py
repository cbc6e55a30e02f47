"""The Compare page: outputs side by side, a summary per column, plotly charts, and the paired
differences against a baseline column (`compare_diff`; consistency over repeats: `compare_consistency`).

A column is (version, model, grid params); rows are dataset rows; repeats stack in a cell. The
runs of a sweep are loaded once per (sweep, finished count) and cached, filters work on the
cached frame, the side-by-side grid is paginated, and charts aggregate per column, so a sweep
of 10,000 cells stays responsive (tests/bench/bench_compare.py measures it).
"""

from __future__ import annotations

import difflib
import html
import math

import pandas as pd
import plotly.express as px
import streamlit as st

from workbench import datasets, metrics, present
from workbench.sweeps.summary import data_version, list_sweeps, progress, runs_frame, summarize
from workbench.ui import compare_consistency, compare_diff
from workbench.ui.common import db

PAGE_SIZE = 20
NO_METRIC = "(none)"


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
    df["row"] = df["example_id"].map(lambda i: rows[i][0] + 1 if i in rows else 1).astype(int)
    df["input"] = df["example_id"].map(
        lambda i: " · ".join(f"{k}: {v}" for k, v in rows[i][1].items()) if i in rows else "(variables)"
    )
    df["expected"] = df["example_id"].map(lambda i: rows[i][2] if i in rows else None)
    return df


def render() -> None:
    """Draw the Compare page."""
    st.title("🔍 Compare")
    with db() as s:
        items = list_sweeps(s, 200)
    if not items:
        st.info("No sweeps yet: start one on the Run page.")
        return
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
    with db() as s:
        remaining = sum(progress(s, i).remaining for i in chosen)
        version = tuple((i, data_version(s, i)) for i in chosen)
    frames = [_frame(i, v) for i, v in version]
    if len(frames) > 1:
        frames = [
            f.assign(column=f"#{i} | " + f["column"])
            for (i, _), f in zip(version, frames, strict=True)
            if not f.empty
        ]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if df.empty:
        st.info("This sweep has no cells.")
        return
    if remaining:
        st.caption(f"{remaining:,} cells still running; reload to see more.")
    filtered, filter_key = _filters(df)
    if filtered.empty:
        st.warning("No cells match the filters.")
        return
    table = _summary_table(sweep_id, version, filter_key, filtered)
    tab_grid, tab_summary, tab_charts, tab_diff = st.tabs(["Side by side", "Summary", "Charts", "Difference"])
    with tab_summary:
        _summary(table, filtered, compare_consistency.by_column((version, filter_key), filtered))
    with tab_charts:
        _charts(filtered, table, _version_model_table(sweep_id, version, filter_key, filtered))
    with tab_grid:
        _grid(filtered)
    with tab_diff:
        compare_diff.render(filtered, (version, filter_key))


@st.cache_resource(max_entries=16)
def _summary_table(sweep_id: int, version: tuple, filter_key: tuple, _filtered: pd.DataFrame) -> pd.DataFrame:
    # version holds (sweep id, data version) of every sweep shown: it identifies _filtered.
    """The per-column summary, computed once per (sweep, progress, filters)."""
    return summarize(_filtered)


@st.cache_resource(max_entries=16)
def _version_model_table(
    sweep_id: int, finished: int, filter_key: tuple, _filtered: pd.DataFrame
) -> pd.DataFrame:
    """Scores per (version, model), for the heatmap."""
    return summarize(_filtered.assign(column=_filtered["version"] + " | " + _filtered["model"]))


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


def _summary(table: pd.DataFrame, cells: pd.DataFrame, consistency: compare_consistency.Found) -> None:
    scored = metrics.mean_columns(table.columns)
    rows = []
    for _, r in table.iterrows():
        row = {
            "column": r["column"],
            "n": r["n"],
            "failed": r["failed"],
            "cached": r["cached"],
            "truncated": r["truncated"],
        }
        for m in scored:
            mean, std = r[m.mean_column], r.get(m.std_column)
            spread = "" if present.is_missing(mean) or present.is_missing(std) else f" ± {present.score(std)}"
            row[m.name] = present.score(mean) + spread
        row.update(compare_consistency.summary_cells(consistency, r["column"]))
        row.update(
            {
                "tokens in": r["prompt_tokens"],
                "tokens out": r["completion_tokens"],
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
        + (f" {compare_consistency.CAPTION}" if consistency else "")
    )
    compare_consistency.flaky_expander(cells, consistency)


def _charts(df: pd.DataFrame, table: pd.DataFrame, by_version_model: pd.DataFrame) -> None:
    done = df[df["status"] == "done"]
    c1, c2 = st.columns(2)
    tokens = table.melt(
        id_vars=["column"],
        value_vars=["prompt_tokens", "completion_tokens"],
        var_name="kind",
        value_name="tokens",
    )
    c1.plotly_chart(
        px.bar(tokens, x="column", y="tokens", color="kind", barmode="stack", title="Tokens per column"),
        key="compare.chart_tokens",
    )
    priced = table.dropna(subset=["cost_usd"])
    if priced.empty:
        c2.info("No priced model in this selection: cost is unknown.")
    else:
        c2.plotly_chart(
            px.bar(priced, x="column", y="cost_usd", title="Cost per column (USD)"), key="compare.chart_cost"
        )
    if not done.empty:
        lat = done.assign(temperature=done["params"].map(lambda p: str(p.get("temperature", "default"))))
        st.plotly_chart(
            px.box(
                lat,
                x="model",
                y="latency_ms",
                color="temperature",
                points=False,
                title="Latency by model and temperature (ms)",
            ),
            key="compare.chart_latency",
        )
    scored = {m.name: m for m in metrics.mean_columns(table.columns)}
    if scored:
        name = st.selectbox(
            "Score", list(scored), format_func=lambda n: scored[n].label, key="compare.chart_metric"
        )
        metric = scored[name]
        pivot = by_version_model.pivot_table(index="version", columns="model", values=metric.mean_column)
        c3, c4 = st.columns(2)
        c3.plotly_chart(
            px.imshow(
                pivot,
                text_auto=".2f",
                aspect="auto",
                color_continuous_scale="Viridis",
                title=f"{metric.label}: version x model",
            ),
            key="compare.chart_heat",
        )
        trade = table.dropna(subset=[metric.mean_column])
        cost_axis = "cost_usd" if trade["cost_usd"].notna().any() else "completion_tokens"
        c4.plotly_chart(
            px.scatter(
                trade,
                x=cost_axis,
                y=metric.mean_column,
                color="model",
                symbol="version",
                hover_name="column",
                title=f"{metric.label} vs {cost_axis.replace('_', ' ')}",
                labels={metric.mean_column: f"{metric.name} (mean)"},
            ),
            key="compare.chart_tradeoff",
        )
    else:
        st.caption("Add scorers to the sweep to chart scores.")


def _cell_text(group: pd.DataFrame) -> str:
    parts = []
    for r in group.sort_values("repeat").to_dict("records"):
        if r["status"] == "done":
            text = r["output"] or "(empty output)"
            if r["finish_reason"] == "length":
                text += "  ✂ truncated"
        elif r["status"] == "failed":
            text = f"⚠ {r['error_kind']}: {r['error_message']}"
        else:
            text = f"… {r['status']}"
        parts.append(text if len(group) == 1 else f"[{r['repeat'] + 1}] {text}")
    return "\n".join(parts)


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
    texts = {key: _cell_text(group) for key, group in window.groupby(["row", "column"], sort=False)}
    firsts = window.drop_duplicates("row").set_index("row")
    table = []
    for row in shown_rows:
        entry = {"row": row, "input": firsts.at[row, "input"], "expected": firsts.at[row, "expected"] or ""}
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
        if cells.iloc[0]["expected"]:
            st.markdown(f"**Expected** — {html.escape(str(cells.iloc[0]['expected']))}")
        cols = st.columns(min(len(chosen), 4))
        for i, column in enumerate(chosen[:4]):
            with cols[i]:
                st.caption(column)
                st.text(_cell_text(cells[cells["column"] == column]))
        if len(chosen) >= 2:
            c1, c2 = st.columns(2)
            a = c1.selectbox("Diff from", chosen, index=0, key="compare.diff_a")
            b = c2.selectbox("to", chosen, index=1, key="compare.diff_b")
            text_a = _cell_text(cells[cells["column"] == a])
            text_b = _cell_text(cells[cells["column"] == b])
            st.html(_diff_html(text_a, text_b))


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
