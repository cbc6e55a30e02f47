"""Rankings from blind pairwise A/B votes: Bradley-Terry scores with bootstrap intervals (Chatbot Arena).

Works on plain `Vote` records (or mappings with the same keys) so a UI page and the CLI share it; it
imports no UI or LLM library. Scores are on the Elo scale: a 400-point gap means 10:1 odds of winning.

Conventions shared by every function here:
- "tie" and "both_bad" are both ties for ranking (neither output was preferred); a tie counts half
  a win to each side.
- Auto votes (a tie recorded without a human because the two outputs were identical) are real
  evidence of equal quality, so they count as ties in the statistics; position_bias and
  rater_agreement leave them out because no human looked at the sides.
- Entries are ordered by name wherever no other order is asked for, so results are reproducible.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit

from workbench.errors import ValidationError, WorkbenchError

VERDICTS = ("a", "b", "tie", "both_bad")


TIE_VERDICTS = frozenset({"tie", "both_bad"})


# Precision (1/variance) of a zero-mean Gaussian prior on the natural-log strengths. It is tiny:
# sd = 1/sqrt(1e-3) ~ 32 log-odds units ~ 5,500 Elo points, so it moves real fits by far less than
# their sampling error. It exists because without it an entry that never loses has a maximum
# likelihood strength of +infinity; with it that entry gets a large but finite score.
PRIOR_PRECISION = 1e-3


LEADERBOARD_COLUMNS = [
    "entry",
    "score",
    "ci_low",
    "ci_high",
    "rank",
    "votes",
    "wins",
    "losses",
    "ties",
    "win_rate",
    "elo",
]


PAIR_TABLE_COLUMNS = ["entry_a", "entry_b", "wins_a", "wins_b", "ties", "n", "win_rate_a"]


class RankingInputError(ValidationError, ValueError):
    """A vote or parameter the ranking cannot use, e.g. a vote of an entry against itself."""


@dataclass(frozen=True)
class Vote:
    """One pairwise vote between two entries (runs of the same row, or models)."""

    a: str  # entry key of run A as stored, e.g. "sentiment@2" or a model id
    b: str
    verdict: str  # "a" | "b" | "tie" | "both_bad"
    left_is_a: bool = True  # whether A was shown on the left (for position bias)
    rater: str = ""
    pair_id: str = ""  # identifies the compared item pair (e.g. "run12-run40") for rater agreement
    auto: bool = False  # auto-marked tie for identical outputs

    def __post_init__(self) -> None:
        # Validate at construction so a bad row fails where it is read, with a typed error.
        if not isinstance(self.a, str) or not isinstance(self.b, str) or not self.a or not self.b:
            raise RankingInputError(
                f"A vote needs two non-empty entry names, got a={self.a!r}, b={self.b!r}."
            )
        if self.a == self.b:
            raise RankingInputError(
                f"A vote compares an entry with itself ({self.a!r}); "
                "a pairwise vote needs two different entries."
            )
        if self.verdict not in VERDICTS:
            raise RankingInputError(
                f"Unknown verdict {self.verdict!r} for {self.a!r} vs {self.b!r}; "
                f"use one of {', '.join(VERDICTS)}."
            )

    @property
    def score_a(self) -> float:
        """A's share of this vote: 1 for a win, 0 for a loss, 0.5 for any kind of tie."""
        return 1.0 if self.verdict == "a" else 0.0 if self.verdict == "b" else 0.5


def as_votes(votes: Iterable[Vote | Mapping[str, Any]]) -> list[Vote]:
    """Turn votes or mappings with Vote's field names into a validated list of Vote."""
    out: list[Vote] = []
    for i, v in enumerate(votes):
        if isinstance(v, Vote):
            out.append(v)
        elif isinstance(v, Mapping):
            try:
                out.append(Vote(**v))
            except TypeError as exc:  # missing or unknown keys
                raise RankingInputError(f"Vote {i + 1} cannot be read: {exc}.") from None
        else:
            raise RankingInputError(f"Vote {i + 1} is a {type(v).__name__}, expected a Vote or a mapping.")
    return out


def _entries(votes: list[Vote], extra: Iterable[str] | None = None) -> list[str]:
    names = {v.a for v in votes} | {v.b for v in votes}
    names.update(extra or ())
    return sorted(names)


