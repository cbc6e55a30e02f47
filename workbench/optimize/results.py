"""After a run: read an optimization, cancel it, save its proposal as a version, re-score it.

Saving creates version N+1 of the prompt (source = dspy, parent = the input version) and links
it from the Optimization row. Re-scoring runs a normal sweep of the saved version on the
validation rows (kept as a small dataset of their own, so the comparison can be re-run later) and
writes both numbers, DSPy's and the sweep's, to the version's note and the optimization's log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from workbench import datasets, present
from workbench.db import session_scope
from workbench.errors import NotFoundError, ValidationError
from workbench.models import Dataset, Example, Optimization, PromptVersion, Run, Score
from workbench.optimize.metrics import MetricSpec, score
from workbench.optimize.run import plan_of, spec_of
from workbench.prompts import store

FINISHED = ("done", "cancelled", "failed")


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
        from workbench.models import utcnow

        row.status = "cancelled"
        row.finished_at = utcnow()
    session.add(row)
    session.flush()
    return row


@dataclass
class Proposal:
    """What a finished optimization proposes, ready to show."""

    messages: list[dict[str, str]] | None
    params: dict[str, Any]
    changed: bool
    improved: bool | None
    can_save: bool
    reason: str  # why it can or cannot be saved, in words


def proposal_of(row: Optimization) -> Proposal:
    """The proposed version of an optimization and whether saving it makes sense."""
    program = row.program or {}
    messages = program.get("messages")
    changed = bool(program.get("changed"))
    improved = program.get("improved")
    if row.status not in FINISHED:
        return Proposal(messages, {}, changed, improved, False, "Still running.")
    if not messages:
        return Proposal(None, {}, False, None, False, "The optimizer learned nothing to propose.")
    if not changed:
        return Proposal(
            messages,
            program.get("params", {}),
            False,
            improved,
            False,
            "The optimizer proposes no change: the input version stays as it is.",
        )
    if row.final_score is None:
        return Proposal(
            messages,
            program.get("params", {}),
            True,
            None,
            True,
            "Not scored on validation (the run stopped early); saving re-scores it with a sweep.",
        )
    if improved:
        return Proposal(
            messages,
            program.get("params", {}),
            True,
            True,
            True,
            f"Better on validation: {_scores(row)}.",
        )
    return Proposal(
        messages,
        program.get("params", {}),
        True,
        False,
        False,
        f"Nothing better found ({_scores(row)}): the input version stays as it is.",
    )


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
    scores = "not scored on validation" if row.final_score is None else f"validation {_scores(row)}"
    return (
        f"DSPy {row.optimizer} of {store.resolve_name(session, base)} on "
        f"{ds.name if ds else 'a dataset'} ({row.metric}, {row.task_model}): {scores}. "
        f"Optimization #{row.id}."
    )


def save_result(
    session: Session, *, optimization_id: int, note: str | None = None, force: bool = False
) -> tuple[PromptVersion, bool]:
    """Save the proposal as the prompt's next version (source dspy, parent = input); (version, created)."""
    row = require_optimization(session, optimization_id)
    prop = proposal_of(row)
    if not prop.can_save and not (force and prop.changed and prop.messages):
        raise ValidationError(f"Nothing to save from optimization #{row.id}: {prop.reason}")
    base = session.get(PromptVersion, row.input_version_id)
    prompt_name = store.resolve_name(session, base).rsplit("@", 1)[0]
    version, created = store.save_version(
        session,
        prompt_name=prompt_name,
        messages=prop.messages,
        params=prop.params or base.params,
        note=(note or _note(row, session))[:4000],
        source="dspy",
        parent_id=base.id,
    )
    row.output_version_id = version.id
    session.add(row)
    session.flush()
    return version, created


def validation_dataset(session: Session, row: Optimization) -> Dataset:
    """The optimization's validation rows as a dataset of their own (created once)."""
    plan = plan_of(row)
    source = session.get(Dataset, row.dataset_id)
    name = f"{source.name}.val-opt{row.id}"
    existing = datasets.get_dataset(session, name)
    if existing is not None:
        return existing
    by_id = {e.id: e for e in session.exec(select(Example).where(col(Example.id).in_(plan.val_ids)))}
    rows = [{**by_id[i].inputs, "expected": by_id[i].expected} for i in plan.val_ids]
    columns = [*source.columns, "expected"]
    table = datasets.ParsedTable(columns, [{c: r.get(c) for c in columns} for r in rows])
    return datasets.create_dataset(
        session,
        name=name,
        table=table,
        expected_column="expected",
        description=f"Validation rows of optimization #{row.id} (re-scoring).",
    )


