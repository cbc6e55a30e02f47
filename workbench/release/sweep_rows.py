"""A sweep as flat rows: one per cell (`runs_rows`) and one per vote (`ratings_rows`).

These are the rows that `workbench.release.export` writes as CSV and puts in its JSON documents;
that module is the public entry point (`export_runs`, `export_ratings`) and re-exports both.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from workbench import metrics
from workbench.models import Example, Prompt, PromptVersion, Rating, Run, Score, Sweep
from workbench.present import iso_utc
from workbench.providers.redact import scrub
from workbench.sweeps.plan import grid_keys, grid_label, require_sweep

# The columns of a ratings export, in order (the CSV header even when there is no vote).
RATING_COLUMNS = [
    "rating_id", "sweep_id", "created_at", "rater", "dimension", "verdict", "winner_run_id",
    "shown_left", "auto", "comment", "run_a_id", "run_b_id", "left_run_id", "version_a", "version_b",
    "model_a", "model_b", "params_a", "params_b", "example_id", "repeat",
]  # fmt: skip

_CHUNK = 500  # run ids per IN (...) query, well under every database's parameter limit


def runs_rows(session: Session, *, sweep_id: int) -> list[dict[str, Any]]:
    """One row per cell of a sweep: what ran, with which variables, what came out, and its scores."""
    sweep = require_sweep(session, sweep_id)
    stmt = (
        select(Run, Prompt.name, PromptVersion.number)
        .join(PromptVersion, PromptVersion.id == Run.version_id)
        .join(Prompt, Prompt.id == PromptVersion.prompt_id)
        .where(Run.sweep_id == sweep_id)
        .order_by(col(Run.id))
    )
    results = session.exec(stmt).all()
    scores: dict[int, dict[str, float | None]] = {}
    score_stmt = select(Score).join(Run, Run.id == Score.run_id).where(Run.sweep_id == sweep_id)
    names: list[str] = []
    for sc in session.exec(score_stmt):
        scores.setdefault(sc.run_id, {})[sc.metric] = sc.value
        if sc.metric not in names:
            names.append(sc.metric)
    scored = [metrics.METRICS[name] for name in names if name in metrics.METRICS]
    example_ids = {r.example_id for r, _n, _v in results if r.example_id is not None}
    examples = (
        {e.id: e for e in session.exec(select(Example).where(col(Example.id).in_(example_ids)))}
        if example_ids
        else {}
    )
    keys = grid_keys(sweep)
    rows = []
    for run, name, number in results:
        ex = examples.get(run.example_id)
        row = {
            "run_id": run.id,
            "sweep_id": sweep_id,
            "prompt": name,
            "version": number,
            "model": run.model,
            "grid": grid_label(run.params, keys),
            "params": run.params,
            "row": ex.position + 1 if ex else None,
            "variables": ex.inputs if ex else run.variables,
            "expected": ex.expected if ex else None,
            "repeat": run.repeat_index,
            "status": run.status,
            "cached": run.cached,
            "output": run.output,
            "tool_calls": run.tool_calls,
            "finish_reason": run.finish_reason,
            "error_kind": run.error_kind,
            "error_message": run.error_message,
            "prompt_tokens": run.prompt_tokens,
            "completion_tokens": run.completion_tokens,
            # Parts of the two counts above when the provider reported them; cost_usd is what the
            # provider bills for this usage (cached tokens at their cache price).
            "cached_tokens": run.cached_tokens,
            "reasoning_tokens": run.reasoning_tokens,
            "cost_usd": run.cost_usd,
            "latency_ms": run.latency_ms,
            "ttft_ms": run.ttft_ms,
            "attempts": run.attempts,
            "request_id": run.request_id,
        }
        for m in scored:
            row[m.column] = scores.get(run.id, {}).get(m.name)
        rows.append(row)
    return rows


def _run_sides(session: Session, run_ids: set[int]) -> dict[int, tuple[str, str, str, int | None, int]]:
    """Run id -> (NAME@N, model, grid label, example id, repeat) for the runs that were rated."""
    sides: dict[int, tuple[str, str, str, int | None, int]] = {}
    keys_of: dict[int, list[str]] = {}
    ids = sorted(run_ids)
    for start in range(0, len(ids), _CHUNK):
        stmt = (
            select(
                Run.id,
                Run.sweep_id,
                Prompt.name,
                PromptVersion.number,
                Run.model,
                Run.params,
                Run.example_id,
                Run.repeat_index,
            )
            .join(PromptVersion, PromptVersion.id == Run.version_id)
            .join(Prompt, Prompt.id == PromptVersion.prompt_id)
            .where(col(Run.id).in_(ids[start : start + _CHUNK]))
        )
        for rid, sid, prompt, number, model, params, example_id, repeat in session.exec(stmt):
            if sid not in keys_of:
                keys_of[sid] = grid_keys(session.get(Sweep, sid))
            sides[rid] = (f"{prompt}@{number}", model, grid_label(params, keys_of[sid]), example_id, repeat)
    return sides


def ratings_rows(session: Session, *, sweep_id: int | None = None) -> list[dict[str, Any]]:
    """One flat row per vote (RATING_COLUMNS) of one sweep, or of every sweep when sweep_id is None.

    A row holds both runs' ids and their version / model / grid, the verdict and the run that won,
    the side shown left, rater, comment, the auto flag and the time (ISO 8601, UTC). Values of
    key-like environment variables are redacted, as in every export.
    """
    stmt = select(Rating).order_by(col(Rating.id))
    if sweep_id is not None:
        require_sweep(session, sweep_id)
        stmt = stmt.where(Rating.sweep_id == sweep_id)
    ratings = list(session.exec(stmt))
    sides = _run_sides(session, {r.run_a_id for r in ratings} | {r.run_b_id for r in ratings})
    unknown = ("", "", "", None, 0)
    rows = []
    for r in ratings:
        a, b = sides.get(r.run_a_id, unknown), sides.get(r.run_b_id, unknown)
        rows.append(
            {
                "rating_id": r.id,
                "sweep_id": r.sweep_id,
                "created_at": iso_utc(r.created_at),
                "rater": r.rater,
                "dimension": r.dimension,
                "verdict": r.verdict,
                "winner_run_id": {"a": r.run_a_id, "b": r.run_b_id}.get(r.verdict),
                "shown_left": "a" if r.left_run_id == r.run_a_id else "b",
                "auto": bool(r.auto),
                "comment": r.comment,
                "run_a_id": r.run_a_id,
                "run_b_id": r.run_b_id,
                "left_run_id": r.left_run_id,
                "version_a": a[0],
                "version_b": b[0],
                "model_a": a[1],
                "model_b": b[1],
                "params_a": a[2],
                "params_b": b[2],
                "example_id": a[3],
                "repeat": a[4],
            }
        )
    return scrub(rows)
