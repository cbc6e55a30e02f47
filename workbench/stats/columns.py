"""From a sweep's runs frame to per-row values per column, and the paired comparisons on them.

Works on `workbench.sweeps.summary.runs_frame` (one line per cell: "column" label, example_id,
"repeat", "status", one score column per metric), so it needs no database. Only done cells with a
score count. A row is a dataset example (keyed by its example_id); a sweep over ad-hoc variables
has one row (keyed by its variables when the frame carries them, else "variables").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace

import pandas as pd

from workbench import metrics
from workbench.errors import ValidationError
from workbench.stats.consistency import Consistency, consistency
from workbench.stats.paired import FLIPS, PairedResult, compare_paired, with_holm

ADHOC_ROW = "variables"


def _metric(metric: str | metrics.Metric) -> metrics.Metric:
    return metric if isinstance(metric, metrics.Metric) else metrics.get(metric)


def value_range(metric: metrics.Metric, values: pd.DataFrame | None = None) -> tuple[float, float] | None:
    """(0, 1) for a metric scored on 0-1 (pass/fail, or with a better direction: the judge's 1-5 is
    scaled onto 0-1), so paired intervals are clipped to [-1, 1]; None for an unbounded metric
    (length), or when `values` holds anything outside 0-1 (a metric this rule does not know)."""
    if not metric.pass_fail and metric.higher_is_better is None:
        return None
    if values is not None and not metric.pass_fail:
        seen = values.to_numpy(dtype=float)
        seen = seen[~pd.isna(seen)]
        if seen.size and (seen.min() < 0 or seen.max() > 1):
            return None
    return (0.0, 1.0)


def row_keys(df: pd.DataFrame) -> pd.Series:
    """The row each cell belongs to: its example_id, or its variables (as JSON) for an ad-hoc row."""

    def key(example_id, variables) -> object:
        if example_id is not None and not pd.isna(example_id):
            return int(example_id)
        if isinstance(variables, dict):
            return json.dumps(variables, sort_keys=True, default=str)
        return ADHOC_ROW

    ids = df["example_id"] if "example_id" in df else pd.Series(None, index=df.index, dtype=object)
    variables = df["variables"] if "variables" in df else pd.Series(None, index=df.index, dtype=object)
    return pd.Series([key(e, v) for e, v in zip(ids, variables, strict=True)], index=df.index, name="row")


def _scored(df: pd.DataFrame, metric: metrics.Metric) -> pd.DataFrame:
    """Done cells with a value for the metric: columns column, row, repeat, value."""
    if df.empty or "column" not in df:
        return pd.DataFrame(columns=["column", "row", "repeat", "value"])
    if metric.column not in df:
        raise ValidationError(f"This sweep has no '{metric.name}' scores.", field="metric")
    done = df[(df["status"] == "done") & df[metric.column].notna()]
    return pd.DataFrame(
        {
            "column": done["column"],
            "row": row_keys(done),
            "repeat": done.get("repeat", 0),
            "value": done[metric.column].astype(float),
        }
    )


def column_labels(df: pd.DataFrame) -> list[str]:
    """The sweep's column labels in the order they first appear (the summary's order)."""
    return [] if df.empty or "column" not in df else list(pd.unique(df["column"]))


def row_means(df: pd.DataFrame, metric: str | metrics.Metric) -> pd.DataFrame:
    """Rows x column labels: the metric's mean over each row's done repeats (NaN where none).

    The index (named "row") holds the row keys (see `row_keys`); every column label of the sweep
    is a column, in summary order, even one without a single score.
    """
    m = _metric(metric)
    cells = _scored(df, m)
    wide = cells.pivot_table(index="row", columns="column", values="value", aggfunc="mean")
    wide = wide.reindex(columns=column_labels(df))
    wide.columns.name = None
    wide.index.name = "row"
    return wide.astype(float)


def repeat_table(df: pd.DataFrame, metric: str | metrics.Metric, column: str) -> pd.DataFrame:
    """Rows x repeat index of one column's scores (NaN for a repeat without a score)."""
    cells = _scored(df, _metric(metric))
    cells = cells[cells["column"] == column]
    if cells.empty:
        return pd.DataFrame(index=pd.Index([], name="row"))
    table = cells.pivot_table(index="row", columns="repeat", values="value", aggfunc="first")
    table.columns.name = None
    return table.astype(float)


