"""A release gate for CI: run a candidate and a baseline version through one sweep and test the difference.

The gate is a paired test with a margin. On the rows both versions have scores for (per model, and
overall), d = candidate - baseline, repeats averaged per row first (`workbench.stats.columns`), with
its (1 - alpha) interval [lo, hi] from `workbench.stats.paired`. The verdict is the first that holds:
"better" (lo > 0), "not worse" (lo >= -margin), "worse" (hi < 0), else "inconclusive" (the rows
cannot tell). The gate's verdict is the weakest of its rows (every model and overall).

The candidate fails ("fail") when a row is worse, when its overall mean is below `min_score`, when
its cost over the dataset exceeds `max_cost`, or when any of its cells failed; otherwise it passes
("pass") on better / not worse, and is "inconclusive" when some row cannot tell (a pass when
`allow_inconclusive`). An inconclusive row reports the rows that would decide it: the rows needed
to detect a difference of the margin at 80% power (`workbench.stats.power`), which is the size of
a non-inferiority test at that margin when the versions are truly equal.

The sweep is cache-aware, so re-running a gate on unchanged versions calls no model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlmodel import col, select

from workbench import metrics, present
from workbench.db import session_scope
from workbench.errors import ValidationError
from workbench.models import Prompt, Run
from workbench.prompts import store

DEFAULT_MARGIN = 0.02
DEFAULT_ALPHA = 0.05
PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
# Weakest last: the gate's verdict is the weakest verdict of its rows.
VERDICT_ORDER = ("better", "not worse", "inconclusive", "worse")


@dataclass
class GateSpec:
    """What to compare: candidate and baseline references (NAME@N or NAME:label) on a dataset."""

    candidate: str
    baseline: str
    dataset: str
    models: list[str]
    score: str = "exact"
    min_score: float | None = None
    margin: float = DEFAULT_MARGIN
    alpha: float = DEFAULT_ALPHA
    max_cost: float | None = None
    promote: bool = False
    allow_inconclusive: bool = False
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
            ("margin", self.margin),
            ("max_cost", self.max_cost),
            ("min_score", self.min_score),
        ):
            if value is not None and value < 0:
                raise ValidationError(f"The {name.replace('_', ' ')} cannot be negative.", field=name)
        if not (isinstance(self.alpha, int | float) and 0 < self.alpha < 1):
            raise ValidationError(
                f"alpha (the test's error rate) must be between 0 and 1, got {self.alpha!r}.", field="alpha"
            )
        if self.promote and not store.VersionRef.parse(self.baseline).label:
            raise ValidationError(
                f"Promoting moves the baseline's label, but '{self.baseline}' names no label: "
                "give the baseline as NAME:label (for example NAME:production).",
                field="promote",
            )


@dataclass
class GateRow:
    """Candidate against baseline on one model (or 'overall'): the means, the paired test, the verdict.

    candidate_mean and baseline_mean are each version's mean over its own scored rows; delta and
    the interval are the paired difference over the `n` rows both have. baseline_only /
    candidate_only count, for a pass/fail metric, the rows only that side got right when the test is
    McNemar (0/1 rows); when a row averages several cells (models, repeats; sign-flip test), the rows
    where that side's pass rate is higher.
    """

    model: str
    candidate_mean: float | None
    baseline_mean: float | None
    delta: float | None
    candidate_n: int
    candidate_failed: int
    baseline_failed: int
    candidate_cost_usd: float | None
    ok: bool
    verdict: str = "inconclusive"
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    n: int = 0
    test: str = ""
    interval: str = ""
    baseline_only: int | None = None
    candidate_only: int | None = None
    rows_needed: int | None = None


@dataclass
class GateResult:
    """The outcome, the table that explains it, and where the evidence lives (the sweep)."""

    passed: bool
    candidate: str
    baseline: str
    metric: str
    sweep_id: int
    outcome: str = PASS  # PASS | FAIL | INCONCLUSIVE (see the module docstring)
    verdict: str = "inconclusive"  # the weakest verdict of the rows
    margin: float = DEFAULT_MARGIN
    alpha: float = DEFAULT_ALPHA
    rows_needed_delta: float | None = None  # the difference `rows_needed` is sized to detect
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rows: list[GateRow] = field(default_factory=list)
    promoted: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields (NaN and infinite bounds become None)."""
        data = asdict(self)
        for row in data["rows"]:
            row.update({k: present.json_safe(v) for k, v in row.items()})
        return data


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


