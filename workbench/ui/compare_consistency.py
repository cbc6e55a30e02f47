"""Consistency over repeats in the Compare summary: pass^k, pass@k and flaky rows per column.

Only for pass/fail metrics of a selection with repeats (with one repeat, pass^k = pass@k = the
mean already shown). The numbers are `workbench.stats.consistency.consistency` of each column's
rows x repeats table, the table `workbench.stats.columns.repeat_table` reads; this module builds
the tables of every column in one pass over the cells (a test checks it against
`stats.columns.consistency_by_column`), adds the numbers to the summary rows and lists the flaky
rows (repeats that disagree) with their input. Both are computed once per selection (the page's
cache key), so a 10,000-cell sweep with thousands of flaky rows costs its time once, not per rerun.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from workbench import metrics, present
from workbench.stats.consistency import Consistency, consistency

# workbench.stats.columns (row keys, column labels) is imported where it is used: it loads scipy,
# which the Compare page then needs only once a tab that uses it is opened.

Found = dict[str, dict[str, Consistency]]  # metric name -> column label -> Consistency
FLAKY_COLUMNS = ["metric", "column", "row", "input", "repeats"]


def _scored_cells(df: pd.DataFrame, keys: pd.Series, metric: metrics.Metric) -> pd.DataFrame:
    """Done cells with a score, as `stats.columns.repeat_table` reads them: column, row key, repeat,
    value, the first score of a (column, row, repeat)."""
    scored = (df["status"] == "done") & df[metric.column].notna()
    cells = pd.DataFrame(
        {
            "column": df["column"][scored],
            "row": keys[scored],
            "repeat": df["repeat"][scored] if "repeat" in df else 0,
            "value": df[metric.column][scored].astype(float),
        }
    )
    return cells.drop_duplicates(["column", "row", "repeat"])


def repeat_tables(
    df: pd.DataFrame, metric: metrics.Metric, keys: pd.Series | None = None
) -> dict[str, pd.DataFrame]:
    """Each column's rows x repeats table of a metric (`stats.columns.repeat_table` of every column,
    from one pivot of all the cells), in summary order."""
    from workbench.stats.columns import column_labels, row_keys

    keys = row_keys(df) if keys is None else keys
    empty = pd.DataFrame(index=pd.Index([], name="row"))
    cells = _scored_cells(df, keys, metric)
    if cells.empty:
        return {label: empty for label in column_labels(df)}
    wide = cells.set_index(["column", "row", "repeat"])["value"].unstack("repeat").sort_index()
    values, repeats = wide.to_numpy(dtype=float), wide.columns.to_numpy()
    codes, uniques = pd.factorize(wide.index.get_level_values("column"))
    rows = wide.index.get_level_values("row")
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])  # the index is sorted: one block per column
    blocks = {uniques[codes[a]]: (a, b) for a, b in zip(starts, np.r_[starts[1:], len(codes)], strict=True)}
    tables = {}
    for label in column_labels(df):
        if label not in blocks:
            tables[label] = empty
            continue
        a, b = blocks[label]
        block = values[a:b]
        kept = ~np.isnan(block).all(axis=0)  # repeats this column has
        tables[label] = pd.DataFrame(
            block[:, kept], index=pd.Index(rows[a:b], name="row"), columns=repeats[kept]
        )
    return tables


def consistency_tables(
    df: pd.DataFrame, metric: metrics.Metric, keys: pd.Series | None = None
) -> dict[str, Consistency]:
    """Each column's consistency for a pass/fail metric, in summary order (what
    `stats.columns.consistency_by_column` gives)."""
    return {label: consistency(table) for label, table in repeat_tables(df, metric, keys).items()}


def _outcomes(table: pd.DataFrame, flaky: list) -> list[str]:
    """The scored repeats of each flaky row in repeat order: ✓ right, ✗ wrong."""
    values = table.to_numpy(dtype=float)[table.index.get_indexer(flaky)]
    return [" ".join("✓" if v == 1 else "✗" for v in line if v == v) for line in values]


def _describe_rows(df: pd.DataFrame, keys: pd.Series) -> dict[object, tuple[object, str]]:
    """Row key (as stats.columns keys rows) -> (row number, input text) from the page's frame."""
    firsts = df.assign(_key=keys.to_numpy()).drop_duplicates("_key")
    return {
        k: (r, str(i))
        for k, r, i in zip(
            firsts["_key"],
            firsts.get("row", pd.Series("", index=firsts.index)),
            firsts.get("input", pd.Series("", index=firsts.index)),
            strict=True,
        )
    }


@dataclass(frozen=True)
class Analysis:
    """The consistency of a selection: per metric and column, and the flaky rows to list."""

    found: Found
    flaky: pd.DataFrame  # FLAKY_COLUMNS, one line per (metric, column, flaky row)


def analyse(df: pd.DataFrame) -> Analysis:
    """Per pass/fail metric with repeats, each column's consistency and its flaky rows."""
    from workbench.stats.columns import row_keys

    found: Found = {}
    flaky: list[dict[str, object]] = []
    pass_fail = [m for m in metrics.score_columns(df.columns) if m.pass_fail]
    keys = row_keys(df) if pass_fail else None
    described = None
    for m in pass_fail:
        tables = repeat_tables(df, m, keys)
        table = {label: consistency(t) for label, t in tables.items()}
        if not any(c.repeats_max > 1 for c in table.values()):
            continue
        found[m.name] = table
        for label, c in table.items():
            if not c.flaky:
                continue
            described = described if described is not None else _describe_rows(df, keys)
            for key, repeats in zip(c.flaky, _outcomes(tables[label], c.flaky), strict=True):
                row, text = described.get(key, (present.DASH, str(key)))
                flaky.append(
                    {"metric": m.name, "column": label, "row": row, "input": text, "repeats": repeats}
                )
    return Analysis(found, pd.DataFrame(flaky, columns=FLAKY_COLUMNS))


@st.cache_resource(max_entries=16)
def by_selection(cache_key: tuple, _df: pd.DataFrame) -> Analysis:
    """`analyse` once per selection (cache_key identifies _df)."""
    return analyse(_df)


def summary_cells(found: Found, label: str) -> dict[str, object]:
    """The consistency cells of one summary row: pass^k, pass@k and flaky rows per metric."""
    cells: dict[str, object] = {}
    for name, table in found.items():
        c = table.get(label)
        cells[f"{name} pass^k"] = present.score(c.pass_all if c else None)
        cells[f"{name} pass@k"] = present.score(c.pass_any if c else None)
        cells[f"{name} flaky rows"] = len(c.flaky) if c else 0
    return cells


CAPTION = (
    "pass^k: share of rows right in every repeat; pass@k: right in at least one; flaky rows: rows "
    "whose repeats disagree (k is the number of scored repeats of each row)."
)


def flaky_expander(analysis: Analysis) -> None:
    """An expander listing every flaky row (nothing when the selection has no repeats)."""
    if not analysis.found:
        return
    rows = analysis.flaky
    with st.expander(f"Flaky rows ({len(rows):,})", expanded=False):
        if len(rows):
            st.dataframe(rows, hide_index=True, width="stretch", key="compare.flaky")
            st.caption("✓ right, ✗ wrong, per scored repeat.")
        else:
            st.caption("Every row gave the same result in all its repeats.")
