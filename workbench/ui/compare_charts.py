"""Compare's Charts tab: tokens and cost per column, latency by model and temperature, scores.

Every chart is drawn from aggregates, never one point per cell: bars from the per-column summary,
the latency boxes from quartiles and whiskers computed here (`box_stats`, the statistics plotly
would compute from the points), so a chart's JSON stays a few kilobytes on a 10,000-cell sweep.
The figures are built once per selection (sweeps, their data versions and the filters) and kept.

Column labels ("capital@1 | local/smollm2-135m-instruct | temperature=0.7") are too long for an
axis: when any is, columns get short keys (C1, C2, ... in the order they first appear in the
sweep, so a key does not change with the filters), bars run horizontally, and the full label is
on hover and in the keys table. Costs that are all $0 or unknown are said in words, not drawn.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.colors import qualitative

from workbench import metrics, present

LONG_LABEL = 24  # characters: a longer column label gets a short key on the axes
BAR_HEIGHT = 26  # pixels per horizontal bar
PALETTE = qualitative.Plotly
SYMBOLS = ["circle", "diamond", "square", "x", "cross", "triangle-up", "star", "hexagon"]
BOX_STATS = ["q1", "median", "q3", "lowerfence", "upperfence"]


def column_keys(labels: Iterable[str]) -> dict[str, str]:
    """Column label -> what the axes show: the label itself when every label is short, else C1, C2, ..."""
    labels = list(dict.fromkeys(labels))
    if all(len(label) <= LONG_LABEL for label in labels):
        return {label: label for label in labels}
    return {label: f"C{i}" for i, label in enumerate(labels, start=1)}


def uses_keys(keys: dict[str, str]) -> bool:
    """Whether the axes show short keys instead of the labels."""
    return any(k != label for label, k in keys.items())


# ---------------------------------------------------------------------------------------------
# Aggregates
# ---------------------------------------------------------------------------------------------


def box_stats(values: Iterable[float]) -> dict[str, float] | None:
    """Quartiles and whiskers of a sample, as plotly computes them from the points (None if empty).

    Quartiles interpolate at position p*n - 0.5 of the sorted sample (numpy's "hazen" method, plotly's
    default "linear" quartile method); each whisker ends at the last point within 1.5 IQR of its
    quartile (the quartile itself when no point is).
    """
    v = np.asarray(list(values) if not isinstance(values, (np.ndarray, pd.Series)) else values, dtype=float)
    v = np.sort(v[np.isfinite(v)])
    n = len(v)
    if not n:
        return None
    q1, median, q3 = np.quantile(v, [0.25, 0.5, 0.75], method="hazen")
    iqr = q3 - q1
    low = v[min(int(np.searchsorted(v, q1 - 1.5 * iqr, side="left")), n - 1)]
    high = v[max(int(np.searchsorted(v, q3 + 1.5 * iqr, side="right")) - 1, 0)]
    return {
        "q1": float(q1),
        "median": float(median),
        "q3": float(q3),
        "lowerfence": float(min(q1, low)),
        "upperfence": float(max(q3, high)),
        "n": n,
    }


def temperature_of(params: object) -> str:
    """The temperature a cell ran at, as the latency chart groups it ("default" when unset)."""
    return str(params.get("temperature", "default")) if isinstance(params, dict) else "default"


def latency_boxes(df: pd.DataFrame) -> pd.DataFrame:
    """One line per (model, temperature) of the done cells: the latency box statistics, in the
    order models and temperatures first appear."""
    done = df[(df["status"] == "done") & df["latency_ms"].notna()]
    if done.empty:
        return pd.DataFrame(columns=["model", "temperature", *BOX_STATS, "n"])
    # Temperatures are read once per distinct parameter set, not once per cell.
    firsts = done.drop_duplicates("params_json")
    temps = done["params_json"].map(
        dict(zip(firsts["params_json"], firsts["params"].map(temperature_of), strict=True))
    )
    frame = pd.DataFrame({"model": done["model"], "temperature": temps, "latency": done["latency_ms"]})
    lines = []
    for (model, temp), group in frame.groupby(["model", "temperature"], sort=False):
        stats = box_stats(group["latency"].to_numpy(dtype=float))
        if stats:
            lines.append({"model": model, "temperature": temp, **stats})
    return pd.DataFrame(lines)


# ---------------------------------------------------------------------------------------------
# Figures (pure: a table in, a plotly figure out)
# ---------------------------------------------------------------------------------------------


def _bar_layout(fig: go.Figure, title: str, keys: list[str], x_title: str) -> go.Figure:
    fig.update_layout(
        title=title,
        height=max(240, 130 + BAR_HEIGHT * len(keys)),
        margin={"l": 10, "r": 10, "t": 80, "b": 40},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "traceorder": "normal"},
    )
    # First column on top, every key shown (plotly would skip some on a crowded axis), and room
    # for the longest one.
    fig.update_yaxes(
        categoryorder="array",
        categoryarray=keys,
        autorange="reversed",
        type="category",
        dtick=1,
        automargin=True,
    )
    fig.update_xaxes(title=x_title)
    return fig


def tokens_figure(table: pd.DataFrame, keys: dict[str, str]) -> go.Figure:
    """Prompt and completion tokens per column: horizontal stacked bars, the full label on hover."""
    labels = list(table["column"])
    axis = [keys.get(label, label) for label in labels]
    fig = go.Figure()
    for column, name in (("prompt_tokens", "tokens in"), ("completion_tokens", "tokens out")):
        fig.add_trace(
            go.Bar(
                name=name,
                orientation="h",
                y=axis,
                x=table[column].fillna(0).astype(int).tolist(),
                customdata=labels,
                hovertemplate=f"%{{customdata}}<br>{name}: %{{x:,}}<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack")
    return _bar_layout(fig, "Tokens per column", axis, "tokens")


@dataclass(frozen=True)
class CostView:
    """What the cost chart shows: a figure, or a note saying why there is none, and the columns
    whose cost is unknown (a model without a price)."""

    figure: go.Figure | None
    note: str | None
    unknown: list[str]


def cost_view(table: pd.DataFrame, keys: dict[str, str]) -> CostView:
    """The cost bars of the priced columns, unless every cost is $0 or unknown (then a note)."""
    costs = table.set_index("column")["cost_usd"]
    known = costs.dropna()
    unknown = [keys.get(label, label) for label in costs.index[costs.isna()]]
    if not (known > 0).any():
        if known.empty:
            note = "Cost is unknown for every column: no model in this selection has a price."
        elif len(known) == len(costs):
            note = (
                f"Every column cost {present.money(0, 0)} (free or local models): there is no cost to chart."
            )
        else:
            note = (
                f"Every column cost {present.money(0, 0)} or an unknown amount (a model without a price): "
                "there is no cost to chart."
            )
        return CostView(None, note, unknown)
    labels = list(known.index)
    axis = [keys.get(label, label) for label in labels]
    texts = [present.money(v) for v in known]
    fig = go.Figure(
        go.Bar(
            orientation="h",
            y=axis,
            x=known.tolist(),
            text=texts,
            textposition="auto",
            customdata=np.column_stack([labels, texts]),
            hovertemplate="%{customdata[0]}<br>cost: %{customdata[1]}<extra></extra>",
            showlegend=False,
        )
    )
    return CostView(_bar_layout(fig, "Cost per column (USD)", axis, "USD"), None, unknown)


def latency_figure(boxes: pd.DataFrame) -> go.Figure:
    """Latency boxes by model (x) and temperature (colour), from precomputed statistics."""
    fig = go.Figure()
    models = list(dict.fromkeys(boxes["model"]))
    for temp, group in boxes.groupby("temperature", sort=False):
        fig.add_trace(
            go.Box(
                name=str(temp),
                legendgroup=str(temp),
                x=group["model"].tolist(),
                boxpoints=False,
                **{stat: group[stat].tolist() for stat in BOX_STATS},
            )
        )
    fig.update_layout(
        title="Latency by model and temperature (ms)",
        boxmode="group",
        legend={"title": {"text": "temperature"}},
        xaxis={"title": {"text": "model"}, "categoryorder": "array", "categoryarray": models},
        yaxis={"title": {"text": "latency (ms)"}},
    )
    return fig


def score_grid(df: pd.DataFrame, metric: metrics.Metric) -> pd.DataFrame:
    """Versions x models: the metric's mean over their done cells (as the summary's means), sorted,
    without a version or model that has no score at all."""
    done = df[df["status"] == "done"]
    grid = done.groupby(["version", "model"])[metric.column].mean().unstack("model")
    return grid.dropna(how="all").dropna(axis=1, how="all")


def heatmap_figure(pivot: pd.DataFrame, metric: metrics.Metric) -> go.Figure:
    """The metric's mean per version (rows) and model (columns), from `score_grid`."""
    fig = go.Figure(
        go.Heatmap(
            z=pivot.to_numpy(dtype=float),
            x=[str(c) for c in pivot.columns],
            y=[str(i) for i in pivot.index],
            colorscale="Viridis",
            texttemplate="%{z:.2f}",
            hovertemplate="version %{y}<br>model %{x}<br>mean %{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"{metric.label}: version x model",
        xaxis={"title": {"text": "model"}},
        yaxis={"title": {"text": "version"}, "autorange": "reversed"},
    )
    return fig


def tradeoff_figure(table: pd.DataFrame, metric: metrics.Metric) -> go.Figure:
    """The metric's mean against cost (tokens out when nothing costs anything), one point per column;
    colour is the model, the symbol the version."""
    trade = table.dropna(subset=[metric.mean_column])
    axis = "cost_usd" if (trade["cost_usd"].fillna(0) > 0).any() else "completion_tokens"
    trade = trade.dropna(subset=[axis])
    colors = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(dict.fromkeys(trade["model"]))}
    symbols = {v: SYMBOLS[i % len(SYMBOLS)] for i, v in enumerate(dict.fromkeys(trade["version"]))}
    fig = go.Figure()
    for (model, version), g in trade.groupby(["model", "version"], sort=False):
        x_text = [present.money(v) if axis == "cost_usd" else f"{int(v):,} tokens" for v in g[axis]]
        fig.add_trace(
            go.Scatter(
                name=f"{model}, {version}",
                x=g[axis].tolist(),
                y=g[metric.mean_column].tolist(),
                mode="markers",
                marker={"color": colors[model], "symbol": symbols[version], "size": 10},
                customdata=np.column_stack([g["column"].tolist(), x_text]),
                hovertemplate=(
                    "%{customdata[0]}<br>%{customdata[1]}<br>"
                    + f"{metric.name} (mean) "
                    + "%{y:.3f}<extra></extra>"
                ),
            )
        )
    x_title = "cost (USD)" if axis == "cost_usd" else "tokens out"
    fig.update_layout(
        title=f"{metric.label} vs {x_title}",
        xaxis={"title": {"text": x_title}},
        yaxis={"title": {"text": f"{metric.name} (mean)"}},
        legend={"title": {"text": "model, version"}},
    )
    return fig


