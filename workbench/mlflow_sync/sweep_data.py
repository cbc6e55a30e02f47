"""What a sweep looks like in MLflow, read from the workbench database: plain data, no mlflow.

`gather` builds one `SweepRecord` (the parent run: sweep config, dataset and grid as params, totals
as metrics) with one `ColumnRecord` per sweep column (the child runs: version, model and the cells'
params as params; the column's summary as metrics under the summary's own names, e.g.
`score_exact_mean`, `failed`, `latency_p95_ms`; its cells as an outputs table; the version's
messages as text). When the sweep has votes, each rated dimension's leaderboard is a table on the
parent and each column's entry metrics (`rating_<by>_score`, `_rank`, ...); when two or more columns
have scores, paired comparisons against a baseline column (`workbench.stats`, Holm-adjusted) are a
table on the parent and `paired_<metric>_diff`, `_ci_low`, `_ci_high`, `_p` on each other column.

Everything that leaves passes `providers.redact.scrub`, the redaction the exports use.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlmodel import Session, col, func, select

from workbench import datasets, metrics
from workbench.errors import WorkbenchError
from workbench.models import PromptVersion, Rating, Run
from workbench.present import iso_utc, json_safe
from workbench.providers.redact import scrub, secret_values
from workbench.sweeps.plan import require_sweep
from workbench.sweeps.summary import progress, runs_frame, summarize

MAX_PARAM_CHARS = 6000  # MLflow refuses longer param values
TEXT_COLUMNS = ("column", "version", "model", "grid")
# Per-cell fields of the outputs table, in this order, when the frame has them.
OUTPUT_FIELDS = (
    "run_id", "row", "repeat", "status", "cached", "output", "tool_calls", "finish_reason",
    "error_kind", "error_message", "prompt_tokens", "completion_tokens", "cached_tokens",
    "reasoning_tokens", "cost_usd", "latency_ms", "ttft_ms", "attempts",
)  # fmt: skip
BOARD_METRICS = ("score", "ci_low", "ci_high", "rank", "votes", "win_rate")
PAIRED_METRICS = {"diff": "diff", "ci_low": "ci_low", "ci_high": "ci_high"}


@dataclass
class ColumnRecord:
    """One sweep column as an MLflow child run."""

    label: str
    key: str  # stable id of the column within its sweep (a hash of the label)
    version: str  # "prompt@N"
    content_hash: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    outputs: list[dict[str, Any]]
    messages_text: str


@dataclass
class SweepRecord:
    """One sweep as an MLflow parent run with its columns."""

    sweep_id: int
    key: str  # stable id of the sweep across databases: its id and creation time, hashed
    name: str
    status: str
    start_ms: int | None
    end_ms: int | None
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    config: dict[str, Any]
    summary: list[dict[str, Any]]
    columns: list[ColumnRecord]
    leaderboards: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _key(*parts: Any) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:16]


def _ms(moment) -> int | None:
    return int(moment.timestamp() * 1000) if moment else None


def param_text(value: Any) -> str:
    """A param value as MLflow stores it: text, JSON for structures, cut to MLflow's limit."""
    text = value if isinstance(value, str) else json.dumps(json_safe(value), sort_keys=True, default=str)
    return text if len(text) <= MAX_PARAM_CHARS else text[: MAX_PARAM_CHARS - 1] + "…"


def _numbers(row: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, float]:
    """The finite numbers of a record (booleans as 0/1), for metrics."""
    out = {}
    for name, value in row.items():
        value = json_safe(value)
        if name in skip or value is None or isinstance(value, str):
            continue
        if isinstance(value, (bool, int, float)):
            out[name] = float(value)
    return out


def messages_text(messages: list[dict[str, Any]]) -> str:
    """Chat messages as readable text: a `[role]` line, then the content."""
    return "\n\n".join(f"[{m.get('role')}]\n{m.get('content') or ''}" for m in messages)


