"""The Compare page's Difference tab: every column against a baseline column, metric by metric.

The statistics are `workbench.stats`: paired over dataset rows (repeats averaged per row first,
so the row is the unit), the difference with its 95% interval, a p-value Holm-adjusted over the
columns compared on each metric, the discordant rows of a pass/fail metric (McNemar on 0/1 rows;
with repeats averaged, the rows where one side's pass rate is higher), the test used and a verdict
word, plus a forest plot of the intervals. Where nothing is detectable it says how many
rows a 5-point difference would need. This module only picks, caches and draws: the table, the
note and the figure are built once per (selection, baseline) and reruns only draw them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from workbench import metrics, present
from workbench.errors import WorkbenchError
from workbench.stats import power
from workbench.stats.columns import column_labels, compare_columns
from workbench.stats.paired import BETTER, MCNEMAR, NO_DIFFERENCE, WORSE, PairedResult, significance_word
from workbench.ui.common import show_error

ALPHA = 0.05
BASELINE_KEY = "compare.diff_baseline"
NO_ROWS = "no rows in common"
COLORS = {BETTER: "#2ca02c", WORSE: "#d62728", "higher": "#1f77b4", "lower": "#ff7f0e"}
NEUTRAL = "#7f7f7f"


def scored_metrics(df: pd.DataFrame) -> list[metrics.Metric]:
    """The metrics with at least one score on a done cell (a metric nobody could score is left out)."""
    done = df[df["status"] == "done"] if "status" in df else df.iloc[0:0]
    return [m for m in metrics.score_columns(df.columns) if done[m.column].notna().any()]


@dataclass(frozen=True)
class DiffView:
    """What the tab draws for one (selection, baseline): the table's rows, the note when nothing
    differs detectably (None otherwise) and the forest plot (None when no interval can be drawn)."""

    rows: list[dict[str, object]]
    note: str | None
    figure: object | None


@st.cache_resource(max_entries=16, show_spinner="Comparing columns ...")
def _view(cache_key: tuple, baseline: str, _df: pd.DataFrame) -> DiffView:
    """Everything the tab shows, built once per (selection, baseline): cache_key identifies _df.

    compare_columns runs per scored metric, and the power calculation (scipy) once per result for
    the table and the note together. The rows and figure are only read after this (st.dataframe
    and st.plotly_chart do not modify them), so keeping the objects (cache_resource) is safe.
    """
    results = {m.name: compare_columns(_df, m, baseline, alpha=ALPHA) for m in scored_metrics(_df)}
    needed = detectable(results)
    return DiffView(
        rows=table_rows(results, needed),
        note=nothing_detected(results, baseline, needed),
        figure=forest_figure(results),
    )


def verdict(result: PairedResult, metric: metrics.Metric) -> str:
    """The verdict word shown for one comparison (significance_word, or that no row was shared)."""
    if result.n == 0:
        return NO_ROWS
    return significance_word(result, higher_is_better=metric.higher_is_better)


def rows_to_detect(result: PairedResult, metric: metrics.Metric) -> int | None:
    """Rows needed to detect a 5-point difference at 80% power, for a 0-1 metric showing none.

    None when a difference was detected, when the rows cannot tell (no spread, no rows), or for a
    metric without a better direction (output length: 5 points of characters mean nothing).
    """
    if metric.higher_is_better is None or verdict(result, metric) != NO_DIFFERENCE:
        return None
    return power.rows_needed(result)  # defaults: 5 points, 80% power, the result's alpha


def detectable(results: dict[str, list[PairedResult]]) -> dict[str, list[int | None]]:
    """`rows_to_detect` of every result, per metric in the results' order."""
    return {name: [rows_to_detect(r, metrics.get(name)) for r in found] for name, found in results.items()}


def p_text(p: float) -> str:
    """A p-value: three decimals, or "< 0.001" below that."""
    return "< 0.001" if not present.is_missing(p) and p < 0.001 else present.number(p, ".3f")


def _test_text(result: PairedResult) -> str:
    text = f"{result.test}, {result.interval} interval"
    return text if result.repeats <= 1 else f"{text}; up to {result.repeats} repeats averaged per row"


def row_counts(result: PairedResult) -> dict[str, str]:
    """The rows the test rests on, under headers that say what they count.

    Discordant rows (only one side right) exist only for McNemar on 0/1 rows; with repeats averaged
    a row holds pass rates, and the sign-flip test weighs the rows where one side's rate is higher.
    A continuous metric has neither (a dash).
    """
    mcnemar = result.test == MCNEMAR
    averaged = not mcnemar and result.a_only is not None

    def count(value: int | None, show: bool) -> str:
        return present.number(value, "d") if show else present.DASH

    return {
        "rows won by baseline": count(result.a_only, mcnemar),
        "rows won by this column": count(result.b_only, mcnemar),
        "rows baseline higher": count(result.a_only, averaged),
        "rows this column higher": count(result.b_only, averaged),
    }


