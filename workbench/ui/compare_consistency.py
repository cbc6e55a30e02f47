"""Consistency over repeats in the Compare summary: pass^k, pass@k and flaky rows per column.

Only for pass/fail metrics of a selection with repeats (with one repeat, pass^k = pass@k = the
mean already shown). The numbers are `workbench.stats.columns.consistency_by_column`; this module
adds them to the summary rows and lists the flaky rows (repeats that disagree) with their input.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench import metrics, present
from workbench.stats.columns import consistency_by_column, repeat_table, row_keys
from workbench.stats.consistency import Consistency

Found = dict[str, dict[str, Consistency]]  # metric name -> column label -> Consistency


@st.cache_resource(max_entries=16)
def by_column(cache_key: tuple, _df: pd.DataFrame) -> Found:
    """Per pass/fail metric with repeats, each column's consistency (cache_key identifies _df)."""
    found: Found = {}
    for m in metrics.score_columns(_df.columns):
        if not m.pass_fail:
            continue
        table = consistency_by_column(_df, m)
        if any(c.repeats_max > 1 for c in table.values()):
            found[m.name] = table
    return found


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


def _describe_rows(df: pd.DataFrame) -> dict[object, tuple[object, str]]:
    """Row key (as stats.columns keys rows) -> (row number, input text) from the page's frame."""
    keys = row_keys(df)
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


def _outcomes(values: pd.Series) -> str:
    return " ".join("✓" if v == 1 else "✗" for v in values.dropna())


def flaky_rows(df: pd.DataFrame, found: Found) -> list[dict[str, object]]:
    """One display row per (metric, column, flaky row): its row number, input and repeat outcomes."""
    described = _describe_rows(df)
    out = []
    for name, table in found.items():
        for label, c in table.items():
            if not c.flaky:
                continue
            repeats = repeat_table(df, name, label)
            for key in c.flaky:
                row, text = described.get(key, (present.DASH, str(key)))
                out.append(
                    {
                        "metric": name,
                        "column": label,
                        "row": row,
                        "input": text,
                        "repeats": _outcomes(repeats.loc[key]) if key in repeats.index else "",
                    }
                )
    return out


def flaky_expander(df: pd.DataFrame, found: Found) -> None:
    """An expander listing every flaky row (nothing when the selection has no repeats)."""
    if not found:
        return
    rows = flaky_rows(df, found)
    with st.expander(f"Flaky rows ({len(rows)})", expanded=False):
        if rows:
            st.dataframe(rows, hide_index=True, width="stretch", key="compare.flaky")
            st.caption("✓ right, ✗ wrong, per scored repeat.")
        else:
            st.caption("Every row gave the same result in all its repeats.")
