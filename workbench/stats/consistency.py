"""Consistency of one column over repeats: pass^k, pass@k and the flaky rows.

Input is a table of one pass/fail column: one line per row (the index is the row key), one column
per repeat, values 0 (wrong), 1 (right) or missing (that repeat was not scored: it failed, is still
pending, or the row has fewer repeats).

Each row is judged on its own k, the number of repeats it has a score for, so rows with different
numbers of repeats mix: pass^k is the share of rows that were right in all of their repeats,
pass@k the share right in at least one, and a row is flaky when its repeats disagree. Rows with no
scored repeat are left out. With one repeat everywhere, pass^k = pass@k = the plain pass rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import ValidationError
from workbench.present import json_safe


@dataclass(frozen=True)
class Consistency:
    """How consistently one column gets its rows right over repeats."""

    rows: int  # rows with at least one scored repeat
    repeats_min: int  # fewest scored repeats of a row (0 when there are no rows)
    repeats_max: int
    pass_all: float | None  # pass^k: share of rows right in every repeat (None without rows)
    pass_any: float | None  # pass@k: share of rows right in at least one repeat
    mean: float | None  # mean over rows of each row's pass rate
    flaky: list[Any] = field(default_factory=list)  # keys of rows whose repeats disagree

    @property
    def flaky_share(self) -> float | None:
        """Share of rows whose repeats disagree (None without rows)."""
        return len(self.flaky) / self.rows if self.rows else None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields, with flaky_share."""
        return {
            "rows": self.rows,
            "repeats_min": self.repeats_min,
            "repeats_max": self.repeats_max,
            "pass_all": json_safe(self.pass_all),
            "pass_any": json_safe(self.pass_any),
            "mean": json_safe(self.mean),
            "flaky": [json_safe(k) for k in self.flaky],
            "flaky_share": json_safe(self.flaky_share),
        }


def consistency(table: pd.DataFrame) -> Consistency:
    """pass^k, pass@k, the mean pass rate and the flaky rows of a rows x repeats 0/1 table.

    Raises a ValidationError when a value is neither 0 nor 1 (the metric is not pass/fail).
    """
    values = table.to_numpy(dtype=float) if len(table.columns) else np.zeros((len(table), 0))
    scored = np.isfinite(values)
    if np.any(scored & (values != 0) & (values != 1)):
        raise ValidationError("pass^k and pass@k need right/wrong scores (0 or 1).", field="metric")
    k = scored.sum(axis=1)
    has = k > 0
    right = np.where(scored, values, 0.0).sum(axis=1)
    if not has.any():
        return Consistency(rows=0, repeats_min=0, repeats_max=0, pass_all=None, pass_any=None, mean=None)
    k, right, keys = k[has], right[has], table.index[has]
    flaky = (right > 0) & (right < k)
    return Consistency(
        rows=int(has.sum()),
        repeats_min=int(k.min()),
        repeats_max=int(k.max()),
        pass_all=float(np.mean(right == k)),
        pass_any=float(np.mean(right > 0)),
        mean=float(np.mean(right / k)),
        flaky=keys[flaky].tolist(),
    )
