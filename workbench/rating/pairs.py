"""Blind pairwise rating of a sweep's outputs: pair selection, votes, and the leaderboard they give.

A *pair* is two done runs of the same dataset row (same example, or the same variables for an
ad-hoc sweep) and the same repeat index, whose *entries* differ on the chosen dimension:

- "version": the prompt version ("sentiment@2"), "model": the model id,
- "temperature": the temperature ("temperature=0.7"), "param": the sweep's grid label,
- "column": the whole column label (version | model | grid), i.e. any two columns.

For a clean comparison the two runs must be equal on every other column component: comparing
versions pairs runs of the same model and grid values, and so on ("column" has no other
component). A vote therefore counts for every dimension under which its pair is a clean
comparison: in a sweep where only the model varies, a vote cast under "model" is also a "column"
vote. Rating.dimension records where the vote was cast.

Runs are stored canonically (run A = the lower run id); `left_run_id` records which one the rater
saw on the left, so the verdict a | b never depends on the screen side. Two runs whose outputs are
identical (after stripping whitespace) are recorded once as an automatic tie (rater "auto") and
never shown to anyone.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sqlmodel import Session, col, select

from workbench.errors import ValidationError
from workbench.models import Example, Rating, Run, Sweep
from workbench.rating import ranking
from workbench.rating.entries import (
    _Candidate,
    _candidates,
    _check_dimension,
    _comparable,
    _done_runs,
    entry_key,
)

SIDES = ("left", "right", "tie", "both_bad")


AUTO_RATER = "auto"


MAX_RATER = 200


MAX_COMMENT = 4000


class DuplicateVoteError(ValidationError):
    """The rater already voted on this pair; each rater judges a pair once."""


@dataclass(frozen=True)
class Pair:
    """Two runs to compare: A is the lower run id; `left_run_id` says which one is shown left."""

    sweep_id: int
    dimension: str
    run_a_id: int
    run_b_id: int
    left_run_id: int
    entry_a: str = ""
    entry_b: str = ""

    @property
    def pair_id(self) -> str:
        return f"{self.run_a_id}-{self.run_b_id}"

    @property
    def right_run_id(self) -> int:
        return self.run_b_id if self.left_run_id == self.run_a_id else self.run_a_id

    @property
    def left_entry(self) -> str:
        return self.entry_a if self.left_run_id == self.run_a_id else self.entry_b

    @property
    def right_entry(self) -> str:
        return self.entry_b if self.left_run_id == self.run_a_id else self.entry_a

    def to_dict(self) -> dict[str, Any]:
        """Plain ids and labels, for st.session_state or JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Pair:
        """The inverse of to_dict."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def candidate_pairs(session: Session, *, sweep_id: int, by: str) -> list[Pair]:
    """Every pair of done runs of one row and repeat that differ on `by` and agree on the rest.

    Pairs come with A = the lower run id shown on the left; next_pair decides the real sides.
    """
    _check_dimension(by)
    return [
        Pair(sweep_id, by, c.a.id, c.b.id, c.a.id, c.entry_a, c.entry_b)
        for c in _candidates(_done_runs(session, sweep_id), by)
    ]


def rateable_sweeps(session: Session, *, limit: int = 50) -> list[tuple[int, str]]:
    """(id, label) of recent sweeps with two or more columns, newest first."""
    sweeps = session.exec(select(Sweep).order_by(col(Sweep.id).desc()).limit(limit)).all()
    out = []
    for sw in sweeps:
        plan = sw.config.get("plan") or {}
        columns = (
            len(plan.get("versions") or [])
            * len(plan.get("models") or [])
            * max(1, len(plan.get("param_combos") or []))
        )
        if columns >= 2:
            out.append((sw.id, f"#{sw.id} {sw.name} ({sw.status})"))
    return out


def _ratings(session: Session, sweep_id: int) -> list[Rating]:
    return list(session.exec(select(Rating).where(Rating.sweep_id == sweep_id).order_by(col(Rating.id))))


def mark_identical_ties(session: Session, *, sweep_id: int, by: str) -> int:
    """Record an automatic tie for every candidate pair with identical outputs; returns how many are new."""
    _check_dimension(by)
    known = {f"{r.run_a_id}-{r.run_b_id}" for r in _ratings(session, sweep_id) if r.auto}
    added = 0
    for c in _candidates(_done_runs(session, sweep_id), by):
        if c.identical and c.pair_id not in known:
            session.add(
                Rating(
                    sweep_id=sweep_id,
                    run_a_id=c.a.id,
                    run_b_id=c.b.id,
                    left_run_id=c.a.id,
                    verdict="tie",
                    dimension=by,
                    rater=AUTO_RATER,
                    auto=True,
                )
            )
            known.add(c.pair_id)
            added += 1
    if added:
        session.flush()
    return added


def next_pair(
    session: Session,
    *,
    sweep_id: int,
    by: str,
    rater: str,
    rng: random.Random | None = None,
    exclude: Iterable[str] = (),
) -> Pair | None:
    """The next pair for this rater, or None when there is nothing left to rate.

    Balanced: pairs with the fewest human votes first, then the entry pair with the fewest votes,
    at random among equals; never a pair this rater voted on or one in `exclude` (pair ids the
    rater skipped). The side shown left is the one shown left less often on this pair so far,
    at random when even. Identical outputs are recorded as automatic ties first and never returned.
    """
    rater = _check_rater(rater)
    rng = rng or random.Random()
    mark_identical_ties(session, sweep_id=sweep_id, by=by)
    cands = [c for c in _candidates(_done_runs(session, sweep_id), by) if not c.identical]
    skip = set(exclude)
    pair_votes: Counter[str] = Counter()
    entry_votes: Counter[tuple[str, str]] = Counter()
    left_a: Counter[str] = Counter()
    left_b: Counter[str] = Counter()
    mine: set[str] = set()
    by_pid = {c.pair_id: c for c in cands}
    for r in _ratings(session, sweep_id):
        if r.auto:
            continue
        pid = f"{r.run_a_id}-{r.run_b_id}"
        pair_votes[pid] += 1
        (left_a if r.left_run_id == r.run_a_id else left_b)[pid] += 1
        if r.rater == rater:
            mine.add(pid)
        if pid in by_pid:
            c = by_pid[pid]
            entry_votes[tuple(sorted((c.entry_a, c.entry_b)))] += 1
    eligible = [c for c in cands if c.pair_id not in mine and c.pair_id not in skip]
    if not eligible:
        return None

    def priority(c: _Candidate) -> tuple[int, int]:
        return pair_votes[c.pair_id], entry_votes[tuple(sorted((c.entry_a, c.entry_b)))]

    best = min(priority(c) for c in eligible)
    choice = rng.choice([c for c in eligible if priority(c) == best])
    la, lb = left_a[choice.pair_id], left_b[choice.pair_id]
    left = choice.a.id if la < lb else choice.b.id if lb < la else rng.choice((choice.a.id, choice.b.id))
    return Pair(sweep_id, by, choice.a.id, choice.b.id, left, choice.entry_a, choice.entry_b)


def _check_rater(rater: str) -> str:
    name = (rater or "").strip()
    if not name:
        raise ValidationError("Enter your name before rating, so your votes can be told apart.")
    if name == AUTO_RATER:
        raise ValidationError(f"'{AUTO_RATER}' is reserved for automatic ties; choose another name.")
    if len(name) > MAX_RATER:
        raise ValidationError(f"A rater name can have at most {MAX_RATER} characters.")
    return name


def record_vote(
    session: Session, *, pair: Pair | Mapping[str, Any], verdict_side: str, rater: str, comment: str = ""
) -> Rating:
    """Store one vote: the side the rater preferred ("left" | "right"), "tie" or "both_bad".

    The side is turned into a | b through the pair's left_run_id. Raises DuplicateVoteError when
    this rater already voted on the pair, ValidationError for anything else that does not fit.
    """
    p = pair if isinstance(pair, Pair) else Pair.from_dict(pair)
    rater = _check_rater(rater)
    if verdict_side not in SIDES:
        raise ValidationError(f"Unknown verdict {verdict_side!r}; use one of {', '.join(SIDES)}.")
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT:
        raise ValidationError(f"The comment has {len(comment)} characters; the limit is {MAX_COMMENT}.")
    a_id, b_id = sorted((p.run_a_id, p.run_b_id))
    if a_id == b_id or p.left_run_id not in (a_id, b_id):
        raise ValidationError("A vote needs two different runs, one of them shown on the left.")
    run_a, run_b = session.get(Run, a_id), session.get(Run, b_id)
    for run in (run_a, run_b):
        if run is None or run.sweep_id != p.sweep_id or run.status != "done":
            raise ValidationError(
                f"Run {a_id if run is run_a else b_id} is not a done run of sweep {p.sweep_id}."
            )
    same_row = (run_a.example_id, run_a.variables if run_a.example_id is None else None) == (
        run_b.example_id,
        run_b.variables if run_b.example_id is None else None,
    )
    if not same_row:
        raise ValidationError("Runs of different rows cannot be compared.")
    dup = session.exec(
        select(Rating.id).where(Rating.run_a_id == a_id, Rating.run_b_id == b_id, Rating.rater == rater)
    ).first()
    if dup is not None:
        raise DuplicateVoteError(f"{rater} already rated this pair; it counts once.")
    if verdict_side in ("left", "right"):
        a_won = (verdict_side == "left") == (p.left_run_id == a_id)
        verdict = "a" if a_won else "b"
    else:
        verdict = verdict_side
    rating = Rating(
        sweep_id=p.sweep_id,
        run_a_id=a_id,
        run_b_id=b_id,
        left_run_id=p.left_run_id,
        verdict=verdict,
        dimension=p.dimension,
        rater=rater,
        comment=comment,
    )
    session.add(rating)
    session.flush()
    return rating


@dataclass(frozen=True)
class Card:
    """What a rater sees for one pair: the shared input and the two outputs by side."""

    variables: dict[str, Any]
    expected: str | None
    left_output: str
    right_output: str
    left_finish: str | None
    right_finish: str | None


def card_for(session: Session, pair: Pair) -> Card:
    """The shared input (variables, expected answer) and both outputs of a pair, by screen side."""
    left, right = session.get(Run, pair.left_run_id), session.get(Run, pair.right_run_id)
    if left is None or right is None:
        raise ValidationError("This pair's runs no longer exist; pick the next pair.")
    example = session.get(Example, left.example_id) if left.example_id is not None else None
    return Card(
        variables=dict(example.inputs if example else left.variables or {}),
        expected=example.expected if example else None,
        left_output=left.output or "",
        right_output=right.output or "",
        left_finish=left.finish_reason,
        right_finish=right.finish_reason,
    )


def load_votes(session: Session, *, sweep_id: int, by: str) -> list[ranking.Vote]:
    """The sweep's votes that are clean comparisons along `by`, as ranking.Vote (entries as names).

    Automatic ties count once per pair even if recorded twice (two raters racing). len_a / len_b
    are the two outputs' lengths in characters (for the ranking's length control).
    """
    _check_dimension(by)
    runs = _done_runs(session, sweep_id)
    votes: list[ranking.Vote] = []
    autos: set[str] = set()
    for r in _ratings(session, sweep_id):
        a, b = runs.get(r.run_a_id), runs.get(r.run_b_id)
        if a is None or b is None or not _comparable(a, b, by):
            continue
        pid = f"{r.run_a_id}-{r.run_b_id}"
        if r.auto:
            if pid in autos:
                continue
            autos.add(pid)
        votes.append(
            ranking.Vote(
                a=entry_key(a, by),
                b=entry_key(b, by),
                verdict=r.verdict,
                left_is_a=r.left_run_id == r.run_a_id,
                rater=r.rater,
                pair_id=pid,
                auto=r.auto,
                len_a=len(a.shown),
                len_b=len(b.shown),
            )
        )
    return votes
