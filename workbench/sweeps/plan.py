"""Plan a sweep: validate everything before any call, then write every cell as a pending Run.

A cell is (version, model, params, row, repeat). Planning renders every template for every row
(a missing variable names the row and the variable), checks every model is callable and every
parameter in range, estimates the cost, refuses a plan over the budget, and fills cells whose
cache key matches an earlier done Run from that Run (marked cached, cost 0 for this sweep).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from workbench import datasets, metrics
from workbench.errors import BudgetExceededError, ValidationError
from workbench.models import Run, Sweep, utcnow
from workbench.prompts import store
from workbench.providers import catalog
from workbench.sweeps.scoring import ScoringConfig

DEFAULT_MAX_TOKENS = 256
MAX_CELLS = 200_000
GRID_PARAM_LIMITS = {"temperature": (0.0, 2.0), "top_p": (0.0, 1.0)}


@dataclass
class SweepSpec:
    """What the user asked for: versions x models x parameter grid x rows x repeats."""

    prompts: list[str]
    models: list[str]
    dataset: str | None = None
    variables: dict[str, Any] | None = None
    params: dict[str, list[Any]] = field(default_factory=dict)
    repeats: int = 1
    concurrency: int = 8
    budget_usd: float | None = None
    scoring: dict[str, Any] = field(default_factory=dict)
    use_cache: bool = True
    stream: bool = True
    max_rows: int | None = None
    timeout_s: float | None = None
    max_attempts: int = 5
    name: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The spec as stored in a sweep's config."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepSpec:
        """A spec from a stored config; keys this version does not know are ignored."""
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class PlanSummary:
    """What planning found: the cell count, cache hits and the estimated cost."""

    cells: int
    cached: int
    to_call: int
    prompt_tokens: int
    max_completion_tokens: int
    estimated_cost_usd: float | None  # None when some model is unpriced
    unpriced_models: list[str]
    versions: list[str]
    models: list[str]
    rows: int
    param_combos: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain data (stored in the sweep's config, printed as JSON)."""
        return asdict(self)


def parse_param_values(raw: str) -> list[Any]:
    """'0,0.7' -> [0, 0.7]; values are JSON scalars when they parse, else strings."""
    values = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            values.append(json.loads(part))
        except json.JSONDecodeError:
            values.append(part)
    return values


def cache_key(model: str, params: dict[str, Any], messages: list[dict[str, str]], repeat: int) -> str:
    """Hash of what determines an output: model, resolved params, rendered messages, repeat index."""
    payload = json.dumps(
        {"model": model, "params": params, "messages": messages, "repeat": repeat},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def grid_keys(sweep: Sweep | None) -> list[str]:
    """The parameter names a sweep varies (its grid), in the order the user gave them."""
    return list((((sweep.config if sweep else None) or {}).get("spec") or {}).get("params") or {})


def grid_label(params: dict[str, Any] | None, keys: list[str]) -> str:
    """The label of a cell's grid values, e.g. 'temperature=0.7' (other params are defaults)."""
    params = params or {}
    return params_label({k: params[k] for k in keys if k in params})


def column_label(version: str, model: str, grid: str) -> str:
    """A sweep column: 'prompt@N | model | grid' (the grid part only when the sweep has one)."""
    return f"{version} | {model}" + (f" | {grid}" if grid else "")


def params_label(params: dict[str, Any]) -> str:
    """A short, stable label of a cell's grid parameters, e.g. 'temperature=0.7'."""
    return ", ".join(
        f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in sorted(params.items())
    )


def _grid(spec: SweepSpec) -> list[dict[str, Any]]:
    for key, values in spec.params.items():
        if not values:
            raise ValidationError(f"Parameter '{key}' has no values.")
        for v in values:
            if key in GRID_PARAM_LIMITS:
                lo, hi = GRID_PARAM_LIMITS[key]
                if not isinstance(v, (int, float)) or isinstance(v, bool) or not lo <= v <= hi:
                    raise ValidationError(f"{key}={v!r} is out of range; use a number from {lo} to {hi}.")
                if key == "top_p" and v == 0:
                    raise ValidationError("top_p must be above 0.")
            if key == "max_tokens" and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ValidationError(f"max_tokens={v!r} must be a whole number of at least 1.")
            if key == "seed" and (not isinstance(v, int) or isinstance(v, bool)):
                raise ValidationError(f"seed={v!r} must be a whole number.")
    keys = list(spec.params)
    return [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(spec.params[k] for k in keys))
    ]