def pair_table(votes: Iterable[Vote | Mapping[str, Any]]) -> pd.DataFrame:
    """Wins, losses and ties per compared pair, with entry_a < entry_b by name."""
    vs = as_votes(votes)
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for v in vs:
        # Store each pair once, in name order, so (x, y) and (y, x) votes add up.
        first, second = sorted((v.a, v.b))
        c = counts[(first, second)]
        if v.verdict in TIE_VERDICTS:
            c[2] += 1
        elif (v.verdict == "a") == (v.a == first):
            c[0] += 1
        else:
            c[1] += 1
    rows = []
    for (first, second), (wa, wb, t) in sorted(counts.items()):
        n = wa + wb + t
        rows.append((first, second, wa, wb, t, n, (wa + 0.5 * t) / n))
    df = pd.DataFrame(rows, columns=PAIR_TABLE_COLUMNS)
    return df.astype(
        {"wins_a": "int64", "wins_b": "int64", "ties": "int64", "n": "int64", "win_rate_a": "float64"}
    )


def win_matrix(votes: Iterable[Vote | Mapping[str, Any]]) -> pd.DataFrame:
    """Square table of wins of the row entry over the column entry; a tie adds 0.5 to both cells."""
    vs = as_votes(votes)
    names = _entries(vs)
    index = {name: k for k, name in enumerate(names)}
    # Accumulate in numpy: item assignment through DataFrame.loc costs tens of microseconds a vote.
    mat = np.zeros((len(names), len(names)))
    for v in vs:
        ia, ib = index[v.a], index[v.b]
        mat[ia, ib] += v.score_a
        mat[ib, ia] += 1.0 - v.score_a
    return pd.DataFrame(mat, index=pd.Index(names, name="entry"), columns=pd.Index(names, name="opponent"))


def _entry_counts(votes: list[Vote], names: list[str]) -> dict[str, list[int]]:
    """Per entry: [votes, wins, losses, ties]."""
    counts = {name: [0, 0, 0, 0] for name in names}
    for v in votes:
        ca, cb = counts[v.a], counts[v.b]
        ca[0] += 1
        cb[0] += 1
        if v.verdict == "a":
            ca[1] += 1
            cb[2] += 1
        elif v.verdict == "b":
            cb[1] += 1
            ca[2] += 1
        else:
            ca[3] += 1
            cb[3] += 1
    return counts


@dataclass(frozen=True)
class _Design:
    """Votes reduced to per-pair outcome categories, so fits and resamples are array operations."""

    names: list[str]
    pair_i: np.ndarray  # first entry index of each pair present in the votes
    pair_j: np.ndarray  # second entry index (pair_i < pair_j)
    category: np.ndarray  # per vote: 3 * pair + (0 first wins | 1 second wins | 2 tie)


def _design(votes: list[Vote], names: list[str]) -> _Design:
    index = {name: k for k, name in enumerate(names)}
    pair_of: dict[tuple[int, int], int] = {}
    category = np.empty(len(votes), dtype=np.int64)
    for n, v in enumerate(votes):
        ia, ib = index[v.a], index[v.b]
        key = (min(ia, ib), max(ia, ib))
        p = pair_of.setdefault(key, len(pair_of))
        if v.verdict in TIE_VERDICTS:
            outcome = 2
        elif (v.verdict == "a") == (ia < ib):
            outcome = 0
        else:
            outcome = 1
        category[n] = 3 * p + outcome
    pairs = np.array(list(pair_of), dtype=np.int64).reshape(-1, 2)
    return _Design(names, pairs[:, 0], pairs[:, 1], category)