@dataclass
class Rescore:
    """A sweep's score of the saved version next to DSPy's."""

    sweep_id: int
    sweep_score: float | None
    dspy_score: float | None
    rows: int
    differing_outputs: int
    failed: int
    explanation: str


def rescore(optimization_id: int) -> Rescore:
    """Run a normal sweep of the saved version on the validation rows; record both scores."""
    from workbench.sweeps.execute import execute_sweep
    from workbench.sweeps.plan import SweepSpec, create_sweep

    with session_scope() as s:
        row = require_optimization(s, optimization_id)
        if row.output_version_id is None:
            raise ValidationError(f"Optimization #{row.id} has no saved version yet; save it first.")
        metric = MetricSpec.from_dict(spec_of(row).metric)
        version = s.get(PromptVersion, row.output_version_id)
        ref = store.resolve_name(s, version)
        ds = validation_dataset(s, row)
        from workbench.providers import catalog

        local = catalog.get_model(row.task_model).kind == "local"
        sweep, _ = create_sweep(
            s,
            SweepSpec(
                prompts=[ref],
                models=[row.task_model],
                dataset=ds.name,
                scoring=metric.scoring_config().to_dict(),
                stream=False,
                concurrency=1 if local else 4,
                name=f"re-score of optimization #{row.id}",
            ),
        )
    execute_sweep(sweep.id)
    with session_scope() as s:
        row = require_optimization(s, optimization_id)
        result = _compare(s, row, sweep.id, metric)
        line = (
            f"Re-scored by sweep #{sweep.id}: {present.score(result.sweep_score, dash='n/a')} "
            f"(DSPy: {present.score(result.dspy_score, dash='n/a')}). "
            f"{result.explanation}"
        )
        row.log = (row.log or "") + ("\n" if row.log else "") + line
        row.config = {**row.config, "rescore": {**result.__dict__}}
        s.add(row)
        version = s.get(PromptVersion, row.output_version_id)
        if line not in version.note:
            # The note is a description, not content: the hash and messages never change.
            version.note = f"{version.note} {line}".strip()[:4000]
            s.add(version)
    return result


def _compare(session: Session, row: Optimization, sweep_id: int, metric: MetricSpec) -> Rescore:
    runs = list(session.exec(select(Run).where(Run.sweep_id == sweep_id).order_by(col(Run.id))))
    examples = {
        e.id: e
        for e in session.exec(
            select(Example).where(col(Example.id).in_([r.example_id for r in runs if r.example_id]))
        )
    }
    judge_scores = {}
    if metric.name == "judge":
        stmt = select(Score).where(col(Score.run_id).in_([r.id for r in runs]), Score.metric == "judge")
        judge_scores = {sc.run_id: sc.value for sc in session.exec(stmt)}
    final_rows = (row.program or {}).get("evaluation", {}).get("final", [])
    values, differing, failed = [], 0, 0
    for run in runs:
        ex = examples.get(run.example_id)
        if run.status != "done" or ex is None:
            failed += 1
            continue
        if metric.name == "judge":
            value = judge_scores.get(run.id)
            if value is None:
                failed += 1
                continue
        else:
            value = score(metric, run.output or "", ex.expected, ex.inputs)
        values.append(value)
        if final_rows and ex.position < len(final_rows) and final_rows[ex.position]["output"] != run.output:
            differing += 1
    sweep_score = sum(values) / len(values) if values else None
    dspy_score = row.final_score
    if dspy_score is None:
        why = "DSPy did not score this version (the run stopped early); the sweep score is the first."
    elif sweep_score is not None and abs(sweep_score - dspy_score) < 1e-9:
        why = "The scores agree."
    else:
        reasons = []
        if differing:
            temp = (row.program or {}).get("params", {}).get("temperature")
            reasons.append(
                f"{differing} of {len(runs)} replies differ from the optimization's "
                + ("(sampling at temperature > 0)" if temp else "(the provider is not deterministic)")
            )
        if failed:
            reasons.append(f"{failed} cells failed or have no score")
        if metric.name == "judge":
            reasons.append("the judge is itself a model and may score the same reply differently")
        why = "They differ: " + "; ".join(reasons or ["cells reused from the cache were scored again"]) + "."
    return Rescore(sweep_id, sweep_score, dspy_score, len(runs), differing, failed, why)
