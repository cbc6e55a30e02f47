"""Bradley-Terry fits for `ranking`: one design, many weightings (bootstrap rounds) fitted at once.

A design turns votes into *units*, each a row x of a design matrix: +1 for the unit's first entry,
-1 for its second, then covariates; P(first entry wins) = sigmoid(x . params). Without covariates a
unit is a compared pair (votes of one pair differ only in their outcome, so they add up); with a
covariate that varies by vote (the length difference of style control) each vote is its own unit.

A fit, or a bootstrap round, is a set of per-unit weights: W1 (wins of the first entry) and W0 (wins
of the second), a tie adding half to each. All rounds are fitted together by a damped Newton method
on the penalised log-likelihood, so 1,000 rounds cost about as much as a few single fits did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from workbench.errors import WorkbenchError

# Precision (1/variance) of a zero-mean Gaussian prior on every parameter (natural-log strengths and
# covariate coefficients). sd = 1/sqrt(1e-3) ~ 32 log-odds units ~ 5,500 Elo points, so it moves real
# fits by far less than their sampling error. It exists because without it an entry that never loses
# has a maximum likelihood strength of +infinity; with it that entry gets a large but finite score.
PRIOR_PRECISION = 1e-3


# Length control fits one more parameter, and only votes on outputs of different length inform it.
# Below these counts its coefficient is mostly noise. Simulated (3 entries, raters preferring longer
# outputs by 104 Elo points per sd of the length difference, 550 data sets per size): at 10 votes the
# middle half of the fitted coefficients spans -54 to +642 and its 95% interval covers the truth 85%
# of the time; at 30, 92% with a median width of 770 points; at 50, 94-95% (width 460) with the median
# fit within 10% of the truth. With three raters per pair the bootstrap resamples pairs, and with no
# true effect the interval excluded 0 in 9% of data sets at 20 pairs, 6.5% at 30 (200 each).
MIN_LENGTH_VOTES = 50
MIN_LENGTH_ITEMS = 30

_MAX_ITER = 200
_STEP_TOL = 1e-10


@dataclass(frozen=True)
class Design:
    """Votes as units of a logistic model; see the module docstring."""

    names: list[str]  # entries, in parameter order
    x: np.ndarray  # units x (entries + covariates)
    unit_i: np.ndarray  # first entry index of each unit
    unit_j: np.ndarray  # second entry index of each unit
    vote_unit: np.ndarray  # per vote: its unit
    vote_first: np.ndarray  # per vote: the first entry's share of the win (1, 0 or 0.5)
    vote_cluster: np.ndarray  # per vote: its resampling cluster (see `build`)
    covariates: tuple[str, ...] = ()

    @property
    def entries(self) -> int:
        """Number of entries (the first columns of x)."""
        return len(self.names)


def build(
    a: Sequence[int],
    b: Sequence[int],
    score_a: Sequence[float],
    names: list[str],
    *,
    clusters: Sequence[str] = (),
    covariate: np.ndarray | None = None,
    covariate_name: str = "",
) -> Design:
    """A design from per-vote entry indices (a, b), A's share of each vote and optional per-vote keys.

    Votes with the same non-empty cluster key are resampled together (several raters judging one
    item pair are not independent evidence); a vote without a key is its own cluster. `covariate`
    (oriented A minus B) makes every vote its own unit.
    """
    ia, ib = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    share = np.asarray(score_a, dtype=float)
    n, m = len(ia), len(names)
    # Orient every vote by entry index, so (x, y) and (y, x) votes of one pair share a unit.
    flip = ia > ib
    first, second = np.where(flip, ib, ia), np.where(flip, ia, ib)
    vote_first = np.where(flip, 1.0 - share, share)
    if covariate is None:
        keys = first * max(m, 1) + second
        uniq, vote_unit = np.unique(keys, return_inverse=True)
        unit_i, unit_j = uniq // max(m, 1), uniq % max(m, 1)
        extra = np.zeros((len(uniq), 0))
    else:
        vote_unit = np.arange(n)
        unit_i, unit_j = first, second
        extra = np.where(flip, -1.0, 1.0)[:, None] * np.asarray(covariate, dtype=float).reshape(n, 1)
    x = np.zeros((len(unit_i), m))
    rows = np.arange(len(unit_i))
    x[rows, unit_i] = 1.0
    x[rows, unit_j] = -1.0
    index: dict[str, int] = {}
    cluster = np.empty(n, dtype=np.int64)
    for k in range(n):
        key = clusters[k] if k < len(clusters) else ""
        # A fresh id per keyless vote; keyed votes share the id of their key.
        cluster[k] = index.setdefault(key, len(index)) if key else -1
    lone = cluster < 0
    cluster[lone] = len(index) + np.arange(int(lone.sum()))
    return Design(
        names=list(names),
        x=np.hstack([x, extra]),
        unit_i=unit_i,
        unit_j=unit_j,
        vote_unit=vote_unit.reshape(-1),
        vote_first=vote_first,
        vote_cluster=cluster,
        covariates=(covariate_name,) if covariate is not None else (),
    )


def unit_weights(design: Design, vote_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-round unit weights (W1, W0), each rounds x units, from rounds x votes vote weights."""
    vw = np.atleast_2d(np.asarray(vote_weights, dtype=float))
    rounds, units = vw.shape[0], len(design.unit_i)
    # One bincount over all rounds at once: round r's units are offset by r * units.
    flat = (np.arange(rounds)[:, None] * units + design.vote_unit[None, :]).ravel()
    size = rounds * units
    w1 = np.bincount(flat, weights=(vw * design.vote_first).ravel(), minlength=size)
    w0 = np.bincount(flat, weights=(vw * (1.0 - design.vote_first)).ravel(), minlength=size)
    return w1.reshape(rounds, units), w0.reshape(rounds, units)