def _pair_weights(design: _Design, category: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wins of the first over the second entry and the reverse, per pair; ties add half to each."""
    c = np.bincount(category, minlength=3 * len(design.pair_i)).reshape(-1, 3).astype(float)
    return c[:, 0] + 0.5 * c[:, 2], c[:, 1] + 0.5 * c[:, 2]


def _fit_strengths(
    design: _Design, w_ij: np.ndarray, w_ji: np.ndarray, x0: np.ndarray | None = None
) -> np.ndarray:
    """Maximum a-posteriori natural-log strengths (mean zero) for the given pair weights."""
    m = len(design.names)
    if m == 0:
        return np.zeros(0)
    total = float(w_ij.sum() + w_ji.sum())
    if total == 0.0:
        return np.zeros(m)
    i, j = design.pair_i, design.pair_j
    # Dividing the whole objective by the vote count leaves the minimiser unchanged but keeps the
    # gradient of order one, so the same tolerances suit 10 votes and 100,000 votes.
    scale = 1.0 / total

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        d = theta[i] - theta[j]
        # -log sigmoid(d) = logaddexp(0, -d) stays finite for any d, unlike log(expit(d)).
        value = np.dot(w_ij, np.logaddexp(0.0, -d)) + np.dot(w_ji, np.logaddexp(0.0, d))
        value += 0.5 * PRIOR_PRECISION * np.dot(theta, theta)
        g_d = -w_ij * expit(-d) + w_ji * expit(d)
        grad = np.bincount(i, weights=g_d, minlength=m) - np.bincount(j, weights=g_d, minlength=m)
        grad += PRIOR_PRECISION * theta
        return value * scale, grad * scale

    start = np.zeros(m) if x0 is None else np.asarray(x0, dtype=float)
    res = minimize(
        nll,
        start,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10},
    )
    theta = np.asarray(res.x, dtype=float)
    if not np.all(np.isfinite(theta)):  # cannot happen with the prior; guard the no-NaN promise anyway
        raise WorkbenchError("The Bradley-Terry fit did not converge to finite strengths.")
    # The prior already centres the optimum at mean zero (each vote's gradient sums to zero over
    # entries); subtracting the mean removes the optimiser's residual so the average is exactly base.
    return theta - theta.mean()


def _to_scores(theta: np.ndarray, scale: float, base: float) -> np.ndarray:
    # Natural-log strength -> Elo scale: scale * log10(e**theta) + base.
    return base + scale * theta / math.log(10.0)


def bradley_terry(
    votes: Iterable[Vote | Mapping[str, Any]],
    *,
    scale: float = 400,
    base: float = 1000,
    entries: Iterable[str] | None = None,
) -> dict[str, float]:
    """Bradley-Terry scores on the Elo scale: score_i = base + scale * log10(exp(theta_i)).

    theta are natural-log strengths fitted by maximising the likelihood
    P(i beats j) = 1 / (1 + 10 ** ((score_j - score_i) / scale)) (Chatbot Arena: scale 400,
    base 1000) with L-BFGS-B under a tiny Gaussian prior (PRIOR_PRECISION), which keeps an entry
    that never loses finite and centres the scores so their mean is `base`. Ties and both_bad
    count half a win to each side. `entries` adds names without votes; they score `base`.
    Entries in separate, never-compared groups are each centred on `base` and not comparable.
    """
    vs = as_votes(votes)
    names = _entries(vs, entries)
    design = _design(vs, names)
    theta = _fit_strengths(design, *_pair_weights(design, design.category))
    return dict(zip(names, _to_scores(theta, scale, base).tolist(), strict=True))


def bootstrap_scores(
    votes: Iterable[Vote | Mapping[str, Any]],
    *,
    rounds: int = 200,
    seed: int = 0,
    scale: float = 400,
    base: float = 1000,
    entries: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Bradley-Terry scores refitted on `rounds` resamples of the votes (rows = rounds, cols = entries).

    A cell is NaN when the entry drew no vote in that resample (it has no score there); use
    bootstrap_ci for intervals, which skips those cells.
    """
    if rounds < 1:
        raise RankingInputError(f"rounds must be at least 1, got {rounds}.")
    vs = as_votes(votes)
    names = _entries(vs, entries)
    design = _design(vs, names)
    n, m = len(vs), len(names)
    out = np.full((rounds, m), np.nan)
    if n == 0:
        return pd.DataFrame(out, columns=names)
    full = _fit_strengths(design, *_pair_weights(design, design.category))
    rng = np.random.default_rng(seed)
    for r in range(rounds):
        # Resample whole votes with replacement, as Chatbot Arena does, then reuse the per-pair
        # reduction; warm-starting at the full-data fit saves most optimiser iterations.
        sample = design.category[rng.integers(0, n, size=n)]
        w_ij, w_ji = _pair_weights(design, sample)
        theta = _fit_strengths(design, w_ij, w_ji, x0=full)
        present = np.zeros(m, dtype=bool)
        pair_used = (w_ij + w_ji) > 0
        present[design.pair_i[pair_used]] = True
        present[design.pair_j[pair_used]] = True
        out[r, present] = _to_scores(theta[present], scale, base)
    return pd.DataFrame(out, columns=names)


def bootstrap_ci(
    votes: Iterable[Vote | Mapping[str, Any]],
    *,
    rounds: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
    scale: float = 400,
    base: float = 1000,
    entries: Iterable[str] | None = None,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap (1 - alpha) interval of each Bradley-Terry score over resampled votes.

    Votes are resampled with replacement `rounds` times (see bootstrap_scores). An entry without
    votes gets (base, base): nothing was measured, and its score is base by definition.
    """
    if not 0.0 < alpha < 1.0:
        raise RankingInputError(f"alpha must be between 0 and 1, got {alpha}.")
    samples = bootstrap_scores(votes, rounds=rounds, seed=seed, scale=scale, base=base, entries=entries)
    out: dict[str, tuple[float, float]] = {}
    for name in samples.columns:
        col = samples[name].to_numpy()
        col = col[np.isfinite(col)]
        if col.size == 0:
            out[name] = (float(base), float(base))
            continue
        lo, hi = np.percentile(col, [100 * alpha / 2, 100 * (1 - alpha / 2)])
        out[name] = (float(lo), float(hi))
    return out


def elo(
    votes: Iterable[Vote | Mapping[str, Any]],
    *,
    k: float = 4,
    base: float = 1000,
    scale: float = 400,
    entries: Iterable[str] | None = None,
) -> dict[str, float]:
    """Online Elo in vote order (reference only: it depends on the order; prefer bradley_terry).

    Each vote moves A by k * (S - E) and B by the opposite, with S = 1 / 0 / 0.5 for a win / loss /
    tie and E = 1 / (1 + 10 ** ((R_b - R_a) / scale)); every entry starts at base.
    """
    vs = as_votes(votes)
    ratings = dict.fromkeys(_entries(vs, entries), float(base))
    for v in vs:
        ra, rb = ratings[v.a], ratings[v.b]
        expected_a = 1.0 / (1.0 + 10.0 ** ((rb - ra) / scale))
        delta = k * (v.score_a - expected_a)
        ratings[v.a] = ra + delta
        ratings[v.b] = rb - delta
    return ratings


def ci_rank(ci: Mapping[str, tuple[float, float]]) -> dict[str, int]:
    """Rank 1 + the number of entries whose interval lies entirely above this entry's interval."""
    return {name: 1 + sum(1 for lo2, _ in ci.values() if lo2 > hi) for name, (_, hi) in ci.items()}


def leaderboard(
    votes: Iterable[Vote | Mapping[str, Any]],
    *,
    rounds: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
    scale: float = 400,
    base: float = 1000,
    k: float = 4,
    entries: Iterable[str] | None = None,
) -> pd.DataFrame:
    """One row per entry: Bradley-Terry score, bootstrap interval, CI-aware rank, counts, online Elo.

    Sorted by score (highest first, then by name). rank = 1 + the number of entries whose ci_low is
    above this entry's ci_high, so entries the data cannot separate share a rank. win_rate is
    (wins + ties / 2) / votes, and 0.0 for an entry listed in `entries` that has no votes.
    Ties include both_bad and auto ties. No votes and no entries give an empty frame with the columns.
    """
    vs = as_votes(votes)
    names = _entries(vs, entries)
    if not names:
        return _empty_leaderboard()
    scores = bradley_terry(vs, scale=scale, base=base, entries=names)
    ci = bootstrap_ci(vs, rounds=rounds, seed=seed, alpha=alpha, scale=scale, base=base, entries=names)
    ranks = ci_rank(ci)
    online = elo(vs, k=k, base=base, scale=scale, entries=names)
    counts = _entry_counts(vs, names)
    rows = []
    for name in names:
        n, w, lost, t = counts[name]
        rows.append(
            (
                name,
                scores[name],
                ci[name][0],
                ci[name][1],
                ranks[name],
                n,
                w,
                lost,
                t,
                (w + 0.5 * t) / n if n else 0.0,
                online[name],
            )
        )
    df = pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS)
    df = df.sort_values(["score", "entry"], ascending=[False, True], kind="stable").reset_index(drop=True)
    return df.astype(_LEADERBOARD_DTYPES)


_LEADERBOARD_DTYPES = {
    "entry": "object",
    "score": "float64",
    "ci_low": "float64",
    "ci_high": "float64",
    "rank": "int64",
    "votes": "int64",
    "wins": "int64",
    "losses": "int64",
    "ties": "int64",
    "win_rate": "float64",
    "elo": "float64",
}


def _empty_leaderboard() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _LEADERBOARD_DTYPES.items()})
