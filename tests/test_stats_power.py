"""Tests of workbench.stats.power: rows needed, checked against simulated power at the returned n."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from workbench.errors import ValidationError
from workbench.stats import power
from workbench.stats.paired import compare_paired, t_interval

Z975, Z80 = stats.norm.ppf(0.975), stats.norm.ppf(0.8)


def simulated_mcnemar_power(n: int, discordance: float, delta: float, seed: int) -> float:
    """Share of 20,000 simulated sweeps where the exact McNemar test rejects at 0.05."""
    p01, p10 = (discordance + delta) / 2, (discordance - delta) / 2
    tables = np.random.default_rng(seed).multinomial(n, [0.5 - p10, p10, p01, 0.5 - p01], size=20_000)
    uniq, inverse = np.unique(tables[:, 1:3], axis=0, return_inverse=True)
    p = np.array([stats.binomtest(int(b), int(a + b), 0.5).pvalue if a + b else 1.0 for a, b in uniq])
    return float(np.mean(p[inverse.reshape(-1)] <= 0.05))


def test_pass_fail_starts_from_connor_and_reaches_the_exact_tests_power():
    psi, delta = 0.3, 0.1
    connor = (Z975 * math.sqrt(psi) + Z80 * math.sqrt(psi - delta**2)) ** 2 / delta**2  # 233.4
    n = power.rows_needed_pass_fail(psi, delta=delta)
    assert math.ceil(connor) <= n <= 1.15 * connor
    assert power.mcnemar_power(n, psi, delta=delta) >= 0.8
    assert power.mcnemar_power(math.ceil(connor), psi, delta=delta) < 0.8  # the exact test is weaker
    # Measured: 0.806 simulated at n = 250 (the normal formula's n = 234 gives 0.774).
    assert 0.77 <= simulated_mcnemar_power(n, psi, delta, seed=1) <= 0.84


def test_mcnemar_power_matches_simulation():
    assert power.mcnemar_power(120, 0.25, delta=0.1) == pytest.approx(
        simulated_mcnemar_power(120, 0.25, 0.1, seed=2), abs=0.015
    )
    assert power.mcnemar_power(50, 0.0, delta=0.05) == 0.0


def test_continuous_rows_reach_the_power_in_simulation():
    sd, delta = 0.2, 0.05
    n = power.rows_needed_continuous(sd, delta=delta)
    assert n == pytest.approx(((Z975 + Z80) * sd / delta) ** 2, rel=0.03)  # ~126 rows, t-refined
    d = np.random.default_rng(3).normal(delta, sd, size=(3000, n))
    rejected = np.mean([lo > 0 or hi < 0 for lo, hi in (t_interval(row) for row in d)])
    # Measured: 0.814 at n = 128 (3,000 simulated sweeps).
    assert 0.76 <= rejected <= 0.84


def test_little_discordance_falls_back_to_twice_the_difference():
    floor = power.rows_needed_pass_fail(0.1, delta=0.05)
    assert power.rows_needed_pass_fail(0.0, delta=0.05) == floor
    assert power.rows_needed_pass_fail(0.04, delta=0.05) == floor
    assert power.rows_needed_pass_fail(0.3, delta=0.05) > floor  # more disagreement, more rows


def test_rows_needed_from_a_result():
    a = [1] * 30 + [1] * 4 + [0] * 6 + [0] * 10
    b = [1] * 30 + [0] * 4 + [1] * 6 + [0] * 10
    mcnemar = compare_paired(a, b, pass_fail=True)
    assert power.rows_needed(mcnemar) == power.rows_needed_pass_fail(10 / 50)
    assert power.rows_needed(mcnemar, delta=0.1) < power.rows_needed(mcnemar)

    rng = np.random.default_rng(4)
    x = rng.random(40)
    continuous = compare_paired(x, x + rng.normal(0, 0.1, 40), pass_fail=False)
    assert power.rows_needed(continuous) == power.rows_needed_continuous(continuous.sd_diff)

    assert power.rows_needed(compare_paired([], [], pass_fail=True)) is None
    assert power.rows_needed(compare_paired([0.3, 0.4], [0.3, 0.4], pass_fail=False)) is None  # no spread
    same = compare_paired([1.0, 0.5, 0.0], [1.0, 0.5, 0.0], pass_fail=True)  # averaged, all equal
    assert power.rows_needed(same) == power.rows_needed_pass_fail(0.0)


def test_bad_settings_name_their_field():
    for kwargs, field in (({"delta": 0}, "delta"), ({"alpha": 1.0}, "alpha"), ({"power": 1.2}, "power")):
        with pytest.raises(ValidationError) as exc:
            power.rows_needed_continuous(0.2, **kwargs)
        assert exc.value.field == field
