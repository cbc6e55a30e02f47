"""How many rows a paired comparison needs to detect a difference (two-sided test, given power).

- Pass/fail metrics: McNemar's sample size from the share of discordant rows (Connor 1987):
  n = (z(1 - alpha/2) * sqrt(psi) + z(power) * sqrt(psi - delta^2))^2 / delta^2, psi the share of
  rows the two columns disagree on. The fewer rows disagree, the fewer rows are needed. Connor's
  formula is for the normal-approximation test; the exact test the workbench runs has a little
  less power there (~0.77 for 0.8 in simulation), so n is then raised until the exact test's
  power (`mcnemar_power`, computed from binomial distributions) reaches the target.
- Continuous metrics (or pass rates averaged over repeats): the normal approximation
  n = ((z(1 - alpha/2) + z(power)) * sd / delta)^2 for the sd of the per-row differences, refined
  with t quantiles at that n (it matters below ~30 rows).

What the data cannot tell, and the assumption made instead:
- psi is taken as at least 2 * delta. A difference of delta needs at least delta of the rows to
  disagree, and psi = delta would mean every disagreement favours one side: the most optimistic
  case, promising far too few rows. So a sweep with no (or very little) observed discordance is
  planned as if twice the sought difference disagreed, which errs towards more rows.
- A continuous sd that is zero or unknown (fewer than two rows, all differences equal) gives None:
  without any spread there is nothing to scale the difference by. For an averaged pass/fail metric
  the pass/fail formula is used instead, from the share of rows whose pass rates differ.
- No rows at all gives None.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from workbench.errors import ValidationError
from workbench.stats.paired import MCNEMAR, PairedResult

DELTA = 0.05  # five points on a 0-1 metric
POWER = 0.8
ALPHA = 0.05


def _check(delta: float, alpha: float, power: float) -> None:
    if not (isinstance(delta, int | float) and 0 < delta < math.inf):
        raise ValidationError(f"The difference to detect must be above 0, got {delta!r}.", field="delta")
    if not (isinstance(alpha, int | float) and 0 < alpha < 1):
        raise ValidationError(f"alpha must be between 0 and 1, got {alpha!r}.", field="alpha")
    if not (isinstance(power, int | float) and 0 < power < 1):
        raise ValidationError(f"The power must be between 0 and 1, got {power!r}.", field="power")


def rows_needed_pass_fail(
    discordance: float, *, delta: float = DELTA, alpha: float = ALPHA, power: float = POWER
) -> int:
    """Rows for McNemar's test to detect p_B - p_A = delta, from the share of discordant rows.

    The share used is max(discordance, 2 * delta), capped at 1 (see the module docstring).
    """
    _check(delta, alpha, power)
    if delta >= 1:
        delta = 1.0
    psi = min(1.0, max(float(discordance) if math.isfinite(discordance) else 0.0, 2 * delta))
    za = float(stats.norm.ppf(1 - alpha / 2))
    zb = float(stats.norm.ppf(power))
    n = (za * math.sqrt(psi) + zb * math.sqrt(max(psi - delta * delta, 0.0))) ** 2 / (delta * delta)
    n = max(2, math.ceil(n - 1e-9))
    # Step up from Connor's n (a normal-test figure) to the exact test's; it is rarely 15% more.
    step = max(1, n // 100)
    for _ in range(100):
        if mcnemar_power(n, psi, delta=delta, alpha=alpha) >= power:
            break
        n += step
    return n


def mcnemar_power(n: int, discordance: float, *, delta: float = DELTA, alpha: float = ALPHA) -> float:
    """Power of the exact two-sided McNemar test on n rows when a share `discordance` of rows
    disagree and p_B - p_A = delta (exact: the discordant count is binomial, and so is B's share).
    """
    if n < 1 or discordance <= 0 or abs(delta) > discordance:
        return 0.0
    d = np.arange(n + 1)
    share_b = (discordance + delta) / (2 * discordance)  # P(B right | the row is discordant)
    # Largest k with 2 * P(X <= k) <= alpha under X ~ Bin(D, 1/2): reject when B <= k or B >= D - k.
    k = stats.binom.ppf(alpha / 2, d, 0.5)
    k = np.where(stats.binom.cdf(k, d, 0.5) > alpha / 2, k - 1, k)
    reject = np.where(k >= 0, stats.binom.cdf(k, d, share_b) + stats.binom.sf(d - k - 1, d, share_b), 0.0)
    return float(np.sum(stats.binom.pmf(d, n, discordance) * np.minimum(reject, 1.0)))


def rows_needed_continuous(
    sd_diff: float | None, *, delta: float = DELTA, alpha: float = ALPHA, power: float = POWER
) -> int | None:
    """Rows for a paired test to detect a mean difference of delta, from the sd of the differences.

    None when the sd is missing, zero or not finite: the data cannot tell.
    """
    _check(delta, alpha, power)
    if sd_diff is None or not math.isfinite(sd_diff) or sd_diff <= 0:
        return None
    ratio = (sd_diff / delta) ** 2
    n = (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) ** 2 * ratio
    # A few fixed-point steps with t quantiles at the current n: the normal formula is a little
    # short when the sd itself has to be estimated from few rows.
    for _ in range(5):
        df = max(n - 1, 1.0)
        n = (stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)) ** 2 * ratio
    return max(2, math.ceil(float(n) - 1e-9))


def rows_needed(
    result: PairedResult, *, delta: float = DELTA, alpha: float | None = None, power: float = POWER
) -> int | None:
    """Rows needed to detect `delta` with the test `result` used, from its observed discordance or sd.

    alpha defaults to the result's. None when the result has no rows, or when a continuous
    comparison shows no spread (see the module docstring).
    """
    alpha = result.alpha if alpha is None else alpha
    _check(delta, alpha, power)
    if result.n == 0:
        return None
    if result.test == MCNEMAR:
        discordance = ((result.a_only or 0) + (result.b_only or 0)) / result.n
        return rows_needed_pass_fail(discordance, delta=delta, alpha=alpha, power=power)
    needed = rows_needed_continuous(result.sd_diff, delta=delta, alpha=alpha, power=power)
    if needed is None and result.a_only is not None:
        differing = ((result.a_only or 0) + (result.b_only or 0)) / result.n
        return rows_needed_pass_fail(differing, delta=delta, alpha=alpha, power=power)
    return needed