def _rows(session: Session, spec: SweepSpec) -> tuple[int | None, list[tuple[int | None, dict, str | None]]]:
    if spec.dataset and spec.variables:
        raise ValidationError("Give a dataset or a set of variables, not both.")
    if spec.dataset:
        ds = datasets.require_dataset(session, spec.dataset)
        rows = [
            (e.id, e.inputs, e.expected) for e in datasets.examples_of(session, ds.id, limit=spec.max_rows)
        ]
        if not rows:
            raise ValidationError(f"Dataset '{spec.dataset}' has no rows.")
        return ds.id, rows
    return None, [(None, dict(spec.variables or {}), None)]


def _check_spec(spec: SweepSpec) -> None:
    if not spec.prompts:
        raise ValidationError("Choose at least one prompt version.", field="prompts")
    if not spec.models:
        raise ValidationError("Choose at least one model.", field="models")
    if len(set(spec.models)) != len(spec.models):
        raise ValidationError("A model is listed twice.", field="models")
    if not 1 <= int(spec.repeats) <= 100:
        raise ValidationError("repeats must be between 1 and 100.", field="repeats")
    if not 1 <= int(spec.concurrency) <= 512:
        raise ValidationError("concurrency must be between 1 and 512.", field="concurrency")
    if spec.budget_usd is not None and spec.budget_usd < 0:
        raise ValidationError("The budget cannot be negative.", field="budget_usd")
    if not 1 <= int(spec.max_attempts) <= 20:
        raise ValidationError("max_attempts must be between 1 and 20.", field="max_attempts")


def grid_size(session: Session, spec: SweepSpec) -> int:
    """How many cells `spec` plans, without rendering or counting tokens (LiteLLM not imported):
    what a sweep's process knows early enough to start its workers while it plans."""
    versions = {store.resolve(session, ref).id for ref in spec.prompts}
    _dataset_id, rows = _rows(session, spec)
    return len(versions) * len(spec.models) * len(_grid(spec)) * len(rows) * int(spec.repeats)


