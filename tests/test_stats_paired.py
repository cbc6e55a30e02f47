"""Tests of workbench.stats.paired: paired tests and intervals checked by simulation against known truth.

Simulations are seeded and vectorised; a pass/fail result depends only on (n, a_only, b_only), so
each distinct table is computed once and weighted by how often it was drawn.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from workbench.errors import ValidationError
from workbench.stats.paired import (
    MCNEMAR,
    SIGN_FLIP,
    PairedResult,
    compare_paired,
    holm,
    paired_proportion_interval,
    sign_flip_p,
    significance_word,
    t_interval,
    verdict,
    with_holm,
)


def rows_from_counts(n11: int, a_only: int, b_only: int, n00: int) -> tuple[list[int], list[int]]:
    """Per-row 0/1 values of A and B with the given 2x2 counts."""
    a = [1] * n11 + [1] * a_only + [0] * b_only + [0] * n00
    b = [1] * n11 + [0] * a_only + [1] * b_only + [0] * n00
    return a, b


def draw_tables(n: int, cells: tuple[float, float, float, float], reps: int, seed: int) -> np.ndarray:
    """reps x 4 counts (both right, A only, B only, both wrong) of n rows."""
    return np.random.default_rng(seed).multinomial(n, cells, size=reps)


def over_tables(tables: np.ndarray, fn) -> np.ndarray:
    """fn(n11, a_only, b_only, n00) -> float for every drawn table, computing each distinct one once."""
    uniq, inverse = np.unique(tables, axis=0, return_inverse=True)
    values = np.array([fn(*map(int, t)) for t in uniq])
    return values[inverse.reshape(-1)]


# ---------------------------------------------------------------------------------------------
# Pass/fail: exact McNemar and Tango's interval
# ---------------------------------------------------------------------------------------------


def test_mcnemar_p_equals_binomtest_on_discordant_counts():
    for n11, ao, bo, n00 in [(5, 1, 4, 2), (30, 7, 2, 1), (0, 0, 9, 0), (10, 3, 3, 10), (1, 12, 20, 3)]:
        a, b = rows_from_counts(n11, ao, bo, n00)
        result = compare_paired(a, b, pass_fail=True)
        assert result.test == MCNEMAR and result.interval == "Tango score"
        assert (result.a_only, result.b_only, result.n) == (ao, bo, n11 + ao + bo + n00)
        assert result.p_value == pytest.approx(stats.binomtest(bo, ao + bo, 0.5).pvalue, abs=1e-12)
        assert result.diff == pytest.approx((bo - ao) / result.n)
        assert result.ci_low <= result.diff <= result.ci_high


def test_planted_discordance_on_the_bundled_capitals_scale():
    # 24 rows, 0.583 vs 0.667: the two versions disagree on 2 + 4 rows. Not a detectable difference.
    a, b = rows_from_counts(12, 2, 4, 6)
    result = compare_paired(a, b, pass_fail=True)
    assert (result.mean_a, result.mean_b) == (pytest.approx(14 / 24), pytest.approx(16 / 24))
    assert result.p_value == pytest.approx(0.6875)
    assert result.ci_low < 0 < result.ci_high
    assert significance_word(result) == "no detectable difference"


def test_mcnemar_type_one_error_is_at_most_nominal():
    # No true difference: 15% of rows go each way. Exact McNemar is conservative by construction.
    rates = {}
    for n in (20, 100):
        tables = draw_tables(n, (0.5, 0.15, 0.15, 0.2), 20_000, seed=n)
        p = over_tables(tables, lambda *t: compare_paired(*rows_from_counts(*t), pass_fail=True).p_value)
        rates[n] = float(np.mean(p <= 0.05))
    # Measured: 0.012 at n = 20, 0.030 at n = 100 (20,000 data sets each).
    assert all(rate <= 0.055 for rate in rates.values()), rates


@pytest.mark.parametrize(
    ("n", "cells", "low", "high"),
    [
        # Measured coverage: 0.955 (n = 20), 0.952 (n = 100), 20,000 data sets each. A discrete
        # interval cannot sit at 95% exactly; at small n it errs on the safe side.
        (20, (0.45, 0.1, 0.2, 0.25), 0.935, 0.985),
        (100, (0.45, 0.1, 0.2, 0.25), 0.935, 0.97),
    ],
)
def test_tango_interval_covers_the_true_difference_at_about_95_percent(n, cells, low, high):
    truth = cells[2] - cells[1]
    tables = draw_tables(n, cells, 20_000, seed=7 + n)

    def covers(_n11, ao, bo, _n00):
        lo, hi = paired_proportion_interval(n, ao, bo)
        return float(lo <= truth <= hi)

    coverage = float(np.mean(over_tables(tables, covers)))
    assert low <= coverage <= high, coverage


def test_tango_interval_known_shapes():
    assert paired_proportion_interval(20, 0, 0) == (0.0, 0.0)  # nothing disagrees: no difference
    assert paired_proportion_interval(0, 0, 0) == (0.0, 0.0)
    lo, hi = paired_proportion_interval(20, 20, 0)  # B wrong wherever A was right, on every row
    assert lo == -1.0 and -1.0 < hi < -0.5
    lo, hi = paired_proportion_interval(40, 3, 3)
    assert lo == pytest.approx(-hi) and 0 < hi < 0.2  # symmetric when the discordance is
    narrow = paired_proportion_interval(40, 3, 3, alpha=0.2)
    assert narrow[1] < hi


# ---------------------------------------------------------------------------------------------
# Continuous: sign-flip permutation and t interval
# ---------------------------------------------------------------------------------------------


def test_sign_flip_exact_by_hand():
    # 3 non-zero differences: 8 sign patterns with sums 6, 4, 2, 0, 0, -2, -4, -6 for (1, 2, 3);
    # |sum| >= 6 in 2 of 8.
    assert sign_flip_p(np.array([1.0, 2.0, 3.0, 0.0])) == pytest.approx(2 / 8)
    assert sign_flip_p(np.array([0.0, 0.0])) == 1.0
    assert sign_flip_p(np.array([1.0, -1.0])) == 1.0


def test_permutation_type_one_error_is_at_most_nominal():
    rng = np.random.default_rng(11)
    rates = {}
    for n, datasets in ((12, 2000), (20, 3000), (100, 1000)):
        # Skewed per-row differences, symmetric under the null (the two columns are exchangeable).
        base = rng.gamma(0.5, 1.0, size=(datasets, n))
        swap = rng.random((datasets, n)) < 0.5
        d = np.where(swap, base, -base) * rng.exponential(1.0, size=(datasets, n))
        p = np.array([sign_flip_p(row, seed=i, flips=2000) for i, row in enumerate(d)])
        rates[n] = float(np.mean(p <= 0.05))
    # Measured: 0.050 (n = 12, exact), 0.050 (n = 20), 0.044 (n = 100); slack for the number of data
    # sets (standard error 0.004-0.007).
    assert all(rate <= 0.07 for rate in rates.values()), rates


def test_averaged_pass_fail_uses_the_permutation_test():
    a = [1.0, 2 / 3, 1 / 3, 1.0, 0.0, 1.0]
    b = [1.0, 1.0, 1 / 3, 2 / 3, 1 / 3, 1.0]
    result = compare_paired(a, b, pass_fail=True)
    assert result.test == SIGN_FLIP and result.interval == "t"
    assert (result.a_only, result.b_only) == (1, 2)  # rows where one side's pass rate is higher
    assert result.diff == pytest.approx(np.mean(np.subtract(b, a)))


@pytest.mark.parametrize(("n", "kind"), [(20, "normal"), (100, "normal"), (20, "bounded"), (100, "bounded")])
def test_t_interval_covers_the_true_difference_at_about_95_percent(n, kind):
    rng = np.random.default_rng(n + len(kind))
    reps = 4000
    if kind == "normal":
        truth, d = 0.3, rng.normal(0.3, 1.0, size=(reps, n))
    else:
        # Judge-like scores in [0, 1]: a ~ Beta(5, 2), b = a + 0.05 + noise, clipped.
        a = rng.beta(5, 2, size=(reps, n))
        b = np.clip(a + rng.normal(0.05, 0.15, size=(reps, n)), 0, 1)
        big = rng.beta(5, 2, size=2_000_000)
        truth = float(np.mean(np.clip(big + rng.normal(0.05, 0.15, size=big.size), 0, 1) - big))
        d = b - a
    hits = [lo <= truth <= hi for lo, hi in (t_interval(row) for row in d)]
    # Measured: 0.953 (normal, n = 20), 0.949 (normal, n = 100), 0.950 (bounded, n = 20), 0.952
    # (bounded, n = 100); 4,000 data sets each.
    assert 0.935 <= float(np.mean(hits)) <= 0.965


def test_intervals_on_averaged_pass_rates_stay_within_minus_one_to_one():
    # Three rows, three repeats each averaged: the t interval's half-width on so few rows often
    # runs past -1 or +1, where no difference of pass rates can lie.
    rng = np.random.default_rng(7)
    reps, n = 2000, 3
    pa = rng.random((reps, n))
    pb = np.clip(pa + rng.normal(0.1, 0.3, size=(reps, n)), 0, 1)
    a, b = rng.binomial(3, pa) / 3, rng.binomial(3, pb) / 3
    truth = (pb - pa).mean(axis=1)  # the expected difference of these rows' pass rates
    results = [compare_paired(x, y, pass_fail=True, flips=200) for x, y in zip(a, b, strict=True)]
    assert all(-1 <= r.ci_low <= r.diff <= r.ci_high <= 1 for r in results)
    averaged = [k for k, r in enumerate(results) if r.test == SIGN_FLIP and r.ci_low < r.ci_high]
    raw = [t_interval(b[k] - a[k]) for k in averaged]
    # Measured: 53% of the raw t intervals leave [-1, 1] (about 3 in 4 at two rows, 1 in 20 at five).
    assert np.mean([lo < -1 or hi > 1 for lo, hi in raw]) > 0.4
    # Clipping only cuts off impossible differences: every interval covers the truth exactly when
    # the raw one did.
    clipped = [(results[k].ci_low, results[k].ci_high) for k in averaged]
    assert [lo <= truth[k] <= hi for k, (lo, hi) in zip(averaged, clipped, strict=True)] == [
        lo <= truth[k] <= hi for k, (lo, hi) in zip(averaged, raw, strict=True)
    ]


def test_one_averaged_row_gives_the_whole_range_and_values_must_fit_it():
    one = compare_paired([1 / 3], [1.0], pass_fail=True)
    assert one.test == SIGN_FLIP and (one.ci_low, one.ci_high) == (-1.0, 1.0)
    # On a 0-10 scale differences lie in [-10, 10]; the raw t interval here is about [-25, 32].
    scaled = compare_paired([0.0, 10.0, 0.0], [10.0, 0.0, 10.0], pass_fail=False, bounds=(0, 10))
    assert (scaled.ci_low, scaled.ci_high) == (-10.0, 10.0)
    unbounded = compare_paired([0.0, 10.0, 0.0], [10.0, 0.0, 10.0], pass_fail=False)
    assert unbounded.ci_low < -20 and unbounded.ci_high > 30
    with pytest.raises(ValidationError, match="outside the metric's range"):
        compare_paired([0.5, 1.5], [1.0, 1.0], pass_fail=True)
    with pytest.raises(ValidationError, match="bounds"):
        compare_paired([0.5], [1.0], pass_fail=False, bounds=(1, 1))


# ---------------------------------------------------------------------------------------------
# Degenerate inputs
# ---------------------------------------------------------------------------------------------


def test_no_rows_and_no_differences_give_a_quiet_result():
    for pass_fail in (True, False):
        empty = compare_paired([], [], pass_fail=pass_fail)
        assert (empty.n, empty.diff, empty.ci_low, empty.ci_high, empty.p_value) == (0, 0.0, 0.0, 0.0, 1.0)
        assert empty.mean_a is None and empty.sd_diff is None
        same = compare_paired([1, 0, 1, 1], [1, 0, 1, 1], pass_fail=pass_fail)
        assert (same.diff, same.ci_low, same.ci_high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
        assert verdict(same.ci_low, same.ci_high, margin=0.02) == "not worse"
    flat = compare_paired([0.2, 0.5, 0.9], [0.2, 0.5, 0.9], pass_fail=False)
    assert (flat.ci_low, flat.ci_high, flat.p_value) == (0.0, 0.0, 1.0)


def test_one_row_cannot_tell_and_missing_values_are_left_out():
    one = compare_paired([0.2], [0.6], pass_fail=False)
    assert one.n == 1 and one.p_value == 1.0 and one.ci_low == -math.inf and one.ci_high == math.inf
    assert verdict(one.ci_low, one.ci_high, margin=0.02) == "inconclusive"
    assert one.to_dict()["ci_low"] is None  # JSON has no infinity
    gaps = compare_paired([1, None, 0, float("nan")], [0, 1, 1, 1], pass_fail=True)
    assert gaps.n == 2 and (gaps.a_only, gaps.b_only) == (1, 1)


def test_bad_input_is_a_validation_error():
    with pytest.raises(ValidationError):
        compare_paired([1, 0], [1], pass_fail=True)
    with pytest.raises(ValidationError) as exc:
        compare_paired([1], [1], pass_fail=True, alpha=1.5)
    assert exc.value.field == "alpha"


def test_to_dict_is_json_ready():
    result = compare_paired(*rows_from_counts(3, 1, 5, 2), pass_fail=True)
    data = result.to_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["test"] == MCNEMAR and data["a_only"] == 1 and data["b_only"] == 5


# ---------------------------------------------------------------------------------------------
# Holm, verdicts, words
# ---------------------------------------------------------------------------------------------


def test_holm_by_hand():
    # Sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> 0.06 monotone).
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.02]) == pytest.approx([0.02])
    assert holm([]) == []
    assert holm([float("nan"), 0.01]) == pytest.approx([1.0, 0.02])


def test_with_holm_sets_adjusted_p_only_for_several():
    one = compare_paired(*rows_from_counts(3, 0, 6, 1), pass_fail=True)
    assert with_holm([one])[0].p_adjusted is None
    two = with_holm([one, one])
    assert [r.p_adjusted for r in two] == pytest.approx([2 * one.p_value] * 2)
    assert two[0].p == two[0].p_adjusted


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [
        (0.01, 0.2, "better"),
        (0.0, 0.2, "not worse"),  # lo = 0 is not above 0
        (-0.02, 0.1, "not worse"),  # exactly at the margin
        (-0.015, -0.005, "not worse"),  # below zero but within the margin: the first rule that holds
        (-0.3, -0.1, "worse"),
        (-0.1, 0.1, "inconclusive"),
        (float("nan"), 0.1, "inconclusive"),
    ],
)
def test_verdict_is_the_first_rule_that_holds(lo, hi, expected):
    assert verdict(lo, hi, margin=0.02) == expected


def test_verdict_rejects_a_negative_margin():
    with pytest.raises(ValidationError) as exc:
        verdict(0.0, 0.1, margin=-0.01)
    assert exc.value.field == "margin"


def _result(diff: float, lo: float, hi: float, p: float, **kw) -> PairedResult:
    return PairedResult(
        n=50, mean_a=0.5, mean_b=0.5 + diff, diff=diff, ci_low=lo, ci_high=hi, p_value=p, test=MCNEMAR,
        interval="Tango score", **kw,
    )  # fmt: skip


def test_significance_word():
    assert significance_word(_result(0.2, 0.05, 0.35, 0.001)) == "better"
    assert significance_word(_result(-0.2, -0.35, -0.05, 0.001)) == "worse"
    assert significance_word(_result(0.2, -0.01, 0.35, 0.04)) == "no detectable difference"  # interval
    assert significance_word(_result(0.2, 0.01, 0.35, 0.06)) == "no detectable difference"  # p
    adjusted = _result(0.2, 0.05, 0.35, 0.02, p_adjusted=0.08)
    assert significance_word(adjusted) == "no detectable difference"  # Holm decides
    assert significance_word(adjusted, alpha=0.1) == "better"
    assert significance_word(_result(0.2, 0.05, 0.35, 0.001), higher_is_better=False) == "worse"
    assert significance_word(_result(0.2, 0.05, 0.35, 0.001), higher_is_better=None) == "higher"


def test_a_verdict_never_contradicts_its_p_value():
    # 4 of 4 rows fixed: Tango's interval clears 0, the exact McNemar test cannot (p = 0.125).
    fixed = compare_paired([0, 0, 0, 0], [1, 1, 1, 1], pass_fail=True)
    assert fixed.ci_low > 0 and fixed.p_value == pytest.approx(0.125)
    assert verdict(fixed.ci_low, fixed.ci_high, margin=0.0) == "better"  # the interval alone
    assert verdict(fixed.ci_low, fixed.ci_high, margin=0.0, p_value=fixed.p_value) == "not worse"
    broken = compare_paired([1, 1, 1, 1], [0, 0, 0, 0], pass_fail=True)
    assert verdict(broken.ci_low, broken.ci_high, margin=0.02, p_value=broken.p_value) == "inconclusive"
    clear = compare_paired([0] * 12, [1] * 12, pass_fail=True)
    assert verdict(clear.ci_low, clear.ci_high, margin=0.0, p_value=clear.p_value) == "better"