def _compare(rows, metric: metrics.Metric, cand_id: int, base_id: int, alpha: float):
    """The paired comparison of the candidate's cells with the baseline's among `rows` (a runs frame).

    Each side becomes one column ("baseline", "candidate"), so cells of several models average into
    one value per dataset row (the row is the unit), and a candidate that is the baseline compares
    with itself (d = 0 on every row). Returns (result, candidate mean, baseline mean).
    """
    import pandas as pd

    from workbench.stats.columns import compare_columns, row_means

    frame = pd.concat(
        [
            rows[rows["version_id"] == base_id].assign(column="baseline"),
            rows[rows["version_id"] == cand_id].assign(column="candidate"),
        ],
        ignore_index=True,
    )
    [result] = compare_columns(frame, metric, "baseline", ["candidate"], alpha=alpha)
    means = row_means(frame, metric).mean()
    return result, present.json_safe(means.get("candidate")), present.json_safe(means.get("baseline"))


def _interval(row: GateRow) -> str:
    lo, hi = present.number(row.ci_low, "+.3f"), present.number(row.ci_high, "+.3f")
    return f"[{lo}, {hi}]"


def _judge(row: GateRow, result, spec: GateSpec, gate: GateResult, where: str) -> None:
    """Set the row's verdict from the paired test and explain a worse or an inconclusive one."""
    from workbench.stats.paired import INCONCLUSIVE as UNDECIDED
    from workbench.stats.paired import MCNEMAR, WORSE, verdict
    from workbench.stats.power import DELTA, rows_needed

    row.delta, row.n, row.test, row.interval = result.diff, result.n, result.test, result.interval
    row.ci_low, row.ci_high, row.p_value = result.ci_low, result.ci_high, result.p_value
    row.baseline_only, row.candidate_only = result.a_only, result.b_only
    row.verdict = verdict(result.ci_low, result.ci_high, margin=spec.margin) if result.n else UNDECIDED
    test = f"{result.test} p={present.number(result.p_value, '.3g')}, n={result.n} rows"
    if result.a_only is not None and result.test == MCNEMAR:
        test += f"; only the baseline right on {result.a_only}, only the candidate on {result.b_only}"
    elif result.a_only is not None:  # rows average several cells: a row is a pass rate
        test += (
            f"; rows where the baseline's pass rate is higher {result.a_only}, "
            f"the candidate's {result.b_only}"
        )
    if row.verdict == WORSE:
        row.ok = False
        gate.reasons.append(
            f"Regression {where}: {spec.score} {present.score(row.candidate_mean)} vs baseline "
            f"{present.score(row.baseline_mean)} ({row.delta:+.3f}, {1 - spec.alpha:.0%} interval "
            f"{_interval(row)} lies below 0; {test})."
        )
    elif row.verdict == UNDECIDED and result.n:
        delta = spec.margin if spec.margin > 0 else DELTA
        row.rows_needed = rows_needed(result, delta=delta, alpha=spec.alpha)
        gate.rows_needed_delta = delta
        need = (
            f" About {row.rows_needed} rows would decide it (to tell a difference of {delta:g} "
            f"at 80% power; {result.n} compared)."
            if row.rows_needed
            else ""
        )
        gate.notes.append(
            f"Inconclusive {where}: {row.delta:+.3f}, {1 - spec.alpha:.0%} interval {_interval(row)} "
            f"reaches below -{spec.margin:g} and above 0 ({test}).{need}"
        )
    elif row.verdict == UNDECIDED and row.candidate_mean is not None:
        gate.notes.append(f"Inconclusive {where}: no row has a '{spec.score}' score for both versions.")


def _limits(spec: GateSpec, gate: GateResult) -> None:
    """The hard limits on the overall row: the minimum score and the cost limit."""
    overall = gate.rows[-1]
    mean = overall.candidate_mean
    if spec.min_score is not None and mean is not None and mean < spec.min_score:
        overall.ok = False
        gate.reasons.append(
            f"The candidate's mean {spec.score} {mean:.3f} is below the minimum score {spec.min_score:g}."
        )
    if spec.max_cost is None:
        return
    if overall.candidate_cost_usd is None:
        overall.ok = False
        gate.reasons.append(
            "The candidate's cost is unknown (a model has no price), so the cost limit cannot be "
            "checked: add prices to models.toml or drop the cost limit."
        )
    elif overall.candidate_cost_usd > spec.max_cost:
        overall.ok = False
        gate.reasons.append(
            f"The candidate costs ${overall.candidate_cost_usd:.6f} over the dataset, above the "
            f"cost limit ${spec.max_cost:g}."
        )