def resample(design: Design, rounds: int, rng: np.random.Generator) -> np.ndarray:
    """rounds x votes weights: clusters drawn with replacement, each vote weighted by its cluster's draws."""
    n_clusters = int(design.vote_cluster.max()) + 1 if len(design.vote_cluster) else 0
    if n_clusters == 0:
        return np.zeros((rounds, 0))
    draws = rng.integers(0, n_clusters, size=(rounds, n_clusters))
    flat = (np.arange(rounds)[:, None] * n_clusters + draws).ravel()
    counts = np.bincount(flat, minlength=rounds * n_clusters).reshape(rounds, n_clusters)
    return counts[:, design.vote_cluster].astype(float)


def length_covariate(len_a: Sequence[float], len_b: Sequence[float]) -> np.ndarray:
    """Per vote, (len_a - len_b) / (len_a + len_b) divided by its root mean square over the votes.

    Chatbot Arena's style control uses this normalised difference, standardised. It is divided by
    its root mean square rather than centred, because a vote's orientation (which output is A) is
    arbitrary and centring would turn that arbitrary choice into a bias.
    """
    la, lb = np.asarray(len_a, dtype=float), np.asarray(len_b, dtype=float)
    total = la + lb
    x = np.divide(la - lb, total, out=np.zeros_like(total), where=total > 0)
    rms = float(np.sqrt(np.mean(x * x))) if len(x) else 0.0
    return x / rms if rms > 0 else x


def length_note(
    len_a: Sequence[float | None], len_b: Sequence[float | None], items: Sequence[str] = ()
) -> str | None:
    """Why length control cannot be fitted on votes with these output lengths, or None when it can.

    It needs both lengths on every vote, at least MIN_LENGTH_VOTES votes on outputs of different
    length, and those spread over at least MIN_LENGTH_ITEMS rated pairs (`items`: per-vote pair
    keys; votes sharing a key, several raters on one pair, count once, as `resample` draws them
    together; a vote without a key is its own pair).
    """
    missing = sum(1 for a, b in zip(len_a, len_b, strict=True) if a is None or b is None)
    if missing:
        verb = "vote has" if missing == 1 else "votes have"
        return (
            f"Length control needs both output lengths on every vote, and {missing} {verb} none; "
            "the scores are not length-controlled."
        )
    differ = [k for k, (a, b) in enumerate(zip(len_a, len_b, strict=True)) if a != b]
    if len(differ) < MIN_LENGTH_VOTES:
        return (
            f"Not enough votes for length control (need {MIN_LENGTH_VOTES}, have {len(differ)} on "
            "outputs of different length); the scores are not length-controlled."
        )
    pairs = len({(items[k] if k < len(items) else "") or f"vote {k}" for k in differ})
    if pairs < MIN_LENGTH_ITEMS:
        return (
            f"Not enough rated pairs for length control (need {MIN_LENGTH_ITEMS} pairs of outputs of "
            f"different length, have {pairs}); the scores are not length-controlled."
        )
    return None