# ---------------------------------------------------------------------------------------------
# Cached per selection, and drawn
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """The score-independent charts of one selection."""

    tokens: go.Figure
    cost: CostView
    latency: go.Figure | None


@st.cache_resource(max_entries=16)
def _figures(cache_key: tuple, keys: tuple, _df: pd.DataFrame, _table: pd.DataFrame) -> Figures:
    """Built once per selection (cache_key identifies _df and _table). Figures are never modified
    after this: st.plotly_chart only reads them, so keeping the objects (cache_resource) is safe
    and saves a pickle round trip per rerun."""
    key_map = dict(keys)
    boxes = latency_boxes(_df)
    return Figures(
        tokens=tokens_figure(_table, key_map),
        cost=cost_view(_table, key_map),
        latency=latency_figure(boxes) if not boxes.empty else None,
    )


@st.cache_resource(max_entries=32)
def _score_figures(
    cache_key: tuple, metric_name: str, _df: pd.DataFrame, _table: pd.DataFrame
) -> tuple[go.Figure, go.Figure]:
    """The heatmap and the trade-off chart of one metric (cache_key identifies _df and _table)."""
    metric = metrics.get(metric_name)
    return (
        heatmap_figure(score_grid(_df, metric), metric),
        tradeoff_figure(_table, metric),
    )