def gather(session: Session, sweep_id: int, *, baseline: str | None = None) -> SweepRecord:
    """Everything `log_sweep` sends for this sweep (SweepNotFoundError when there is none)."""
    sweep = require_sweep(session, sweep_id)
    secrets = secret_values()
    df = runs_frame(session, sweep_id)
    table = summarize(df) if not df.empty else pd.DataFrame()
    summary = [{k: json_safe(v) for k, v in r.items()} for r in table.to_dict("records")]
    prog = progress(session, sweep_id)
    spec = dict((sweep.config or {}).get("spec") or {})
    params = {"sweep_id": str(sweep.id), "sweep_name": sweep.name or ""}
    # The spec's "params" is the grid; under that name it would read as the sweep's parameters.
    params.update(
        {
            ("grid" if k == "params" else k): param_text(v)
            for k, v in spec.items()
            if v not in (None, "", [], {})
        }
    )
    totals = {
        "cells": prog.total, "done": prog.done, "failed": prog.failed, "cancelled": prog.cancelled,
        "cached": prog.cached, "pending": prog.pending + prog.running, "columns": len(summary),
        "scoring_cost_usd": prog.scoring_cost_usd, "elapsed_s": prog.elapsed_s,
        "prompt_tokens": sum(r.get("prompt_tokens") or 0 for r in summary),
        "completion_tokens": sum(r.get("completion_tokens") or 0 for r in summary),
    }  # fmt: skip
    tags = {"workbench.status": sweep.status, "workbench.created_at": iso_utc(sweep.created_at) or ""}
    if prog.unpriced:  # an unpriced cell makes the total unknown, never a silent $0
        tags["workbench.cost"] = f"unknown: {prog.unpriced} cells have no price"
    else:
        totals["cost_usd"] = prog.cost_usd
    record = SweepRecord(
        sweep_id=sweep.id,
        key=_key(sweep.id, iso_utc(sweep.created_at)),
        name=f"sweep {sweep.id}" + (f": {sweep.name}" if sweep.name else ""),
        status=sweep.status,
        start_ms=_ms(sweep.started_at or sweep.created_at),
        end_ms=_ms(sweep.finished_at),
        params=params,
        metrics=_numbers(totals),
        tags=tags,
        config=sweep.config or {},
        summary=summary,
        columns=_columns(session, df, summary),
    )
    if not df.empty:
        _add_ratings(session, record, df)
        _add_comparisons(record, df, baseline)
    return scrub_record(record, secrets)


def _columns(session: Session, df: pd.DataFrame, summary: list[dict[str, Any]]) -> list[ColumnRecord]:
    if df.empty:
        return []
    ids = [int(i) for i in df["example_id"].dropna().unique()]
    rows = datasets.examples_by_id(session, ids)
    out = []
    for row in summary:
        label = row["column"]
        cells = df[df["column"] == label]
        first = cells.iloc[0]
        version = session.get(PromptVersion, int(first["version_id"]))
        cell_params = dict(first["params"] or {})
        params = {k: param_text(v) for k, v in cell_params.items() if v is not None}
        params.update(
            {
                "version": row["version"],
                "prompt": str(first["prompt"]),
                "version_number": str(int(first["version_number"])),
                "model": row["model"],
                "column": label,
            }
        )
        if row.get("grid"):
            params["grid"] = row["grid"]
        rendered = session.exec(select(Run.messages).where(Run.id == int(first["run_id"]))).first() or []
        text = "Template (Jinja), as saved in the workbench:\n\n" + messages_text(version.messages)
        if rendered:
            text += f"\n\n\nRendered for the column's first cell (run {int(first['run_id'])}):\n\n"
            text += messages_text(rendered)
        out.append(
            ColumnRecord(
                label=label,
                key=_key(label),
                version=row["version"],
                content_hash=version.content_hash,
                params=params,
                metrics=_numbers(row, skip=TEXT_COLUMNS),
                tags={"workbench.version_id": str(version.id)},
                outputs=_outputs(cells, rows),
                messages_text=text,
            )
        )
    return out


def _outputs(cells: pd.DataFrame, rows: dict[int, Any]) -> list[dict[str, Any]]:
    """The column's cells as table rows: the row's inputs and expected answer, the result, scores."""
    scored = [m.column for m in metrics.score_columns(cells.columns)]
    out = []
    for cell in cells.to_dict("records"):
        example = rows.get(int(cell["example_id"])) if pd.notna(cell.get("example_id")) else None
        item: dict[str, Any] = {
            "row": example.position + 1 if example is not None else None,
            "inputs": example.inputs if example is not None else None,
            "expected": example.expected if example is not None else None,
        }
        item.update({k: json_safe(cell[k]) for k in OUTPUT_FIELDS if k in cell and k != "row"})
        item.update({c: json_safe(cell[c]) for c in scored})
        out.append(item)
    return out


