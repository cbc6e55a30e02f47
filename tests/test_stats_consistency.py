"""Tests of workbench.stats.consistency: pass^k, pass@k and flaky rows on hand-made repeats."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from workbench.errors import ValidationError
from workbench.stats.consistency import consistency

NAN = math.nan


def table(rows: dict) -> pd.DataFrame:
    return pd.DataFrame.from_dict(rows, orient="index", columns=[0, 1, 2])


def test_pass_k_and_pass_at_k_by_hand():
    result = consistency(
        table(
            {
                "r1": [1, 1, 1],  # always right
                "r2": [1, 0, 1],  # flaky
                "r3": [0, 0, 0],  # always wrong
                "r4": [0, 1, NAN],  # flaky, two repeats scored
                "r5": [1, NAN, NAN],  # one repeat: right, never flaky
                "r6": [NAN, NAN, NAN],  # nothing scored: left out
            }
        )
    )
    assert result.rows == 5 and (result.repeats_min, result.repeats_max) == (1, 3)
    assert result.pass_all == pytest.approx(2 / 5)  # r1, r5
    assert result.pass_any == pytest.approx(4 / 5)  # all but r3
    assert result.mean == pytest.approx((1 + 2 / 3 + 0 + 1 / 2 + 1) / 5)
    assert result.flaky == ["r2", "r4"] and result.flaky_share == pytest.approx(2 / 5)
    assert result.to_dict()["flaky"] == ["r2", "r4"]


def test_one_repeat_gives_the_plain_pass_rate():
    result = consistency(pd.DataFrame({0: [1, 0, 1, 1]}, index=[10, 11, 12, 13]))
    assert result.pass_all == result.pass_any == result.mean == 0.75
    assert result.flaky == []


def test_empty_and_non_binary_tables():
    empty = consistency(pd.DataFrame())
    assert empty.rows == 0 and empty.pass_all is None and empty.flaky_share is None
    assert empty.to_dict()["pass_any"] is None
    with pytest.raises(ValidationError) as exc:
        consistency(table({"r1": [1, 0.5, 1]}))
    assert exc.value.field == "metric"