def _decide(spec: GateSpec, gate: GateResult) -> None:
    """The gate's verdict (the weakest row's) and outcome: fail on any reason, else by the verdict."""
    gate.verdict = max((r.verdict for r in gate.rows), key=VERDICT_ORDER.index)
    if gate.reasons:
        gate.outcome = FAIL
    elif gate.verdict == "inconclusive" and not spec.allow_inconclusive:
        gate.outcome = INCONCLUSIVE
    else:
        gate.outcome = PASS
        if gate.verdict == "inconclusive":
            gate.notes.append("The data cannot tell yet, and inconclusive results are allowed to pass.")
    gate.passed = gate.outcome == PASS


def run_gate(spec: GateSpec, *, executor_options: Any = None) -> GateResult:
    """Run the gate's sweep (cache-aware), test the difference, and move the label when asked and passed."""
    from workbench.sweeps.plan import SweepSpec, create_sweep
    from workbench.sweeps.processes import run_sweep
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
    run_sweep(sweep_id, options=executor_options)  # a big gate sweep uses every core
    with session_scope() as s:
        df = runs_frame(s, sweep_id)
    gate = GateResult(
        passed=False,
        candidate=cand_name,
        baseline=base_name,
        metric=spec.score,
        sweep_id=sweep_id,
        margin=spec.margin,
        alpha=spec.alpha,
    )
    if cand_id == base_id:
        gate.notes.append(f"Candidate and baseline are the same version ({cand_name}).")
    metric = metrics.get(spec.score)
    if metric.column not in df.columns:
        df[metric.column] = None
    costs = _candidate_costs(sweep_id, cand_id)
    models = list(dict.fromkeys(df["model"]))  # the catalog's ids, in plan order
    for model in [*models, "overall"]:
        rows = df if model == "overall" else df[df["model"] == model]
        c_rows, b_rows = rows[rows["version_id"] == cand_id], rows[rows["version_id"] == base_id]
        if model == "overall":
            priced = [costs.get(m, 0.0) for m in models]
            cost = None if any(c is None for c in priced) else sum(priced)
        else:
            cost = costs.get(model, 0.0)
        result, c_mean, b_mean = _compare(rows, metric, cand_id, base_id, spec.alpha)
        row = GateRow(
            model=model,
            candidate_mean=c_mean,
            baseline_mean=b_mean,
            delta=None,
            candidate_n=len(c_rows),
            candidate_failed=int((c_rows["status"] != "done").sum()),
            baseline_failed=int((b_rows["status"] != "done").sum()),
            candidate_cost_usd=cost,
            ok=True,
        )
        where = "overall" if model == "overall" else f"on {model}"
        if c_mean is None:
            row.ok = False
            gate.reasons.append(f"The candidate has no '{spec.score}' scores {where}.")
        _judge(row, result, spec, gate, where)
        if row.candidate_failed:
            row.ok = False
        if row.candidate_failed and model != "overall":
            gate.reasons.append(
                f"{row.candidate_failed} of the candidate's {row.candidate_n} cells failed {where} "
                f"(sweep {sweep_id} shows their errors)."
            )
        if row.baseline_failed and model != "overall":
            gate.notes.append(f"{row.baseline_failed} baseline cells failed {where}.")
        gate.rows.append(row)
    _limits(spec, gate)
    _decide(spec, gate)
    if gate.passed and spec.promote and cand_id == base_id:
        gate.notes.append("Nothing to promote: the label already points at the candidate.")
    elif gate.passed and spec.promote:
        label = store.VersionRef.parse(spec.baseline).label
        with session_scope() as s:
            store.set_label(s, version_id=cand_id, label=label, actor="gate")
            prompt = s.get(Prompt, s.get(store.PromptVersion, cand_id).prompt_id)
        gate.promoted = f"{prompt.name}:{label} -> {cand_name}"
    return gate
