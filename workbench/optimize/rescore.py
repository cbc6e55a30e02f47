"""Re-score a saved optimization with a normal sweep, paired with its input version.

The sweep runs both the input version and the saved version on the optimization's validation
(held-out) rows, kept as a small dataset of their own so the comparison can be re-run later, and
opened in Compare like any sweep. It reports the saved version's score next to DSPy's, why the two
may differ, and the same paired comparison as the optimization itself (`decision`): saved against
input on the same rows. Both are written to the version's note and the optimization's log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from workbench import datasets, present
from workbench.db import session_scope
from workbench.errors import ValidationError
from workbench.models import Dataset, Example, Optimization, PromptVersion, Run, Score
from workbench.optimize.decision import compare_paired_scores, describe, pass_fail_metric
from workbench.optimize.metrics import MetricSpec, score
from workbench.optimize.results import require_optimization
from workbench.optimize.run import plan_of, spec_of
from workbench.prompts import store


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
    """A sweep's score of the saved version next to DSPy's, and the paired test against the input."""

    sweep_id: int
    sweep_score: float | None  # the saved version's mean in the sweep
    dspy_score: float | None
    rows: int  # cells of the saved version
    differing_outputs: int
    failed: int
    explanation: str
    input_score: float | None = None  # the input version's mean in the same sweep
    paired: dict[str, Any] | None = None  # saved against input on the same rows (decision's format)


def rescore(optimization_id: int) -> Rescore:
    """Run a sweep of the input and the saved version on the validation rows; record the comparison."""
    from workbench.providers import catalog
    from workbench.sweeps.plan import SweepSpec, create_sweep
    from workbench.sweeps.processes import run_sweep

    with session_scope() as s:
        row = require_optimization(s, optimization_id)
        if row.output_version_id is None:
            raise ValidationError(f"Optimization #{row.id} has no saved version yet; save it first.")
        metric = MetricSpec.from_dict(spec_of(row).metric)
        refs = [
            store.resolve_name(s, s.get(PromptVersion, vid))
            for vid in dict.fromkeys((row.input_version_id, row.output_version_id))
        ]
        ds = validation_dataset(s, row)
        local = catalog.get_model(row.task_model).kind == "local"
        sweep, _ = create_sweep(
            s,
            SweepSpec(
                prompts=refs,
                models=[row.task_model],
                dataset=ds.name,
                scoring=metric.scoring_config().to_dict(),
                stream=False,
                concurrency=1 if local else 4,
                name=f"re-score of optimization #{row.id}",
            ),
        )
    run_sweep(sweep.id)
    with session_scope() as s:
        row = require_optimization(s, optimization_id)
        result = _compare(s, row, sweep.id, metric)
        line = summary_line(result)
        row.log = (row.log or "") + ("\n" if row.log else "") + line
        row.config = {**row.config, "rescore": {**result.__dict__}}
        s.add(row)
        version = s.get(PromptVersion, row.output_version_id)
        if line not in version.note:
            # The note is a description, not content: the hash and messages never change.
            version.note = f"{version.note} {line}".strip()[:4000]
            s.add(version)
    return result


def summary_line(result: Rescore | dict[str, Any]) -> str:
    """What the re-scoring found, in words (for the log, the note, the CLI and the page)."""
    r = result if isinstance(result, dict) else result.__dict__
    line = (
        f"Re-scored by sweep #{r['sweep_id']}: {present.score(r['sweep_score'], dash='n/a')} "
        f"(DSPy: {present.score(r['dspy_score'], dash='n/a')}). {r['explanation']}"
    )
    paired = r.get("paired")
    if paired:
        line += (
            f" Paired with the input version in the same sweep: {paired['verdict']} "
            f"({describe(paired, a='input', b='saved')})."
        )
    return line


def _values(
    session: Session, runs: list[Run], metric: MetricSpec, examples: dict[int, Example]
) -> dict[int, float | None]:
    """Each run's score with the optimization's metric (None for a failed run or a missing judge score)."""
    judge_scores: dict[int, float] = {}
    if metric.name == "judge":
        stmt = select(Score).where(col(Score.run_id).in_([r.id for r in runs]), Score.metric == "judge")
        judge_scores = {sc.run_id: sc.value for sc in session.exec(stmt)}
    out: dict[int, float | None] = {}
    for run in runs:
        ex = examples.get(run.example_id)
        if run.status != "done" or ex is None:
            out[run.id] = None
        elif metric.name == "judge":
            out[run.id] = judge_scores.get(run.id)
        else:
            out[run.id] = score(metric, run.output or "", ex.expected, ex.inputs)
    return out


def _compare(session: Session, row: Optimization, sweep_id: int, metric: MetricSpec) -> Rescore:
    runs = list(session.exec(select(Run).where(Run.sweep_id == sweep_id).order_by(col(Run.id))))
    examples = {
        e.id: e
        for e in session.exec(
            select(Example).where(col(Example.id).in_([r.example_id for r in runs if r.example_id]))
        )
    }
    values = _values(session, runs, metric, examples)
    saved = [r for r in runs if r.version_id == row.output_version_id]
    inputs = [r for r in runs if r.version_id == row.input_version_id]
    final_rows = (row.program or {}).get("evaluation", {}).get("final", [])
    differing = 0
    for run in saved:
        ex = examples.get(run.example_id)
        if values[run.id] is None or ex is None:
            continue
        if final_rows and ex.position < len(final_rows) and final_rows[ex.position]["output"] != run.output:
            differing += 1
    failed = sum(1 for r in saved if values[r.id] is None)
    scored = [values[r.id] for r in saved if values[r.id] is not None]
    sweep_score = sum(scored) / len(scored) if scored else None
    base_scored = [values[r.id] for r in inputs if values[r.id] is not None]
    paired = None
    if inputs and saved and row.input_version_id != row.output_version_id:
        paired = compare_paired_scores(
            {r.example_id: values[r.id] for r in inputs if values[r.id] is not None},
            {r.example_id: values[r.id] for r in saved if values[r.id] is not None},
            pass_fail=pass_fail_metric(metric.name),
            a_label="input",
            b_label="saved",
        )
    return Rescore(
        sweep_id,
        sweep_score,
        row.final_score,
        len(saved),
        differing,
        failed,
        _why(row, metric, sweep_score, differing, failed, len(saved)),
        input_score=sum(base_scored) / len(base_scored) if base_scored else None,
        paired=paired,
    )


def _why(
    row: Optimization, metric: MetricSpec, sweep_score: float | None, differing: int, failed: int, n: int
) -> str:
    dspy_score = row.final_score
    if dspy_score is None:
        return "DSPy did not score this version (the run stopped early); the sweep score is the first."
    if sweep_score is not None and abs(sweep_score - dspy_score) < 1e-9:
        return "The scores agree."
    reasons = []
    if differing:
        temp = (row.program or {}).get("params", {}).get("temperature")
        reasons.append(
            f"{differing} of {n} replies differ from the optimization's "
            + ("(sampling at temperature > 0)" if temp else "(the provider is not deterministic)")
        )
    if failed:
        reasons.append(f"{failed} cells failed or have no score")
    if metric.name == "judge":
        reasons.append("the judge is itself a model and may score the same reply differently")
    return "They differ: " + "; ".join(reasons or ["cells reused from the cache were scored again"]) + "."
