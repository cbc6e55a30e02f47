"""Plan an optimization (validate, split, estimate) and create its `Optimization` row.

Nothing here imports DSPy: planning is what the Optimize page shows before the user starts, and
it must be quick. The run itself is `workbench.optimize.worker.run_optimization`.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlmodel import Session

from workbench import datasets
from workbench.errors import ValidationError
from workbench.models import Example, Optimization, PromptVersion
from workbench.optimize import messages, optimizers
from workbench.optimize.metrics import MetricSpec
from workbench.prompts import store
from workbench.providers import catalog
from workbench.sweeps.plan import DEFAULT_MAX_TOKENS

PROMPT_CALL_TOKENS = (2000, 800)  # rough prompt/completion tokens of one instruction-proposer call


@dataclass
class OptimizeSpec:
    """What the user asked for."""

    prompt: str
    dataset: str
    model: str
    metric: dict[str, Any] = field(default_factory=dict)
    optimizer: str = "bootstrap"
    settings: dict[str, Any] = field(default_factory=dict)
    train_fraction: float = 0.5
    seed: int = 0
    max_rows: int | None = None
    max_calls: int | None = None
    prompt_model: str | None = None
    num_threads: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The spec as stored in the Optimization row's config."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OptimizeSpec:
        """A spec from a stored dict (unknown keys ignored, so old rows still load)."""
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class OptimizePlan:
    """What planning found: the split, the call estimate, the cap and the cost estimate."""

    version: str
    version_id: int
    dataset_id: int
    input_names: list[str]
    train_ids: list[int]
    val_ids: list[int]
    settings: dict[str, Any]
    calls: dict[str, int]  # baseline, optimizer_task, optimizer_prompt, judge, final
    estimated_calls: int
    call_cap: int
    estimated_cost_usd: float | None  # None when a model has no known price
    unpriced_models: list[str]
    prompt_model: str | None
    num_threads: int
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The plan as stored in the Optimization row's config."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OptimizePlan:
        """A plan from a stored dict (unknown keys ignored, so old rows still load)."""
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def eval_calls(self) -> int:
        """Calls of one validation pass (task calls, plus judge calls when the metric is a judge)."""
        per_row = 2 if self.calls.get("judge") else 1
        return per_row * len(self.val_ids)


def split_rows(ids: list[int], *, train_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded shuffle split into (train, validation); both get at least one row."""
    if not 0 < train_fraction < 1:
        raise ValidationError(
            f"The train fraction must be between 0 and 1 (exclusive), not {train_fraction}.",
            field="train_fraction",
        )
    if len(ids) < 2:
        raise ValidationError("Optimization needs at least 2 labelled rows (one to train, one to validate).")
    shuffled = list(ids)
    random.Random(seed).shuffle(shuffled)
    n_train = min(len(ids) - 1, max(1, round(len(ids) * train_fraction)))
    return shuffled[:n_train], shuffled[n_train:]


def labelled_rows(session: Session, dataset_id: int, max_rows: int | None) -> list[Example]:
    """The dataset's rows that have an expected answer (the first `max_rows` rows of the dataset)."""
    return [e for e in datasets.examples_of(session, dataset_id, limit=max_rows) if e.expected is not None]


def _require_plain_messages(version: Any, name: str) -> None:
    """DSPy rewrites the text of chat messages; what it cannot carry is refused before any call."""
    from workbench.prompts import conversation

    extras = [
        what
        for what, present in (
            ("a conversation placeholder", any(conversation.is_placeholder(m) for m in version.messages)),
            ("a response format", bool(getattr(version, "response_format", None))),
            ("tools", bool(getattr(version, "tools", None))),
        )
        if present
    ]
    if extras:
        raise ValidationError(
            f"{name} has {' and '.join(extras)}; optimization works on plain chat messages only, so "
            "optimize a version without them."
        )