def consistency_by_column(df: pd.DataFrame, metric: str | metrics.Metric) -> dict[str, Consistency]:
    """pass^k, pass@k and flaky rows of every column for a pass/fail metric (see stats.consistency)."""
    m = _metric(metric)
    if not m.pass_fail:
        raise ValidationError(
            f"'{m.name}' is not a right/wrong metric, so it has no pass^k or pass@k.", field="metric"
        )
    return {label: consistency(repeat_table(df, m, label)) for label in column_labels(df)}


def resolve_column(labels: Iterable[str], text: str) -> str:
    """The column label `text` names: the exact label, else the only label containing it.

    A match that ends where a label's value ends wins over one that runs into more of it, so
    "temperature=0" names the temperature-0 column even beside "temperature=0.7". Matching tries
    the exact case first, then ignores case. A ValidationError (field "column")
    names the candidates when several labels contain the text, or lists the labels when none does.
    """
    labels = list(dict.fromkeys(labels))
    text = (text or "").strip()
    if text in labels:
        return text
    if not labels:
        raise ValidationError("This sweep has no columns to compare.", field="column")
    whole = re.compile(re.escape(text) + r"(?![\w.])")
    whole_ci = re.compile(re.escape(text) + r"(?![\w.])", re.IGNORECASE)
    for matches in (
        [lab for lab in labels if text and whole.search(lab)],
        [lab for lab in labels if text and whole_ci.search(lab)],
        [lab for lab in labels if text and text in lab],
        [lab for lab in labels if text and text.lower() in lab.lower()],
    ):
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ValidationError(
                f"'{text}' matches several columns: {'; '.join(matches)}. Give more of the label.",
                field="column",
            )
    raise ValidationError(
        f"No column matches '{text}'. The columns are: {'; '.join(labels)}.", field="column"
    )


def compare_columns(
    df: pd.DataFrame,
    metric: str | metrics.Metric,
    baseline: str,
    others: Sequence[str] | None = None,
    *,
    alpha: float = 0.05,
    seed: int = 0,
    flips: int = FLIPS,
) -> list[PairedResult]:
    """Each other column against `baseline` on one metric, paired over the rows both have scores for.

    Column names may be given as unique parts of labels (see `resolve_column`); `others` defaults
    to every other column, in summary order. Repeats are averaged per row first. With more than
    one comparison, p_adjusted holds the Holm-adjusted p-values. Intervals stay within the
    differences the metric can take (see `value_range`). Each result carries the labels,
    the metric name, its n (rows both columns have) and the most repeats averaged into a row.
    The difference is always candidate minus baseline; `paired.significance_word` takes the
    metric's direction (Metric.higher_is_better) to turn it into better or worse.
    """
    m = _metric(metric)
    labels = column_labels(df)
    base = resolve_column(labels, baseline)
    targets = (
        [lab for lab in labels if lab != base]
        if others is None
        else [resolve_column(labels, o) for o in others]
    )
    if base in targets:
        raise ValidationError(f"Column '{base}' cannot be compared with itself.", field="column")
    cells = _scored(df, m)
    means = row_means(df, m)
    bounds = value_range(m, means)
    repeats = cells.groupby(["column", "row"]).size() if not cells.empty else pd.Series(dtype=int)
    results = []
    for label in dict.fromkeys(targets):
        pair = means[[base, label]].dropna()
        most = 1
        if len(pair) and not repeats.empty:
            counts = [repeats.get((c, r), 0) for c in (base, label) for r in pair.index]
            most = max(1, int(max(counts)))
        result = compare_paired(
            pair[base].to_numpy(),
            pair[label].to_numpy(),
            pass_fail=m.pass_fail,
            alpha=alpha,
            seed=seed,
            flips=flips,
            bounds=bounds,
        )
        results.append(replace(result, a_label=base, b_label=label, metric=m.name, repeats=most))
    return with_holm(results)
