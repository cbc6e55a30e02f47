"""A release gate for CI: run a candidate and a baseline version through one sweep and compare.

The candidate passes when, on every model and overall, its mean score is not more than
`max_regression` below the baseline's, its overall mean reaches `min_score` (when given), its cost
over the dataset stays within `max_cost` (when given), and none of its cells failed. The sweep is
cache-aware, so re-running a gate on unchanged versions calls no model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlmodel import col, select

from workbench import metrics
from workbench.db import session_scope
from workbench.errors import ValidationError
from workbench.models import Prompt, Run
from workbench.prompts import store

DEFAULT_MAX_REGRESSION = 0.02


@dataclass
class GateSpec:
    """What to compare: candidate and baseline references (NAME@N or NAME:label) on a dataset."""

    candidate: str
    baseline: str
    dataset: str
    models: list[str]
    score: str = "exact"
    min_score: float | None = None
    max_regression: float = DEFAULT_MAX_REGRESSION
    max_cost: float | None = None
    promote: bool = False
    use_cache: bool = True
    limit: int | None = None
    concurrency: int = 8

    def check(self) -> None:
        """Refuse settings that make no sense (a usage error, not a failed gate)."""
        if not self.models:
            raise ValidationError("A gate needs at least one model to run both versions on.", field="models")
        if not self.score:
            raise ValidationError("A gate needs a metric to compare the versions on.", field="score")
        gateable = [m.name for m in metrics.gate_metrics()]
        if self.score not in gateable:
            raise ValidationError(
                f"The metric '{self.score}' cannot gate a release: use one of {', '.join(gateable)} "
                "(a score where higher is better that needs no extra settings).",
                field="score",
            )
        for name, value in (
            ("max_regression", self.max_regression),
            ("max_cost", self.max_cost),
            ("min_score", self.min_score),
        ):
            if value is not None and value < 0:
                raise ValidationError(f"The {name.replace('_', ' ')} cannot be negative.", field=name)
        if self.promote and not store.VersionRef.parse(self.baseline).label:
            raise ValidationError(
                f"Promoting moves the baseline's label, but '{self.baseline}' names no label: "
                "give the baseline as NAME:label (for example NAME:production).",
                field="promote",
            )


@dataclass
class GateRow:
    """Candidate against baseline on one model (or 'overall')."""

    model: str
    candidate_mean: float | None
    baseline_mean: float | None
    delta: float | None
    candidate_n: int
    candidate_failed: int
    baseline_failed: int
    candidate_cost_usd: float | None
    ok: bool


@dataclass
class GateResult:
    """The verdict, the table that explains it, and where the evidence lives (the sweep)."""

    passed: bool
    candidate: str
    baseline: str
    metric: str
    sweep_id: int
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rows: list[GateRow] = field(default_factory=list)
    promoted: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mean(values) -> float | None:
    vals = [float(v) for v in values if v is not None and v == v]
    return sum(vals) / len(vals) if vals else None


def _candidate_costs(sweep_id: int, version_id: int) -> dict[str, float | None]:
    """Cost per model of running the candidate over the dataset; cache hits count what they cost first."""
    with session_scope() as s:
        runs = s.exec(
            select(Run).where(Run.sweep_id == sweep_id, Run.version_id == version_id, Run.status == "done")
        ).all()
        origin_ids = [r.cached_from_id for r in runs if r.cached and r.cached_from_id]
        origin = (
            {r.id: r.cost_usd for r in s.exec(select(Run).where(col(Run.id).in_(origin_ids)))}
            if origin_ids
            else {}
        )
    costs: dict[str, float | None] = {}
    for r in runs:
        cost = origin.get(r.cached_from_id) if r.cached else r.cost_usd
        if r.model not in costs:
            costs[r.model] = 0.0
        if cost is None or costs[r.model] is None:
            costs[r.model] = None  # unpriced: unknown, never a silent $0
        else:
            costs[r.model] += cost
    return costs


def run_gate(spec: GateSpec, *, executor_options: Any = None) -> GateResult:
    """Run the gate's sweep (cache-aware), compare, and move the label when asked and passed."""
    from workbench.sweeps.execute import execute_sweep
    from workbench.sweeps.plan import SweepSpec, create_sweep
    from workbench.sweeps.summary import runs_frame

    spec.check()
    with session_scope() as s:
        cand = store.resolve(s, spec.candidate)
        base = store.resolve(s, spec.baseline)
        cand_name = store.resolve_name(s, cand)
        base_name = store.resolve_name(s, base)
        if spec.promote and cand.prompt_id != base.prompt_id:
            raise ValidationError(
                f"Promoting moves a label within one prompt; {cand_name} and {base_name} belong to "
                "different prompts.",
                field="promote",
            )
        sweep, _ = create_sweep(
            s,
            SweepSpec(
                prompts=[cand_name, base_name],
                models=spec.models,
                dataset=spec.dataset,
                scoring={"metrics": [spec.score]},
                use_cache=spec.use_cache,
                max_rows=spec.limit,
                concurrency=spec.concurrency,
                name=f"gate: {cand_name} vs {base_name}",
            ),
        )
        sweep_id, cand_id, base_id = sweep.id, cand.id, base.id
    execute_sweep(sweep_id, executor_options)
    with session_scope() as s:
        df = runs_frame(s, sweep_id)
    result = GateResult(
        passed=True,
        candidate=cand_name,
        baseline=base_name,
        metric=spec.score,
        sweep_id=sweep_id,
    )
    if cand_id == base_id:
        result.notes.append(f"Candidate and baseline are the same version ({cand_name}).")
    column = metrics.get(spec.score).column
    if column not in df.columns:
        df[column] = None
    costs = _candidate_costs(sweep_id, cand_id)
    models = list(dict.fromkeys(df["model"]))  # the catalog's ids, in plan order
    for model in [*models, "overall"]:
        rows = df if model == "overall" else df[df["model"] == model]
        c_rows, b_rows = rows[rows["version_id"] == cand_id], rows[rows["version_id"] == base_id]
        c_done, b_done = c_rows[c_rows["status"] == "done"], b_rows[b_rows["status"] == "done"]
        c_mean, b_mean = _mean(c_done[column]), _mean(b_done[column])
        delta = None if c_mean is None or b_mean is None else c_mean - b_mean
        if model == "overall":
            priced = [costs.get(m, 0.0) for m in models]
            cost = None if any(c is None for c in priced) else sum(priced)
        else:
            cost = costs.get(model, 0.0)
        row = GateRow(
            model=model,
            candidate_mean=c_mean,
            baseline_mean=b_mean,
            delta=delta,
            candidate_n=len(c_rows),
            candidate_failed=int((c_rows["status"] != "done").sum()),
            baseline_failed=int((b_rows["status"] != "done").sum()),
            candidate_cost_usd=cost,
            ok=True,
        )
        where = "overall" if model == "overall" else f"on {model}"
        if c_mean is None:
            row.ok = False
            result.reasons.append(f"The candidate has no '{spec.score}' scores {where}.")
        elif delta is not None and -delta > spec.max_regression:
            row.ok = False
            result.reasons.append(
                f"Regression {where}: {spec.score} {c_mean:.3f} vs baseline {b_mean:.3f} "
                f"({delta:+.3f}; allowed -{spec.max_regression:g})."
            )
        if row.candidate_failed:
            row.ok = False
        if row.candidate_failed and model != "overall":
            result.reasons.append(
                f"{row.candidate_failed} of the candidate's {row.candidate_n} cells failed {where} "
                f"(sweep {sweep_id} shows their errors)."
            )
        if row.baseline_failed and model != "overall":
            result.notes.append(f"{row.baseline_failed} baseline cells failed {where}.")
        result.rows.append(row)
    overall = result.rows[-1]
    if (
        spec.min_score is not None
        and overall.candidate_mean is not None
        and overall.candidate_mean < spec.min_score
    ):
        overall.ok = False
        result.reasons.append(
            f"The candidate's mean {spec.score} {overall.candidate_mean:.3f} is below "
            f"the minimum score {spec.min_score:g}."
        )
    if spec.max_cost is not None:
        if overall.candidate_cost_usd is None:
            overall.ok = False
            result.reasons.append(
                "The candidate's cost is unknown (a model has no price), so the cost limit cannot be "
                "checked: add prices to models.toml or drop the cost limit."
            )
        elif overall.candidate_cost_usd > spec.max_cost:
            overall.ok = False
            result.reasons.append(
                f"The candidate costs ${overall.candidate_cost_usd:.6f} over the dataset, above the "
                f"cost limit ${spec.max_cost:g}."
            )
    result.passed = not result.reasons
    if result.passed and spec.promote and cand_id == base_id:
        result.notes.append("Nothing to promote: the label already points at the candidate.")
    elif result.passed and spec.promote:
        label = store.VersionRef.parse(spec.baseline).label
        with session_scope() as s:
            store.set_label(s, version_id=cand_id, label=label, actor="gate")
            prompt = s.get(Prompt, s.get(store.PromptVersion, cand_id).prompt_id)
        result.promoted = f"{prompt.name}:{label} -> {cand_name}"
    return result