def _rated_dimensions(session: Session, sweep_id: int) -> list[str]:
    from workbench.rating.entries import DIMENSIONS

    stmt = select(Rating.dimension).where(Rating.sweep_id == sweep_id, col(Rating.auto).is_(False))
    found = {d or "column" for d in session.exec(stmt.distinct()).all()}
    return [d for d in DIMENSIONS if d in found]


def _add_ratings(session: Session, record: SweepRecord, df: pd.DataFrame) -> None:
    """Each rated dimension's leaderboard, and each column's place on it."""
    from workbench.rating.entries import entry_key
    from workbench.rating.leaderboard import leaderboard_for

    votes = session.exec(
        select(func.count()).where(Rating.sweep_id == record.sweep_id, col(Rating.auto).is_(False))
    ).one()
    if votes:
        record.metrics["ratings_votes"] = float(votes)
    for by in _rated_dimensions(session, record.sweep_id):
        try:
            board = leaderboard_for(session, sweep_id=record.sweep_id, by=by)
        except WorkbenchError as exc:
            record.warnings.append(f"leaderboard by {by} not logged: {exc}")
            continue
        if board.empty or not int(board["votes"].sum()):
            continue
        rows = [{k: json_safe(v) for k, v in r.items()} for r in board.to_dict("records")]
        record.leaderboards[by] = rows
        by_entry = {r["entry"]: r for r in rows}
        for column in record.columns:
            first = df[df["column"] == column.label].iloc[0].to_dict()
            entry = by_entry.get(entry_key(first, by))
            if entry is None:
                continue
            column.tags[f"workbench.rating.{by}.entry"] = str(entry["entry"])
            for name in BOARD_METRICS:
                if entry.get(name) is not None:
                    column.metrics[f"rating_{by}_{name}"] = float(entry[name])


def _add_comparisons(record: SweepRecord, df: pd.DataFrame, baseline: str | None) -> None:
    """Paired tests of every column against the baseline (default: the first column), per metric."""
    from workbench.stats.columns import compare_columns
    from workbench.stats.paired import significance_word

    if len(record.columns) < 2:
        return
    base = baseline or record.columns[0].label
    scored = [m for m in metrics.score_columns(df.columns) if df[m.column].notna().any()]
    by_label = {c.label: c for c in record.columns}
    for m in scored:
        try:
            results = compare_columns(df, m, base)
        except WorkbenchError as exc:
            if baseline:  # the user named it: a wrong name is their error to see
                raise
            record.warnings.append(f"paired comparisons on {m.name} not logged: {exc}")
            continue
        for result in results:
            row = {k: json_safe(v) for k, v in result.to_dict().items()}
            word = significance_word(result, higher_is_better=m.higher_is_better)
            row.update({"metric_label": m.label, "verdict": word, "p": json_safe(result.p)})
            record.comparisons.append(row)
            record.tags["workbench.baseline"] = result.a_label
            column = by_label.get(result.b_label)
            if column is None:
                continue
            column.tags[f"workbench.paired.{m.name}"] = f"{word} than {result.a_label}"
            for name, source in PAIRED_METRICS.items():
                value = json_safe(getattr(result, source))
                if value is not None:
                    column.metrics[f"paired_{m.name}_{name}"] = float(value)
            if json_safe(result.p) is not None:
                column.metrics[f"paired_{m.name}_p"] = float(result.p)


def scrub_record(record: SweepRecord, secrets: list[str]) -> SweepRecord:
    """The record with every secret value redacted from its texts."""
    if not secrets:
        return record
    for target in (record, *record.columns):
        target.params = scrub(target.params, secrets)
        target.tags = scrub(target.tags, secrets)
    record.config = scrub(record.config, secrets)
    record.summary = scrub(record.summary, secrets)
    record.leaderboards = scrub(record.leaderboards, secrets)
    record.comparisons = scrub(record.comparisons, secrets)
    record.warnings = scrub(record.warnings, secrets)
    for column in record.columns:
        column.label = scrub(column.label, secrets)
        column.outputs = scrub(column.outputs, secrets)
        column.messages_text = scrub(column.messages_text, secrets)
    return record
