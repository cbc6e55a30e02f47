"""Checks on the raters themselves: position bias (Wilson interval) and agreement (Cohen's kappa)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from itertools import combinations
from typing import Any, TypedDict

from scipy.stats import norm

from workbench.rating.ranking import TIE_VERDICTS, VERDICTS, RankingInputError, Vote, as_votes


class PositionBias(TypedDict):
    """Result of position_bias; the float fields are None when there are no decisive human votes."""

    left_share: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    left_wins: int


class RaterAgreement(TypedDict):
    """Result of rater_agreement; see that function for the meaning of each field."""

    items: int
    raters: list[str]
    percent_agreement: float | None
    kappa: float | None
    kappa_note: str | None


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial share; stays inside [0, 1] and is sane at 0 or n successes."""
    if n <= 0:
        raise RankingInputError("A Wilson interval needs at least one trial.")
    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def position_bias(votes: Iterable[Vote | Mapping[str, Any]]) -> PositionBias:
    """Share of decisive human votes won by the LEFT side, with a 95% Wilson interval.

    Ties, both_bad and auto votes are left out: auto ties were recorded without anyone choosing a
    side, and a tie picks no side. Unbiased raters give about 0.5. With no decisive vote, n is 0
    and left_share, ci_low and ci_high are None.
    """
    decisive = [v for v in as_votes(votes) if not v.auto and v.verdict in ("a", "b")]
    n = len(decisive)
    left = sum(1 for v in decisive if (v.verdict == "a") == v.left_is_a)
    if n == 0:
        return PositionBias(left_share=None, ci_low=None, ci_high=None, n=0, left_wins=0)
    lo, hi = wilson_interval(left, n)
    return PositionBias(left_share=left / n, ci_low=lo, ci_high=hi, n=n, left_wins=left)


def _canonical_verdict(v: Vote) -> str:
    """The verdict as if the pair were stored in name order, so raters who saw A/B swapped compare."""
    if v.verdict in TIE_VERDICTS or v.a < v.b:
        return v.verdict
    return "b" if v.verdict == "a" else "a"


def rater_agreement(votes: Iterable[Vote | Mapping[str, Any]]) -> RaterAgreement:
    """Agreement between raters on items (pair_id) that two or more distinct raters voted on.

    Votes without a pair_id or rater, and auto votes, are left out; a rater's last vote on an item
    counts. Verdicts are compared after mapping each to the pair's name order, with all four
    verdicts as categories. percent_agreement (0-100) averages, over items, the share of rater
    pairs that agree. kappa is Cohen's kappa, given only when exactly two raters share >= 5
    items; otherwise it is None and kappa_note says why.
    """
    by_item: dict[str, dict[str, str]] = defaultdict(dict)
    for v in as_votes(votes):
        if v.auto or not v.pair_id or not v.rater:
            continue
        by_item[v.pair_id][v.rater] = _canonical_verdict(v)  # later votes replace earlier ones
    shared = {item: r for item, r in by_item.items() if len(r) >= 2}
    raters = sorted({name for r in shared.values() for name in r})
    if not shared:
        return RaterAgreement(
            items=0,
            raters=[],
            percent_agreement=None,
            kappa=None,
            kappa_note="No item was rated by two or more distinct raters.",
        )
    per_item = []
    for r in shared.values():
        pairs = list(combinations(r.values(), 2))
        per_item.append(sum(1 for x, y in pairs if x == y) / len(pairs))
    percent = 100.0 * sum(per_item) / len(per_item)
    kappa, note = _cohen_kappa(shared, raters)
    return RaterAgreement(
        items=len(shared), raters=raters, percent_agreement=percent, kappa=kappa, kappa_note=note
    )


MIN_KAPPA_ITEMS = 5


def _cohen_kappa(shared: dict[str, dict[str, str]], raters: list[str]) -> tuple[float | None, str | None]:
    if len(raters) != 2:
        return None, (
            f"Cohen's kappa needs exactly two raters on the shared items; {len(raters)} raters overlap."
        )
    r1, r2 = raters
    items = [(r[r1], r[r2]) for r in shared.values()]
    if len(items) < MIN_KAPPA_ITEMS:
        return None, (
            f"Only {len(items)} item(s) rated by both {r1} and {r2}; "
            f"Cohen's kappa needs at least {MIN_KAPPA_ITEMS}."
        )
    n = len(items)
    observed = sum(1 for x, y in items if x == y) / n
    expected = sum(
        (sum(1 for x, _ in items if x == c) / n) * (sum(1 for _, y in items if y == c) / n) for c in VERDICTS
    )
    if expected >= 1.0:  # both raters always used one and the same verdict: kappa is 0/0
        return None, "Both raters gave the same single verdict on every item; Cohen's kappa is undefined."
    return (observed - expected) / (1.0 - expected), None
