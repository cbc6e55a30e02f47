"""Is the optimizer's proposal better than its input? The paired test on the held-out rows, and what
may be saved.

The validation (held-out) rows are scored twice: by the input version (the baseline pass) and by
the optimized program (the final pass). `compare_held_out` pairs the two by row and runs the same
paired test as Compare and the gate (`workbench.stats.paired`): exact McNemar with Tango's interval
for right/wrong metrics, the sign-flip permutation test with a t interval for the judge's graded
scores. The verdict is the gate's rule with no margin, and the test must agree with it: "better"
only when the whole 95% interval of optimized - input lies above 0 and p <= 0.05 (on few rows
Tango's interval can clear 0 while the exact test cannot: 4 of 4 rows fixed gives p = 0.125, and
that reads "inconclusive"). A raw gain on a few rows is not enough.

`proposal_of` offers a proposal for saving only when that verdict is "better". Any other changed
proposal can still be saved as an override; `results.save_result` then records the override and
this evidence in the lineage (the Optimization row's config "saved", and the version's note).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from workbench import present
from workbench.models import Optimization
from workbench.stats.paired import BETTER, WORSE, compare_paired, verdict
from workbench.stats.power import DELTA, rows_needed

ALPHA = 0.05
FINISHED = ("done", "cancelled", "failed")


def pass_fail_metric(metric_name: str) -> bool:
    """Every optimization metric is right/wrong (0 or 1) except the judge's graded 0-1 score."""
    return metric_name != "judge"


def compare_paired_scores(
    a: dict[Any, float], b: dict[Any, float], *, pass_fail: bool, a_label: str, b_label: str
) -> dict[str, Any] | None:
    """The paired comparison of per-row scores `b` against `a` (rows both have), with its verdict.

    JSON-ready: the PairedResult fields (test, interval method, n, means, diff, ci_low, ci_high,
    p_value, a_only / b_only for right/wrong metrics), plus "verdict" (better, not worse, worse or
    inconclusive at margin 0, with p <= alpha for better or worse: `stats.paired.verdict`) and, when
    neither better nor worse,
    "rows_needed" to tell the observed difference (at least 5 points) at 80% power. None when no
    row has both scores.
    """
    rows = [key for key in a if key in b]
    if not rows:
        return None
    result = compare_paired([a[k] for k in rows], [b[k] for k in rows], pass_fail=pass_fail, alpha=ALPHA)
    result = replace(result, a_label=a_label, b_label=b_label)
    word = verdict(result.ci_low, result.ci_high, margin=0.0, p_value=result.p_value, alpha=ALPHA)
    out = {**result.to_dict(), "verdict": word, "margin": 0.0}
    out.pop("p_adjusted", None)
    if word not in (BETTER, WORSE):  # not decided: say how many rows would decide it
        delta = min(1.0, max(abs(result.diff), DELTA))
        out["rows_needed"] = rows_needed(result, delta=delta)
        out["rows_needed_delta"] = round(delta, 4)
    return out


def compare_held_out(
    baseline_rows: list[dict[str, Any]], final_rows: list[dict[str, Any]] | None, *, pass_fail: bool
) -> dict[str, Any] | None:
    """The optimized program against the input version on the held-out rows (see the module doc)."""
    if not final_rows:
        return None
    a = {r["example_id"]: float(r["score"]) for r in baseline_rows}
    b = {r["example_id"]: float(r["score"]) for r in final_rows}
    return compare_paired_scores(a, b, pass_fail=pass_fail, a_label="input", b_label="optimized")


def held_out(row: Optimization) -> dict[str, Any] | None:
    """The held-out paired comparison of a finished run (stored by the worker; computed for older runs)."""
    program = row.program or {}
    if "paired" in program:
        return program["paired"]
    evaluation = program.get("evaluation") or {}
    metric = ((row.config or {}).get("spec") or {}).get("metric") or {}
    return compare_held_out(
        evaluation.get("baseline") or [],
        evaluation.get("final") or None,
        pass_fail=pass_fail_metric(metric.get("name", "normalized_exact")),
    )


def describe(paired: dict[str, Any] | None, *, a: str = "input", b: str = "optimized") -> str:
    """The comparison in one sentence: test, means, difference with its interval, p, n, discordant rows."""
    if not paired:
        return "no row was scored by both"
    level = f"{1 - paired.get('alpha', ALPHA):.0%}"
    text = (
        f"{paired['test']} test on {paired['n']} rows: {a} {present.score(paired['mean_a'])}, "
        f"{b} {present.score(paired['mean_b'])}, difference {present.number(paired['diff'], '+.3f')} "
        f"({level} interval {present.number(paired['ci_low'], '+.3f')} to "
        f"{present.number(paired['ci_high'], '+.3f')}), p = {present.number(paired['p_value'], '.3g')}"
    )
    if paired.get("a_only") is not None:
        text += f"; only the {a} right on {paired['a_only']} rows, only the {b} on {paired['b_only']}"
    if paired.get("rows_needed"):
        delta = paired["rows_needed_delta"]
        text += f"; about {paired['rows_needed']} rows would tell a difference of {delta:.3g}"
    return text


@dataclass
class Proposal:
    """What a finished optimization proposes, and whether it is offered for saving."""

    messages: list[dict[str, str]] | None
    params: dict[str, Any]
    changed: bool
    improved: bool | None  # the held-out paired verdict is "better" (None: not scored)
    can_save: bool  # offered for saving: better on the held-out rows by the paired test
    reason: str  # why it can or cannot be saved, in words
    can_override: bool = False  # not offered, but a changed proposal the user may save anyway
    paired: dict[str, Any] | None = None  # the held-out comparison (see compare_paired_scores)


def proposal_of(row: Optimization) -> Proposal:
    """The proposed version of an optimization and whether saving it is backed by the held-out test."""
    program = row.program or {}
    messages = program.get("messages")
    changed = bool(program.get("changed"))
    params = program.get("params", {})
    if row.status not in FINISHED:
        return Proposal(messages, {}, changed, None, False, "Still running.")
    if not messages:
        return Proposal(None, {}, False, None, False, "The optimizer learned nothing to propose.")
    if not changed:
        why = "The optimizer proposes no change: the input version stays as it is."
        return Proposal(messages, params, False, None, False, why)
    paired = held_out(row) if row.final_score is not None else None
    if paired is None:
        why = (
            "Not scored on the held-out rows (the run stopped early), so no paired test backs it: "
            "it can be saved only as an override, and the re-scoring sweep then compares it with the input."
        )
        return Proposal(messages, params, True, None, False, why, can_override=True)
    evidence = describe(paired)
    if paired["verdict"] == BETTER:
        why = f"Better on the held-out rows by a paired test ({evidence})."
        return Proposal(messages, params, True, True, True, why, paired=paired)
    if paired["diff"] <= 0:
        why = f"Nothing better found on the held-out rows ({evidence}): the input version stays as it is."
    else:
        why = (
            f"Not shown better: the gain on the held-out rows could be chance ({evidence}; verdict "
            f"{paired['verdict']}): the input version stays as it is."
        )
    return Proposal(messages, params, True, False, False, why, can_override=True, paired=paired)