def table_rows(
    results: dict[str, list[PairedResult]], needed: dict[str, list[int | None]] | None = None
) -> list[dict[str, object]]:
    """One display row per column x metric: means, Δ, interval, p, n, the rows the test rests on
    (see `row_counts`), test, verdict, rows to detect 5 points (`needed`: `detectable(results)`,
    computed here when not given)."""
    needed = detectable(results) if needed is None else needed
    rows = []
    for name, found in results.items():
        m = metrics.get(name)
        for r, to_detect in zip(found, needed[name], strict=True):
            rows.append(
                {
                    "column": r.b_label,
                    "metric": m.name,
                    "baseline": present.score(r.mean_a),
                    "this column": present.score(r.mean_b),
                    "Δ": present.number(r.diff, "+.3f") if r.n else present.DASH,
                    "95% interval": (
                        f"{present.number(r.ci_low, '+.3f')} to {present.number(r.ci_high, '+.3f')}"
                        if r.n
                        else present.DASH
                    ),
                    "p (Holm)": p_text(r.p) if r.n else present.DASH,
                    "rows": r.n,
                    **row_counts(r),
                    "test": _test_text(r) if r.n else present.DASH,
                    "verdict": verdict(r, m),
                    "rows to detect 5 points": present.number(to_detect, ",d"),
                }
            )
    return rows


def forest_figure(results: dict[str, list[PairedResult]]):
    """Intervals of the differences, one panel per metric (own scale) and one line per column."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    names = [n for n, found in results.items() if any(_plottable(r) for r in found)]
    if not names:
        return None
    fig = make_subplots(
        rows=len(names),
        cols=1,
        subplot_titles=[f"{n}: {metrics.get(n).label} (Δ vs baseline)" for n in names],
        vertical_spacing=min(0.12, 0.5 / len(names)),
    )
    lines = 0
    for i, name in enumerate(names, start=1):
        m = metrics.get(name)
        shown = [r for r in results[name] if _plottable(r)]
        lines += len(shown)
        words = [verdict(r, m) for r in shown]
        fig.add_trace(
            go.Scatter(
                x=[r.diff for r in shown],
                y=[r.b_label for r in shown],
                mode="markers",
                marker={"size": 10, "color": [COLORS.get(w, NEUTRAL) for w in words]},
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": [r.ci_high - r.diff for r in shown],
                    "arrayminus": [r.diff - r.ci_low for r in shown],
                },
                customdata=[[w, p_text(r.p), r.n] for w, r in zip(words, shown, strict=True)],
                hovertemplate=(
                    "%{y}<br>Δ %{x:+.3f}<br>%{customdata[0]} (p %{customdata[1]}, %{customdata[2]} rows)"
                    "<extra></extra>"
                ),
                showlegend=False,
            ),
            row=i,
            col=1,
        )
        fig.add_vline(x=0, line_dash="dash", line_color=NEUTRAL, row=i, col=1)
        fig.update_yaxes(autorange="reversed", row=i, col=1)
    fig.update_layout(height=80 + 70 * len(names) + 35 * lines, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def _plottable(result: PairedResult) -> bool:
    # One shared row gives an unbounded interval: nothing to draw.
    return result.n > 0 and math.isfinite(result.ci_low) and math.isfinite(result.ci_high)


def _baseline(labels: list[str]) -> str:
    state = st.session_state
    if state.get(BASELINE_KEY) not in labels:  # another sweep or filter: the old pick is gone
        state.pop(BASELINE_KEY, None)
    return st.selectbox(
        "Baseline column",
        labels,
        key=BASELINE_KEY,
        help="Every other column is compared with this one, on the dataset rows both have scores for.",
    )


def nothing_detected(
    results: dict[str, list[PairedResult]], baseline: str, needed: dict[str, list[int | None]]
) -> str | None:
    """When no comparison shows a difference: how many rows it would take to see one of 5 points
    (`needed`: `detectable(results)`); None when some comparison shows one."""
    found = [
        (metrics.get(name), r, n)
        for name, rs in results.items()
        for r, n in zip(rs, needed[name], strict=True)
        if r.n
    ]
    if not found or any(verdict(r, m) != NO_DIFFERENCE for m, r, _ in found):
        return None
    counts = [n for _, _, n in found if n is not None]
    rows = max(r.n for _, r, _ in found)
    text = f"No column differs detectably from **{baseline}** on {rows:,} rows."
    if counts:
        low, high = min(counts), max(counts)
        span = f"{low:,}" if low == high else f"{low:,} to {high:,}"
        text += (
            f" To detect a 5-point difference with 80% power these columns would need about {span} rows "
            "(from the disagreement and spread seen here)."
        )
    return text


def render(df: pd.DataFrame, cache_key: tuple) -> None:
    """Draw the Difference tab for the cells `df` (cache_key identifies them: sweeps, progress, filters)."""
    labels = column_labels(df)
    if len(labels) < 2:
        only = f" ({labels[0]})" if labels else ""
        st.info(
            f"This selection has one column{only}, so there is nothing to compare it with. Sweep two or "
            "more versions, models or parameter values, or add another sweep's runs above."
        )
        return
    if not scored_metrics(df):
        st.info("No scores to compare: run the sweep with scorers (exact, contains, judge, ...).")
        return
    baseline = _baseline(labels)
    try:
        view = _view(cache_key, baseline, df)
    except WorkbenchError as exc:
        show_error(exc)
        return
    st.dataframe(view.rows, hide_index=True, width="stretch", key="compare.diff_table")
    st.caption(
        "Δ = column − baseline, paired over the dataset rows both have scores for (failed or pending "
        "cells leave their row out; repeats are averaged per row first). p is Holm-adjusted over the "
        f"columns compared on each metric; a verdict needs p ≤ {ALPHA} and an interval that excludes 0. "
        "Rows won: for a pass/fail metric with one repeat (exact McNemar), rows where one side was right "
        "and the other wrong. Rows higher: with repeats averaged per row (sign-flip test), rows where "
        "one side's pass rate is higher; a row is then a rate, not right or wrong."
    )
    if view.note:
        st.info(view.note)
    if view.figure is not None:
        st.plotly_chart(view.figure, key="compare.diff_forest")
