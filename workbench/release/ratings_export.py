"""Ratings leave the workbench: one flat row per vote, as CSV or JSON (formula-safe)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from workbench.datasets import neutralise_formula
from workbench.errors import ValidationError
from workbench.models import Prompt, PromptVersion, Rating, Run, Sweep
from workbench.sweeps.plan import grid_keys, grid_label, require_sweep

EXPORT_COLUMNS = [
    "rating_id",
    "sweep_id",
    "created_at",
    "rater",
    "dimension",
    "verdict",
    "winner_run_id",
    "shown_left",
    "auto",
    "comment",
    "run_a_id",
    "run_b_id",
    "left_run_id",
    "version_a",
    "version_b",
    "model_a",
    "model_b",
    "params_a",
    "params_b",
    "example_id",
    "repeat",
]


def export_ratings(session: Session, *, sweep_id: int | None = None) -> list[dict[str, Any]]:
    """One flat row per vote (EXPORT_COLUMNS): run ids, both sides' version/model/grid, the verdict,
    the side shown left, rater, comment, auto flag and time. All sweeps when sweep_id is None."""
    stmt = select(Rating).order_by(col(Rating.id))
    if sweep_id is not None:
        require_sweep(session, sweep_id)
        stmt = stmt.where(Rating.sweep_id == sweep_id)
    ratings = list(session.exec(stmt))
    run_ids = {r.run_a_id for r in ratings} | {r.run_b_id for r in ratings}
    labels: dict[int, tuple[str, str, str, int | None, int]] = {}
    keys_of: dict[int, list[str]] = {}
    ids = sorted(run_ids)
    for start in range(0, len(ids), 500):
        stmt_runs = (
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
            .where(col(Run.id).in_(ids[start : start + 500]))
        )
        for rid, sid, prompt, number, model, params, example_id, repeat in session.exec(stmt_runs):
            if sid not in keys_of:
                keys_of[sid] = grid_keys(session.get(Sweep, sid))
            grid = grid_label(params, keys_of[sid])
            labels[rid] = (f"{prompt}@{number}", model, grid, example_id, repeat)
    rows = []
    for r in ratings:
        la = labels.get(r.run_a_id, ("", "", "", None, 0))
        lb = labels.get(r.run_b_id, ("", "", "", None, 0))
        winner = r.run_a_id if r.verdict == "a" else r.run_b_id if r.verdict == "b" else None
        rows.append(
            {
                "rating_id": r.id,
                "sweep_id": r.sweep_id,
                "created_at": _iso_utc(r.created_at),
                "rater": r.rater,
                "dimension": r.dimension,
                "verdict": r.verdict,
                "winner_run_id": winner,
                "shown_left": "a" if r.left_run_id == r.run_a_id else "b",
                "auto": bool(r.auto),
                "comment": r.comment,
                "run_a_id": r.run_a_id,
                "run_b_id": r.run_b_id,
                "left_run_id": r.left_run_id,
                "version_a": la[0],
                "version_b": lb[0],
                "model_a": la[1],
                "model_b": lb[1],
                "params_a": la[2],
                "params_b": lb[2],
                "example_id": la[3],
                "repeat": la[4],
            }
        )
    return rows


def _iso_utc(moment: datetime | None) -> str | None:
    # SQLite hands back naive datetimes; they were stored in UTC, so say so in the export.
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def ratings_csv(rows: list[dict[str, Any]]) -> str:
    """CSV of export rows (header always present); formula-like cells are neutralised."""
    buf = io.StringIO()
    columns = list(EXPORT_COLUMNS) + [k for r in rows for k in r if k not in EXPORT_COLUMNS]
    writer = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(columns)), extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: neutralise_formula(v) for k, v in r.items()})
    return buf.getvalue()


def ratings_json(rows: list[dict[str, Any]]) -> str:
    """JSON array of export rows."""
    return json.dumps(rows, indent=2, ensure_ascii=False, default=str)


def render_export(rows: list[dict[str, Any]], fmt: str) -> str:
    """Export rows as 'csv' or 'json' text."""
    if fmt == "csv":
        return ratings_csv(rows)
    if fmt == "json":
        return ratings_json(rows)
    raise ValidationError(f"Unknown export format {fmt!r}; use csv or json.")
