"""The leaderboard of a sweep's votes beside each entry's automatic scores, cost and latency;
rating progress."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
from sqlmodel import Session

from workbench import metrics
from workbench.rating import agreement, ranking
from workbench.rating.entries import _candidates, _check_dimension, _done_runs, entry_key
from workbench.rating.pairs import _ratings, load_votes
from workbench.sweeps.summary import runs_frame


def _entry_metrics(session: Session, sweep_id: int, by: str) -> pd.DataFrame:
    """Per entry: done runs, mean of each automatic score, total and per-run cost, latency p50."""
    df = runs_frame(session, sweep_id)
    base = ["entry", "runs", "cost_usd", "cost_per_run_usd", "latency_p50_ms"]
    if df.empty:
        return pd.DataFrame(columns=base)
    df = df[df["status"] == "done"].copy()
    if df.empty:
        return pd.DataFrame(columns=base)
    df["entry"] = [entry_key(row, by) for row in df.to_dict("records")]  # iterrows: ~10x slower
    scored = metrics.score_columns(df.columns)
    rows = []
    for entry, g in df.groupby("entry", sort=True):
        row: dict[str, Any] = {"entry": entry, "runs": len(g)}
        for m in scored:
            vals = g[m.column].dropna()
            row[m.mean_column] = float(vals.mean()) if len(vals) else None
        priced = g["cost_usd"].dropna()
        known = len(priced) == len(g)  # one unpriced run makes the total unknown, never a silent $0
        row["cost_usd"] = float(priced.sum()) if known else None
        row["cost_per_run_usd"] = float(priced.sum()) / len(g) if known else None
        lat = g["latency_ms"].dropna()
        row["latency_p50_ms"] = float(lat.quantile(0.5)) if len(lat) else None
        rows.append(row)
    return pd.DataFrame(rows)


def leaderboard_for(
    session: Session,
    *,
    sweep_id: int,
    by: str,
    rounds: int = ranking.DEFAULT_ROUNDS,
    seed: int = 0,
    length_control: bool = False,
) -> pd.DataFrame:
    """ranking.leaderboard of the sweep's votes along `by`, with each entry's automatic scores,
    cost and latency from the sweep on the same row.

    Every entry with a done run is listed (unvoted ones score the base 1000 with 0 votes).
    Columns: ranking.LEADERBOARD_COLUMNS, then runs, each scored metric's `Metric.mean_column`, cost_usd
    (total; NaN when any run is unpriced), cost_per_run_usd, latency_p50_ms. Missing numbers are NaN.
    `length_control` fits with the output length difference as a covariate when the votes allow it;
    `attrs` carries ranking.leaderboard's length_control, length_coef, length_coef_ci and
    length_note (why it was asked for but not applied, e.g. "Not enough votes for length control
    (need 50, have 4 ...)": show that instead of a coefficient).
    """
    votes = load_votes(session, sweep_id=sweep_id, by=by)
    return _leaderboard(session, sweep_id, by, votes, rounds=rounds, seed=seed, length_control=length_control)


def _leaderboard(
    session: Session,
    sweep_id: int,
    by: str,
    votes: list[ranking.Vote],
    *,
    rounds: int,
    seed: int,
    length_control: bool,
) -> pd.DataFrame:
    metrics = _entry_metrics(session, sweep_id, by)
    entries = list(metrics["entry"]) if not metrics.empty else []
    board = ranking.leaderboard(
        votes, rounds=rounds, seed=seed, entries=entries, length_control=length_control
    )
    attrs = dict(board.attrs)  # merge returns a frame without them
    merged = board.merge(metrics, on="entry", how="left")
    for c in merged.columns[len(ranking.LEADERBOARD_COLUMNS) :]:
        merged[c] = pd.to_numeric(merged[c], errors="coerce")
    merged.attrs = attrs
    return merged


@dataclass(frozen=True)
class RatingProgress:
    """How far rating along one dimension has come, overall and for one rater."""

    rater_votes: int  # human votes this rater cast on pairs of this dimension
    total_votes: int  # human votes by anyone
    auto_ties: int  # pairs recorded as ties because both outputs were identical
    pairs_total: int  # pairs a human can rate (identical ones left out)
    pairs_left: int  # of those, pairs this rater has neither voted on nor skipped
    raters: int  # distinct human raters

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def progress_for(
    session: Session, *, sweep_id: int, by: str, rater: str, exclude: Iterable[str] = ()
) -> RatingProgress:
    """Votes cast (by this rater and by all), automatic ties, and pairs left for this rater."""
    _check_dimension(by)
    rater = (rater or "").strip()
    cands = _candidates(_done_runs(session, sweep_id), by)
    pids = {c.pair_id for c in cands}
    rateable = {c.pair_id for c in cands if not c.identical}
    ratings = [r for r in _ratings(session, sweep_id) if f"{r.run_a_id}-{r.run_b_id}" in pids]
    human = [r for r in ratings if not r.auto]
    autos = {f"{r.run_a_id}-{r.run_b_id}" for r in ratings if r.auto}
    mine = {f"{r.run_a_id}-{r.run_b_id}" for r in human if r.rater == rater}
    return RatingProgress(
        rater_votes=len(mine),
        total_votes=len(human),
        auto_ties=len(autos),
        pairs_total=len(rateable),
        pairs_left=len(rateable - mine - set(exclude)),
        raters=len({r.rater for r in human}),
    )


def ranking_report(
    session: Session,
    *,
    sweep_id: int,
    by: str,
    rounds: int = ranking.DEFAULT_ROUNDS,
    seed: int = 0,
    length_control: bool = False,
) -> dict:
    """Everything a ranking view shows: leaderboard, pair table, position bias, rater agreement.

    The leaderboard's attrs say whether length control applied and what length is worth, or why it
    did not apply (see leaderboard_for).
    """
    votes = load_votes(session, sweep_id=sweep_id, by=by)
    board = _leaderboard(
        session, sweep_id, by, votes, rounds=rounds, seed=seed, length_control=length_control
    )
    return {
        "sweep_id": sweep_id,
        "by": by,
        "votes": sum(1 for v in votes if not v.auto),
        "auto_ties": sum(1 for v in votes if v.auto),
        "leaderboard": board,
        "pairs": ranking.pair_table(votes),
        "position_bias": agreement.position_bias(votes),
        "agreement": agreement.rater_agreement(votes),
    }