def render(cache_key: tuple, df: pd.DataFrame, table: pd.DataFrame, keys: dict[str, str]) -> None:
    """Draw the Charts tab for the cells `df` and their summary `table` (cache_key identifies both)."""
    frozen = tuple(keys.items())
    figures = _figures(cache_key, frozen, df, table)
    c1, c2 = st.columns(2)
    c1.plotly_chart(figures.tokens, key="compare.chart_tokens")
    with c2:
        if figures.cost.figure is not None:
            st.plotly_chart(figures.cost.figure, key="compare.chart_cost")
        else:
            st.info(figures.cost.note)
        if figures.cost.unknown and figures.cost.figure is not None:
            st.caption(
                f"Cost unknown (a model without a price), not drawn: {', '.join(figures.cost.unknown)}."
            )
    if uses_keys(keys):
        here = set(table["column"])
        labels = [label for label in keys if label in here]
        with st.expander("Column keys: hover a bar for its full label", expanded=False):
            st.dataframe(
                pd.DataFrame({"key": [keys[label] for label in labels], "column": labels}),
                hide_index=True,
                width="stretch",
                key="compare.chart_keys",
            )
    if figures.latency is not None:
        st.plotly_chart(figures.latency, key="compare.chart_latency")
    scored = {m.name: m for m in metrics.mean_columns(table.columns)}
    if not scored:
        st.caption("Add scorers to the sweep to chart scores.")
        return
    name = st.selectbox(
        "Score", list(scored), format_func=lambda n: scored[n].label, key="compare.chart_metric"
    )
    heat, trade = _score_figures(cache_key, name, df, table)
    c3, c4 = st.columns(2)
    c3.plotly_chart(heat, key="compare.chart_heat")
    c4.plotly_chart(trade, key="compare.chart_tradeoff")