def _count_tokens(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> int:
    from workbench.providers.completion import ensure_litellm

    litellm = ensure_litellm()
    # One tokenizer for the estimate (tiktoken, bundled with LiteLLM): per-model tokenizers
    # would download from the hub for some names, and the estimate need not be exact. Tool
    # definitions are sent with every call, so they count as prompt tokens.
    return int(litellm.token_counter(model="gpt-3.5-turbo", messages=messages, tools=tools or None))


def build_cells(session: Session, spec: SweepSpec) -> tuple[list[dict[str, Any]], PlanSummary, dict]:
    """Validate the spec and build every cell (not yet written). Raises WorkbenchError."""
    _check_spec(spec)
    scoring = ScoringConfig.from_dict(spec.scoring)
    versions = []
    for ref in spec.prompts:
        v = store.resolve(session, ref)
        if v.id not in {x.id for x in versions}:
            versions.append(v)
    entries = []
    for model in spec.models:
        entries.append(catalog.require_callable(model))
    if scoring.judge_model:
        catalog.require_callable(scoring.judge_model)
    combos = _grid(spec)
    dataset_id, rows = _rows(session, spec)
    needs_expected = [m for m in scoring.metrics if metrics.METRICS[m].needs_expected]
    if needs_expected and all(r[2] is None for r in rows):
        raise ValidationError(
            f"Scoring by {', '.join(needs_expected)} needs rows with an expected answer; "
            "this input has none.",
            field="score",
        )
    total = len(versions) * len(entries) * len(combos) * len(rows) * int(spec.repeats)
    if total > MAX_CELLS:
        raise ValidationError(f"This sweep has {total:,} cells; the limit is {MAX_CELLS:,}. Narrow the grid.")

    names = {v.id: store.resolve_name(session, v) for v in versions}
    rendered: dict[tuple[int, int], list[dict[str, str]]] = {}
    tokens: dict[tuple[int, int], int] = {}
    for v in versions:
        for i, (_ex_id, inputs, _expected) in enumerate(rows):
            where = f"row {i + 1} of dataset '{spec.dataset}'" if spec.dataset else "the variables"
            rendered[(v.id, i)] = store.render_version(v, inputs, context=f"({names[v.id]}, {where})")
    needs_count = any(e.kind != "local" for e in entries)
    if needs_count:
        tools_of = {v.id: v.tools for v in versions}
        for key, msgs in rendered.items():
            tokens[key] = _count_tokens(msgs, tools_of[key[0]])

    cells: list[dict[str, Any]] = []
    est_cost = 0.0
    unpriced: set[str] = set()
    prompt_tok_total = 0
    completion_tok_total = 0
    from workbench.providers.completion import cost_of

    for v in versions:
        # The version's response format and tools travel with the cell's params: they reach the
        # provider with the sampling params, and a different schema is a different cache key.
        base_params = store.call_params(v)
        for entry in entries:
            for combo in combos:
                params = {**base_params, **combo}
                max_tokens = int(params.get("max_tokens") or DEFAULT_MAX_TOKENS)
                params.setdefault("max_tokens", max_tokens)
                store.check_params(
                    {k: params[k] for k in ("temperature", "top_p", "max_tokens") if k in params}
                )
                for i, (ex_id, inputs, _expected) in enumerate(rows):
                    msgs = rendered[(v.id, i)]
                    ptok = tokens.get((v.id, i), 0)
                    for rep in range(int(spec.repeats)):
                        prompt_tok_total += ptok
                        completion_tok_total += max_tokens
                        if entry.kind != "local":
                            c = cost_of(entry, ptok, max_tokens)  # no cache hit assumed: full price
                            if c is None:
                                unpriced.add(entry.id)
                            else:
                                est_cost += c
                        cells.append(
                            {
                                "version_id": v.id,
                                "model": entry.id,
                                "params": params,
                                "grid": combo,
                                "example_id": ex_id,
                                "variables": inputs if ex_id is None else {},
                                "repeat_index": rep,
                                "messages": msgs,
                                "cache_key": cache_key(entry.id, params, msgs, rep),
                            }
                        )
    summary = PlanSummary(
        cells=len(cells),
        cached=0,
        to_call=len(cells),
        prompt_tokens=prompt_tok_total,
        max_completion_tokens=completion_tok_total,
        estimated_cost_usd=None if unpriced else round(est_cost, 6),
        unpriced_models=sorted(unpriced),
        versions=[names[v.id] for v in versions],
        models=[e.id for e in entries],
        rows=len(rows),
        param_combos=combos,
    )
    resolved = {"version_ids": [v.id for v in versions], "dataset_id": dataset_id}
    return cells, summary, resolved


def _cache_hits(session: Session, keys: list[str]) -> dict[str, Run]:
    hits: dict[str, Run] = {}
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        stmt = (
            select(Run)
            .where(col(Run.cache_key).in_(chunk), Run.status == "done", col(Run.output).is_not(None))
            .order_by(col(Run.id))
        )
        for run in session.exec(stmt):
            hits.setdefault(run.cache_key, run)
    return hits


def preview(session: Session, spec: SweepSpec) -> PlanSummary:
    """Validate and estimate without writing anything (the Run page's preview)."""
    cells, summary, _ = build_cells(session, spec)
    if spec.use_cache:
        hits = _cache_hits(session, [c["cache_key"] for c in cells])
        summary.cached = sum(1 for c in cells if c["cache_key"] in hits)
        summary.to_call = summary.cells - summary.cached
    return summary


def create_sweep(session: Session, spec: SweepSpec) -> tuple[Sweep, PlanSummary]:
    """Plan and persist: the Sweep row and every cell as a Run (pending, or done from cache)."""
    cells, summary, resolved = build_cells(session, spec)
    hits = _cache_hits(session, [c["cache_key"] for c in cells]) if spec.use_cache else {}
    summary.cached = sum(1 for c in cells if c["cache_key"] in hits)
    summary.to_call = summary.cells - summary.cached
    if spec.budget_usd is not None:
        if summary.unpriced_models:
            raise BudgetExceededError(
                f"A budget needs known prices, and {', '.join(summary.unpriced_models)} has none: add "
                "input/output prices for it in models.toml, or run without a budget."
            )
        # Cache hits cost nothing, so only the cells that will be called count against the budget.
        share = summary.to_call / summary.cells if summary.cells else 0
        estimate = (summary.estimated_cost_usd or 0.0) * share
        if estimate > spec.budget_usd:
            raise BudgetExceededError(
                f"Estimated cost ${estimate:.4f} is over the budget of ${spec.budget_usd:.4f} "
                f"({summary.to_call:,} calls). Narrow the grid or raise the budget."
            )
    sweep = Sweep(
        name=spec.name or ", ".join(summary.versions)[:200],
        status="pending",
        config={"spec": spec.to_dict(), **resolved, "plan": summary.to_dict()},
        budget_usd=spec.budget_usd,
        estimated_cost_usd=summary.estimated_cost_usd,
    )
    session.add(sweep)
    session.flush()
    now = utcnow()
    rows = []
    for c in cells:
        hit = hits.get(c["cache_key"])
        row = {
            "sweep_id": sweep.id,
            "version_id": c["version_id"],
            "model": c["model"],
            "params": c["params"],
            "example_id": c["example_id"],
            "variables": c["variables"],
            "repeat_index": c["repeat_index"],
            "cache_key": c["cache_key"],
            "messages": c["messages"],
            "status": "pending",
            "cached": False,
            "cached_from_id": None,
            "attempts": 0,
            "output": None,
            "tool_calls": None,
            "finish_reason": None,
            "error_kind": None,
            "error_message": None,
            "request_id": None,
            "prompt_tokens": None,
            "completion_tokens": None,
            "cached_tokens": None,
            "reasoning_tokens": None,
            "cost_usd": None,
            "latency_ms": None,
            "ttft_ms": None,
            "claimed_by": None,
            "created_at": now,
            "started_at": None,
            "finished_at": None,
        }
        if hit is not None:
            row.update(
                status="done",
                cached=True,
                cached_from_id=hit.id,
                output=hit.output,
                tool_calls=hit.tool_calls,
                finish_reason=hit.finish_reason,
                request_id=hit.request_id,
                prompt_tokens=hit.prompt_tokens,
                completion_tokens=hit.completion_tokens,
                cached_tokens=hit.cached_tokens,
                reasoning_tokens=hit.reasoning_tokens,
                cost_usd=0.0,
                latency_ms=hit.latency_ms,
                ttft_ms=hit.ttft_ms,
                started_at=now,
                finished_at=now,
            )
        rows.append(row)
    for start in range(0, len(rows), 2000):
        session.execute(insert(Run), rows[start : start + 2000])
    if summary.to_call == 0:
        sweep.status = "done"
        sweep.finished_at = now
    session.flush()
    return sweep, summary


def require_sweep(session: Session, sweep_id: int) -> Sweep:
    """The sweep with this id, or SweepNotFoundError (the one place that raises it)."""
    from workbench.errors import SweepNotFoundError

    sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        raise SweepNotFoundError(sweep_id)
    return sweep


def spec_of(sweep: Sweep) -> SweepSpec:
    """The SweepSpec a sweep was planned from."""
    return SweepSpec.from_dict(sweep.config.get("spec", {}))