def _objective(theta: np.ndarray, x: np.ndarray, w1: np.ndarray, w0: np.ndarray) -> np.ndarray:
    logit = theta @ x.T
    # -log sigmoid(-l) = logaddexp(0, l) stays finite for any l, unlike log(expit(l)); and
    # -log sigmoid(l) = logaddexp(0, l) - l, so one logaddexp serves both outcomes.
    value = ((w1 + w0) * np.logaddexp(0.0, logit) - w1 * logit).sum(axis=1)
    return value + 0.5 * PRIOR_PRECISION * (theta * theta).sum(axis=1)


def fit(design: Design, w1: np.ndarray, w0: np.ndarray, x0: np.ndarray | None = None) -> np.ndarray:
    """Penalised maximum-likelihood parameters, one row per weighting (rounds x params).

    Entry strengths (natural log) come first and have mean zero: every unit's gradient sums to zero
    over entries, so the prior's optimum is centred; the residual mean is removed exactly.
    """
    w1, w0 = np.atleast_2d(w1), np.atleast_2d(w0)
    rounds, k = w1.shape[0], design.x.shape[1]
    m = design.entries
    if k == 0:
        return np.zeros((rounds, 0))
    x = design.x
    theta = np.zeros((rounds, k)) if x0 is None else np.array(np.broadcast_to(x0, (rounds, k)), dtype=float)
    eye = PRIOR_PRECISION * np.eye(k)
    value = _objective(theta, x, w1, w0)
    for _ in range(_MAX_ITER):
        p = expit(theta @ x.T)
        grad = (w0 * p - w1 * (1.0 - p)) @ x + PRIOR_PRECISION * theta
        curv = (w1 + w0) * p * (1.0 - p)
        hess = np.einsum("ru,uk,ul->rkl", curv, x, x, optimize=True) + eye
        step = np.linalg.solve(hess, grad[:, :, None])[:, :, 0]
        # Damped Newton: halve the step of any round whose objective would not fall (Armijo rule),
        # which keeps fits of entries that never lose (strengths in the flat tail) from overshooting.
        t = np.ones(rounds)
        decrease = (grad * step).sum(axis=1)
        for _ in range(60):
            cand = theta - t[:, None] * step
            new = _objective(cand, x, w1, w0)
            ok = new <= value - 1e-4 * t * decrease + 1e-12 * np.abs(value)
            if ok.all():
                break
            t = np.where(ok, t, 0.5 * t)
        if not ok.any():
            break  # no round can improve any more: converged to rounding
        moved = np.abs(t[ok, None] * step[ok]).max()
        theta = np.where(ok[:, None], cand, theta)
        value = np.where(ok, new, value)
        if moved < _STEP_TOL:
            break
    if not np.all(np.isfinite(theta)):  # cannot happen with the prior; guard the no-NaN promise anyway
        raise WorkbenchError("The Bradley-Terry fit did not converge to finite strengths.")
    theta[:, :m] -= theta[:, :m].mean(axis=1, keepdims=True)
    return theta


def present(design: Design, w1: np.ndarray, w0: np.ndarray) -> np.ndarray:
    """rounds x entries: whether the entry drew any vote under each weighting."""
    used = ((np.atleast_2d(w1) + np.atleast_2d(w0)) > 0).astype(float)
    return (used @ np.abs(design.x[:, : design.entries])) > 0
