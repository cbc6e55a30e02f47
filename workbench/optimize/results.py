"""After a run: read an optimization, cancel it, and save its proposal as a version.

Saving creates version N+1 of the prompt (source dspy, parent = the input version) and links it
from the Optimization row. A proposal is saved only when the paired test on the held-out rows says
it is better (`decision`), or when the user overrides; either way the row's config "saved" keeps the
lineage record: whether it was an override, and the evidence (the paired comparison). Re-scoring the
saved version with a sweep is `rescore`.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from workbench import present
from workbench.errors import NotFoundError, ValidationError
from workbench.models import Dataset, Optimization, PromptVersion, utcnow
from workbench.optimize.decision import FINISHED, Proposal, describe, held_out, proposal_of
from workbench.prompts import store

__all__ = ["FINISHED", "Proposal", "proposal_of", "save_result"]


def require_optimization(session: Session, optimization_id: int) -> Optimization:
    """The optimization with this id, or NotFoundError."""
    row = session.get(Optimization, optimization_id)
    if row is None:
        raise NotFoundError(f"No optimization with id {optimization_id}.", field="optimization")
    return row


def list_optimizations(session: Session, *, limit: int = 50) -> list[Optimization]:
    """The newest optimizations first."""
    return list(session.exec(select(Optimization).order_by(col(Optimization.id).desc()).limit(limit)))


def request_cancel(session: Session, *, optimization_id: int) -> Optimization:
    """Ask a run to stop (honoured before its next call); a pending run is cancelled at once."""
    row = require_optimization(session, optimization_id)
    if row.status in FINISHED:
        return row
    row.cancel_requested = True
    if row.status == "pending":
        row.status = "cancelled"
        row.finished_at = utcnow()
    session.add(row)
    session.flush()
    return row


def _scores(row: Optimization) -> str:
    return f"{present.score(row.baseline_score)} -> {present.score(row.final_score)}"


def proposed_version(row: Optimization, input_version: PromptVersion) -> PromptVersion | None:
    """An unsaved PromptVersion holding the proposal (for diffs)."""
    prop = proposal_of(row)
    if prop.messages is None:
        return None
    return PromptVersion(
        prompt_id=input_version.prompt_id,
        number=input_version.number + 1,
        messages=prop.messages,
        params=prop.params or input_version.params,
        content_hash="",
        source="dspy",
    )


def diff_text(session: Session, row: Optimization) -> str:
    """A unified diff from the input version to the proposal ('' when there is none)."""
    from workbench.prompts.diff import unified

    base = session.get(PromptVersion, row.input_version_id)
    new = proposed_version(row, base)
    if new is None:
        return ""
    name = store.resolve_name(session, base)
    return unified(base, new, a_name=name, b_name="proposed")


def row_comparison(row: Optimization) -> list[dict[str, Any]]:
    """Validation rows side by side: inputs, expected, baseline and optimized replies and scores."""
    evaluation = (row.program or {}).get("evaluation", {})
    final = {r["example_id"]: r for r in evaluation.get("final", [])}
    out = []
    for b in evaluation.get("baseline", []):
        f = final.get(b["example_id"], {})
        out.append(
            {
                "example_id": b["example_id"],
                "inputs": b["inputs"],
                "expected": b["expected"],
                "baseline_output": b["output"],
                "baseline_score": b["score"],
                "optimized_output": f.get("output"),
                "optimized_score": f.get("score"),
            }
        )
    return out


def _note(row: Optimization, session: Session) -> str:
    base = session.get(PromptVersion, row.input_version_id)
    ds = session.get(Dataset, row.dataset_id) if row.dataset_id else None
    scores = "not scored on the held-out rows"
    paired = held_out(row) if row.final_score is not None else None
    if paired is not None:
        scores = f"held-out {_scores(row)}, paired verdict {paired['verdict']} ({describe(paired)})"
    return (
        f"DSPy {row.optimizer} of {store.resolve_name(session, base)} on "
        f"{ds.name if ds else 'a dataset'} ({row.metric}, {row.task_model}): {scores}. "
        f"Optimization #{row.id}."
    )


def save_result(
    session: Session, *, optimization_id: int, note: str | None = None, override: bool = False
) -> tuple[PromptVersion, bool]:
    """Save the proposal as the prompt's next version (source dspy, parent = input); (version, created).

    Refused (ValidationError, field "override") unless the held-out paired test says "better" or
    `override` is set; with an override the lineage record says so, with the evidence.
    """
    row = require_optimization(session, optimization_id)
    prop = proposal_of(row)
    if not prop.can_save and not prop.can_override:
        raise ValidationError(f"Nothing to save from optimization #{row.id}: {prop.reason}")
    if not prop.can_save and not override:
        raise ValidationError(
            f"Optimization #{row.id} is not saved: {prop.reason} Saving it anyway takes an override, "
            "which the version's lineage records with this evidence.",
            field="override",
        )
    overridden = not prop.can_save
    base = session.get(PromptVersion, row.input_version_id)
    prompt_name = store.resolve_name(session, base).rsplit("@", 1)[0]
    text = note or _note(row, session)
    if overridden:
        word = prop.paired["verdict"] if prop.paired else "not scored"
        text = f"{text} Saved by override: the held-out paired test did not say better ({word})."
    version, created = store.save_version(
        session,
        prompt_name=prompt_name,
        messages=prop.messages,
        params=prop.params or base.params,
        note=text[:4000],
        source="dspy",
        parent_id=base.id,
    )
    row.output_version_id = version.id
    row.config = {**(row.config or {}), "saved": lineage(version, prop, override=overridden)}
    line = f"saved as {store.resolve_name(session, version)}" + (" by override" if overridden else "")
    row.log = "\n".join(x for x in ((row.log or "").rstrip("\n"), line) if x)
    session.add(row)
    session.flush()
    return version, created


def lineage(version: PromptVersion, prop: Proposal, *, override: bool) -> dict[str, Any]:
    """The lineage record of a save: the version, whether it overrode the test, and the evidence."""
    paired = prop.paired
    return {
        "version_id": version.id,
        "override": override,
        "verdict": paired["verdict"] if paired else None,
        "evidence": paired,
        "reason": prop.reason,
        "at": utcnow().isoformat(),
    }


def saved_record(row: Optimization) -> dict[str, Any] | None:
    """The lineage record of the save (None before saving, or for a run saved before records existed)."""
    return (row.config or {}).get("saved")


def summary(session: Session, row: Optimization) -> dict[str, Any]:
    """An optimization as plain JSON-ready data: scores, the held-out paired test, proposal, lineage."""
    prop = proposal_of(row)
    output = session.get(PromptVersion, row.output_version_id) if row.output_version_id else None
    return {
        "id": row.id,
        "status": row.status,
        "optimizer": row.optimizer,
        "metric": row.metric,
        "task_model": row.task_model,
        "prompt_model": row.prompt_model,
        "baseline_score": row.baseline_score,
        "final_score": row.final_score,
        "paired": prop.paired if prop.paired is not None else _held_out_or_none(row),
        "lm_calls": row.lm_calls,
        "call_cap": row.call_cap,
        "cost_usd": row.cost_usd,
        "error": row.error,
        "progress": (row.config or {}).get("progress"),
        "rescore": (row.config or {}).get("rescore"),
        "proposal": {
            "can_save": prop.can_save,
            "can_override": prop.can_override,
            "reason": prop.reason,
            "messages": prop.messages,
        },
        "output_version_id": row.output_version_id,
        "output_version": store.resolve_name(session, output) if output else None,
        "saved": saved_record(row),
        "rows": row_comparison(row),
    }


def _held_out_or_none(row: Optimization) -> dict[str, Any] | None:
    return held_out(row) if row.final_score is not None and row.status in FINISHED else None
