"""How many dataset rows a sweep needs, estimated from a finished sweep: the Run page's figure.

Two columns of the finished sweep are paired row by row (repeats averaged, see `columns`): the
chosen versions' two best columns when that sweep ran at least two of them, else its two best
columns overall, on the first metric with a better direction that both have scores for (pass/fail
metrics first). Their disagreement (McNemar) or the spread of their per-row differences gives,
through `power.rows_needed`, the rows needed to detect a difference of `delta` (5 points) at 80%
power. The best two are the pair a winner is decided between, and columns that close are the
hardest to tell apart, so the figure is the one that matters for picking a winner.

`estimate` works on a runs frame (no database). `finished_sweeps` and `estimate_from_sweeps` read
the database: the sweeps of the same prompts whose status is done, newest first, and the first of
them that has two columns to pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from sqlmodel import Session, col, select

from workbench import metrics
from workbench.errors import WorkbenchError
from workbench.models import PromptVersion, Run, Sweep
from workbench.stats import power
from workbench.stats.columns import compare_columns, row_means
from workbench.stats.paired import MCNEMAR

# The permutation p-value is not used here; a few flips keep the estimate cheap on big sweeps.
_FLIPS = 200


@dataclass(frozen=True)
class RowsEstimate:
    """Rows needed to detect `delta` between two columns, measured on one sweep.

    rows_needed is None when the sweep cannot tell (`reason` says why, in plain words).
    """

    rows_needed: int | None
    sweep_id: int | None = None
    metric: str = ""
    a_label: str = ""  # the two columns paired (best first)
    b_label: str = ""
    rows: int = 0  # rows both columns had scores for
    basis: str = ""  # what the figure rests on, e.g. "3 of 12 rows disagreed"
    differs_by: str = "columns"  # "versions", "models" or "settings": what the two columns differ in
    delta: float = power.DELTA
    power: float = power.POWER
    reason: str = ""

    def sentence(self, rows: int, *, subject: str = "Your dataset has", this_sweep: bool = False) -> str:
        """Plain words: the rows there are against the rows needed, and where the figure comes from.

        e.g. "Your dataset has 12 rows; detecting a 5-point difference between versions needs about
        140 rows (from sweep #3)."
        """
        source = "this sweep" if this_sweep or self.sweep_id is None else f"sweep #{self.sweep_id}"
        have = f"{subject} {rows:,} row{'' if rows == 1 else 's'}"
        if self.rows_needed is None:
            return f"{have}; how many a difference needs cannot be told from {source}: {self.reason}"
        points = f"{self.delta * 100:g}-point"
        text = (
            f"{have}; detecting a {points} difference between {self.differs_by} needs about "
            f"{self.rows_needed:,} rows (from {source})"
        )
        if rows >= self.rows_needed:
            return text + ", so there are enough."
        return text + "."

    def detail(self) -> str:
        """Which columns and metric the figure comes from, and the power it is sized for."""
        if self.rows_needed is None:
            return ""
        return (
            f"Measured on {self.metric}: {self.a_label} vs {self.b_label}, {self.basis}; "
            f"{self.power:.0%} power, two-sided 5% test."
        )


def _candidate_metrics(df: pd.DataFrame, metric: str | None) -> list[metrics.Metric]:
    if metric is not None:
        return [metrics.get(metric)]
    found = [m for m in metrics.score_columns(df.columns) if m.higher_is_better]
    return sorted(found, key=lambda m: not m.pass_fail)  # stable: registry order within each kind


def _what_differs(df: pd.DataFrame, a: str, b: str) -> str:
    """What columns a and b differ in, first of version, model and settings (as a plural noun)."""
    firsts = df.drop_duplicates("column").set_index("column")
    for part, word in (("version", "versions"), ("model", "models"), ("grid", "settings")):
        if part in firsts.columns and firsts.at[a, part] != firsts.at[b, part]:
            return word
    return "columns"


def _pair(df: pd.DataFrame, means: pd.DataFrame, versions: Sequence[str]) -> tuple[str, str] | None:
    """The two best columns (by mean over their rows), among the chosen versions' when there are two."""
    scored = [label for label in means.columns if means[label].notna().any()]
    if versions and "version" in df:
        of = df.drop_duplicates("column").set_index("column")["version"]
        chosen = [label for label in scored if of.get(label) in set(versions)]
        if len(chosen) >= 2:
            scored = chosen
    if len(scored) < 2:
        return None
    ranked = sorted(scored, key=lambda label: -float(means[label].mean()))  # stable on ties
    return ranked[0], ranked[1]


def _basis(result) -> str:
    if result.test == MCNEMAR:
        differ = (result.a_only or 0) + (result.b_only or 0)
        return f"{differ} of {result.n} rows disagreed"
    if result.sd_diff:
        return f"the per-row differences spread by {result.sd_diff:.3f} (sd) over {result.n} rows"
    differ = (result.a_only or 0) + (result.b_only or 0)
    return f"{differ} of {result.n} rows differed"


def estimate(
    df: pd.DataFrame,
    *,
    versions: Sequence[str] = (),
    metric: str | None = None,
    delta: float = power.DELTA,
    target_power: float = power.POWER,
    sweep_id: int | None = None,
) -> RowsEstimate:
    """Rows needed to detect `delta`, from a runs frame (summary.runs_frame) of a finished sweep.

    `versions` ("name@N") are the versions about to be compared: when the sweep has at least two
    columns of them, the best two of those are paired, else the sweep's best two. `metric`
    defaults to the first scored metric with a better direction (pass/fail ones first).
    """
    candidates = _candidate_metrics(df, metric)
    if df.empty or not candidates:
        reason = "it has no scores on a metric with a better side (exact, contains, judge, ...)."
        return RowsEstimate(None, sweep_id, reason=reason)
    for m in candidates:
        means = row_means(df, m)
        pair = _pair(df, means, versions)
        if pair is None:
            continue
        (result,) = compare_columns(df, m, pair[0], [pair[1]], flips=_FLIPS)
        needed = power.rows_needed(result, delta=delta, power=target_power)
        reason = "" if needed is not None else "the two best columns share no rows with scores."
        if needed is None and result.n:
            reason = "the two best columns agree on every row, so there is no spread to go by."
        return RowsEstimate(
            needed,
            sweep_id,
            metric=m.name,
            a_label=pair[0],
            b_label=pair[1],
            rows=result.n,
            basis=_basis(result),
            differs_by=_what_differs(df, *pair),
            delta=delta,
            power=target_power,
            reason=reason,
        )
    return RowsEstimate(None, sweep_id, reason="it has one column with scores, so there is nothing to pair.")


def finished_sweeps(session: Session, version_refs: Sequence[str], *, limit: int = 5) -> list[int]:
    """Ids of done sweeps that ran any version of the prompts `version_refs` name, newest first."""
    from workbench.prompts import store

    prompt_ids = set()
    for ref in version_refs:
        try:
            prompt_ids.add(store.resolve(session, ref).prompt_id)
        except WorkbenchError:
            continue
    if not prompt_ids:
        return []
    stmt = (
        select(Run.sweep_id)
        .join(PromptVersion, PromptVersion.id == Run.version_id)
        .join(Sweep, Sweep.id == Run.sweep_id)
        .where(col(PromptVersion.prompt_id).in_(prompt_ids), Sweep.status == "done")
        .distinct()
        .order_by(col(Run.sweep_id).desc())
        .limit(limit)
    )
    return [int(sweep_id) for sweep_id in session.exec(stmt).all()]


def estimate_from_sweeps(
    session: Session, sweep_ids: Sequence[int], *, versions: Sequence[str] = (), **kwargs
) -> RowsEstimate | None:
    """`estimate` on the first of `sweep_ids` that gives a figure; else the first one's reason.

    None when there is no sweep. kwargs go to `estimate` (metric, delta, target_power).
    """
    from workbench.sweeps.summary import runs_frame

    first = None
    for sweep_id in sweep_ids:
        found = estimate(runs_frame(session, sweep_id), versions=versions, sweep_id=sweep_id, **kwargs)
        if found.rows_needed is not None:
            return found
        first = first or found
    return first