def plan_optimization(session: Session, spec: OptimizeSpec) -> OptimizePlan:
    """Validate a spec and estimate it without writing anything. Raises WorkbenchError."""
    version = store.resolve(session, spec.prompt)
    name = store.resolve_name(session, version)
    ds = datasets.require_dataset(session, spec.dataset)
    metric = MetricSpec.from_dict(spec.metric)
    settings = optimizers.settings_for(spec.optimizer, spec.settings)
    entry = catalog.require_callable(spec.model)
    entry_info = optimizers.info(spec.optimizer)
    warnings: list[str] = []
    prompt_model = spec.prompt_model or None
    if entry_info.uses_prompt_model:
        if not prompt_model:
            prompt_model = spec.model
            warnings.append(
                f"{entry_info.label} writes instructions with a prompt model; none was chosen, so the task "
                "model writes them. A stronger prompt model is recommended."
            )
        catalog.require_callable(prompt_model)
    else:
        prompt_model = None
    if metric.name == "judge":
        catalog.require_callable(metric.judge_model)
    _require_plain_messages(version, name)
    messages.split_template(version.messages)
    rows = labelled_rows(session, ds.id, spec.max_rows)
    if not rows:
        raise ValidationError(
            f"Dataset '{ds.name}' has no rows with an expected answer; label some rows first."
        )
    input_names = [v for v in version.variables if v in ds.columns]
    if not input_names:
        raise ValidationError(
            f"None of {name}'s variables ({', '.join(version.variables) or 'none'}) is a column of "
            f"'{ds.name}' ({', '.join(ds.columns)}): nothing for DSPy to vary."
        )
    for row in rows:  # a row that cannot render fails here, not halfway through
        store.render_version(version, row.inputs, context=f"({name}, row {row.position + 1} of '{ds.name}')")
    train_ids, val_ids = split_rows([r.id for r in rows], train_fraction=spec.train_fraction, seed=spec.seed)
    est = optimizers.estimate(spec.optimizer, settings, train=len(train_ids))
    v = len(val_ids)
    calls = {
        "baseline": v,
        "optimizer_task": est.task,
        "optimizer_prompt": est.prompt,
        "final": v,
        "judge": 0,
    }
    if metric.name == "judge":
        calls["judge"] = 2 * v + est.task  # roughly one judge call per scored reply
    total = sum(calls.values())
    cap = spec.max_calls if spec.max_calls is not None else max(2 * total, 1)
    plan = OptimizePlan(
        version=name,
        version_id=version.id,
        dataset_id=ds.id,
        input_names=input_names,
        train_ids=train_ids,
        val_ids=val_ids,
        settings=settings,
        calls=calls,
        estimated_calls=total,
        call_cap=int(cap),
        estimated_cost_usd=None,
        unpriced_models=[],
        prompt_model=prompt_model,
        num_threads=spec.num_threads or (1 if entry.kind == "local" else min(4, entry.max_concurrency)),
        warnings=warnings,
    )
    if plan.call_cap < 2 * plan.eval_calls:
        raise ValidationError(
            f"A cap of {plan.call_cap} calls is too low: scoring the {v} validation rows before and after "
            f"takes {2 * plan.eval_calls} calls. Raise the call cap or use fewer rows.",
            field="max_calls",
        )
    _estimate_cost(plan, version, [r for r in rows if r.id in set(val_ids)], metric, spec.model)
    return plan


def _estimate_cost(
    plan: OptimizePlan, version: PromptVersion, rows: list[Example], metric: MetricSpec, model: str
) -> None:
    from workbench.providers.completion import cost_of

    entry = catalog.get_model(model)
    max_tokens = int(version.params.get("max_tokens") or DEFAULT_MAX_TOKENS)
    demos = max([v for k, v in plan.settings.items() if "demos" in k or k == "k"] or [0])
    total = 0.0
    unpriced: set[str] = set()

    def add(model_entry, n_calls: int, prompt_tokens: int, completion_tokens: int) -> None:
        nonlocal total
        if n_calls <= 0:
            return
        cost = cost_of(model_entry, prompt_tokens, completion_tokens)
        if cost is None:
            unpriced.add(model_entry.id)
        else:
            total += n_calls * cost

    tokens = 0
    if entry.kind != "local" and rows:
        from workbench.sweeps.plan import _count_tokens

        sample = rows[:20]
        tokens = sum(_count_tokens(store.render_version(version, r.inputs)) for r in sample) // len(sample)
    add(entry, plan.calls["baseline"] + plan.calls["final"], tokens, max_tokens)
    # Calls made while optimizing carry up to `demos` extra user/assistant pairs.
    add(entry, plan.calls["optimizer_task"], tokens * (1 + demos), max_tokens)
    if plan.prompt_model:
        add(catalog.get_model(plan.prompt_model), plan.calls["optimizer_prompt"], *PROMPT_CALL_TOKENS)
    if plan.calls["judge"]:
        add(catalog.get_model(metric.judge_model), plan.calls["judge"], tokens + max_tokens + 120, 16)
    plan.unpriced_models = sorted(unpriced)
    plan.estimated_cost_usd = None if unpriced else round(total, 6)


def create_optimization(session: Session, spec: OptimizeSpec) -> tuple[Optimization, OptimizePlan]:
    """Plan and write a pending Optimization row; the worker runs it."""
    plan = plan_optimization(session, spec)
    metric = MetricSpec.from_dict(spec.metric)
    row = Optimization(
        input_version_id=plan.version_id,
        dataset_id=plan.dataset_id,
        optimizer=spec.optimizer,
        config={"spec": spec.to_dict(), "plan": plan.to_dict(), "progress": {"phase": "pending"}},
        metric=metric.label()[:100],
        task_model=spec.model,
        prompt_model=plan.prompt_model,
        status="pending",
        call_cap=plan.call_cap,
        cost_usd=0.0,
        log="",
    )
    session.add(row)
    session.flush()
    return row, plan


def spec_of(row: Optimization) -> OptimizeSpec:
    """The spec an optimization was created from."""
    return OptimizeSpec.from_dict(row.config.get("spec", {}))


def plan_of(row: Optimization) -> OptimizePlan:
    """The plan an optimization was created with."""
    return OptimizePlan.from_dict(row.config.get("plan", {}))
