"""Progress of a running sweep and per-column summaries of its results.

A column is (version, model, grid params). Token counts include the cached prompt tokens and
reasoning tokens a provider reports (kept apart as `cached_tokens` / `reasoning_tokens`), and the
cost is what the provider bills for that usage. Aggregation happens in pandas over one query, which
stays fast for tens of thousands of cells (see tests/bench/bench_compare.py).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC
from typing import Any

import pandas as pd
from sqlalchemy import case, func
from sqlmodel import Session, col, select

from workbench import metrics
from workbench.models import Prompt, PromptVersion, Run, Score, Sweep, utcnow
from workbench.sweeps import outputs
from workbench.sweeps.plan import column_label, grid_keys, grid_label, require_sweep


@dataclass
class Progress:
    """Counts by status, cost so far and an ETA."""

    sweep_id: int
    status: str
    total: int
    done: int
    failed: int
    cancelled: int
    cached: int
    pending: int
    running: int
    cost_usd: float
    unpriced: int
    scoring_cost_usd: float  # what judge calls cost, on top of the cells' own cost
    elapsed_s: float | None
    eta_s: float | None
    cancel_requested: bool
    error: str | None

    @property
    def finished(self) -> int:
        """Cells that reached an end state (done, failed or cancelled)."""
        return self.done + self.failed + self.cancelled

    @property
    def remaining(self) -> int:
        """Cells still to run (pending or running)."""
        return self.pending + self.running

    def to_dict(self) -> dict[str, Any]:
        """The progress as plain data, with the derived counts."""
        return {**asdict(self), "finished": self.finished, "remaining": self.remaining}


def progress(session: Session, sweep_id: int) -> Progress:
    """Where a sweep stands now (one aggregate query)."""
    sweep = require_sweep(session, sweep_id)
    rows = session.exec(
        select(
            Run.status,
            func.count(),
            func.sum(case((col(Run.cached).is_(True), 1), else_=0)),
            func.sum(Run.cost_usd),
            func.sum(case((col(Run.cost_usd).is_(None) & (Run.status == "done"), 1), else_=0)),
        )
        .where(Run.sweep_id == sweep_id)
        .group_by(Run.status)
    ).all()
    counts = {status: int(n) for status, n, _c, _cost, _u in rows}
    cached = sum(int(c or 0) for _s, _n, c, _cost, _u in rows)
    cost = sum(float(cost or 0) for *_x, cost, _u in rows)
    unpriced = sum(int(u or 0) for *_x, u in rows)
    total = sum(counts.values())
    scoring_cost = session.exec(
        select(func.sum(Score.cost_usd)).join(Run, Run.id == Score.run_id).where(Run.sweep_id == sweep_id)
    ).one()
    elapsed = eta = None
    if sweep.started_at:
        started = sweep.started_at if sweep.started_at.tzinfo else sweep.started_at.replace(tzinfo=UTC)
        end = sweep.finished_at or utcnow()
        end = end if end.tzinfo else end.replace(tzinfo=UTC)
        elapsed = max(0.0, (end - started).total_seconds())
        finished_live = counts.get("done", 0) + counts.get("failed", 0) - cached
        remaining = counts.get("pending", 0) + counts.get("running", 0)
        if finished_live > 0 and remaining and sweep.status == "running":
            eta = elapsed / finished_live * remaining
    return Progress(
        sweep_id=sweep_id,
        status=sweep.status,
        total=total,
        done=counts.get("done", 0),
        failed=counts.get("failed", 0),
        cancelled=counts.get("cancelled", 0),
        cached=cached,
        scoring_cost_usd=float(scoring_cost or 0.0),
        pending=counts.get("pending", 0),
        running=counts.get("running", 0),
        cost_usd=cost,
        unpriced=unpriced,
        elapsed_s=elapsed,
        eta_s=eta,
        cancel_requested=sweep.cancel_requested,
        error=sweep.error,
    )


def runs_frame(session: Session, sweep_id: int) -> pd.DataFrame:
    """One row per cell with its column label, result fields and scores (one column per metric)."""
    stmt = (
        select(
            Run.id,
            Run.version_id,
            Prompt.name,
            PromptVersion.number,
            Run.model,
            Run.params,
            Run.example_id,
            Run.repeat_index,
            Run.status,
            Run.cached,
            Run.output,
            Run.tool_calls,
            Run.finish_reason,
            Run.error_kind,
            Run.error_message,
            Run.prompt_tokens,
            Run.completion_tokens,
            Run.cached_tokens,
            Run.reasoning_tokens,
            Run.cost_usd,
            Run.latency_ms,
            Run.ttft_ms,
            Run.attempts,
        )
        .join(PromptVersion, PromptVersion.id == Run.version_id)
        .join(Prompt, Prompt.id == PromptVersion.prompt_id)
        .where(Run.sweep_id == sweep_id)
        .order_by(col(Run.id))
    )
    columns = [
        "run_id",
        "version_id",
        "prompt",
        "version_number",
        "model",
        "params",
        "example_id",
        "repeat",
        "status",
        "cached",
        "output",
        "tool_calls",
        "finish_reason",
        "error_kind",
        "error_message",
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "reasoning_tokens",
        "cost_usd",
        "latency_ms",
        "ttft_ms",
        "attempts",
    ]
    df = pd.DataFrame(session.exec(stmt).all(), columns=columns)
    if df.empty:
        return df
    sweep = session.get(Sweep, sweep_id)
    keys = grid_keys(sweep)
    df["version"] = df["prompt"] + "@" + df["version_number"].astype(str)
    df["grid"] = df["params"].map(lambda p: grid_label(p, keys))
    df["column"] = [
        column_label(v, m, g) for v, m, g in zip(df["version"], df["model"], df["grid"], strict=True)
    ]
    df["params_json"] = df["params"].map(lambda p: json.dumps(p, sort_keys=True))
    scores = pd.DataFrame(
        session.exec(
            select(Score.run_id, Score.metric, Score.value)
            .join(Run, Run.id == Score.run_id)
            .where(Run.sweep_id == sweep_id)
        ).all(),
        columns=["run_id", "metric", "value"],
    )
    judge_cost = session.exec(
        select(Score.run_id, func.sum(Score.cost_usd))
        .join(Run, Run.id == Score.run_id)
        .where(Run.sweep_id == sweep_id, col(Score.cost_usd).is_not(None))
        .group_by(Score.run_id)
    ).all()
    df["scoring_cost_usd"] = df["run_id"].map(dict(judge_cost)).fillna(0.0) if judge_cost else 0.0
    # Only registry metrics get a column: a "scoring_error" row has no value, only a detail.
    scores = scores[scores["metric"].isin(list(metrics.METRICS))]
    if not scores.empty:
        wide = scores.pivot_table(index="run_id", columns="metric", values="value", aggfunc="first")
        wide.columns = [metrics.METRICS[name].column for name in wide.columns]
        df = df.merge(wide, left_on="run_id", right_index=True, how="left")
    return df


def data_version(session: Session, sweep_id: int) -> tuple:
    """Changes whenever a cell finishes (again) or a score is written: a cache key for views."""
    finished = session.exec(
        select(func.count(), func.max(Run.finished_at)).where(
            Run.sweep_id == sweep_id, col(Run.status).in_(["done", "failed", "cancelled"])
        )
    ).one()
    scores = session.exec(
        select(func.count(), func.max(Score.id))
        .join(Run, Run.id == Score.run_id)
        .where(Run.sweep_id == sweep_id)
    ).one()
    return (int(finished[0]), str(finished[1]), int(scores[0]), scores[1])


def latest_runs(session: Session, sweep_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """The most recently finished cells (for a live progress panel; does not load the whole sweep)."""
    sweep = session.get(Sweep, sweep_id)
    keys = grid_keys(sweep)
    stmt = (
        select(Run, Prompt.name, PromptVersion.number)
        .join(PromptVersion, PromptVersion.id == Run.version_id)
        .join(Prompt, Prompt.id == PromptVersion.prompt_id)
        .where(Run.sweep_id == sweep_id, col(Run.status).in_(["done", "failed"]))
        .order_by(col(Run.finished_at).desc(), col(Run.id).desc())
        .limit(limit)
    )
    out = []
    for run, name, number in session.exec(stmt).all():
        grid = grid_label(run.params, keys)
        out.append(
            {
                "column": column_label(f"{name}@{number}", run.model, grid),
                "row": run.example_id,
                "status": run.status,
                "output / error": outputs.view(run.output, run.tool_calls).text
                if run.status == "done"
                else f"⚠ {run.error_kind}: {run.error_message}",
                "tokens": run.completion_tokens,
                "latency ms": None if run.latency_ms is None else round(run.latency_ms),
            }
        )
    return out


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Per column: n, failures, mean (and std) of each score, tokens, cost, latency p50/p95, TTFT p50."""
    if df.empty:
        return pd.DataFrame(columns=["column", "n", "done", "failed"])
    scored = metrics.score_columns(df.columns)
    out = []
    for column, g in df.groupby("column", sort=False):
        done = g[g["status"] == "done"]
        row: dict[str, Any] = {
            "column": column,
            "version": g["version"].iat[0],
            "model": g["model"].iat[0],
            "grid": g["grid"].iat[0],
            "n": len(g),
            "done": len(done),
            "failed": int((g["status"] == "failed").sum()),
            "cached": int(g["cached"].sum()),
            "truncated": int((done["finish_reason"] == "length").sum()),
            # A reply that only calls tools has no text, and is not empty.
            "empty": int(
                (
                    (done["output"].fillna("").str.strip() == "")
                    & ~done["tool_calls"].map(lambda c: isinstance(c, list) and bool(c))
                ).sum()
            ),
        }
        for metric in scored:
            vals = done[metric.column].dropna()
            row[metric.mean_column] = float(vals.mean()) if len(vals) else None
            row[metric.std_column] = float(vals.std(ddof=1)) if len(vals) > 1 else None
        row["prompt_tokens"] = int(done["prompt_tokens"].fillna(0).sum())
        row["completion_tokens"] = int(done["completion_tokens"].fillna(0).sum())
        # Parts of the two counts above, as the provider reported them (None: it reported none).
        # The cost below is what was billed for the real usage, a cache discount included: it is
        # never an estimate that assumes a cache hit.
        for key in ("cached_tokens", "reasoning_tokens"):
            reported = done[key].dropna()
            row[key] = int(reported.sum()) if len(reported) else None
        priced = done["cost_usd"].dropna()
        row["cost_usd"] = float(priced.sum()) if len(priced) == len(done) else None  # None: unknown
        row["scoring_cost_usd"] = float(g["scoring_cost_usd"].sum()) if "scoring_cost_usd" in g else 0.0
        lat = done["latency_ms"].dropna()
        row["latency_p50_ms"] = float(lat.quantile(0.5)) if len(lat) else None
        row["latency_p95_ms"] = float(lat.quantile(0.95)) if len(lat) else None
        ttft = done["ttft_ms"].dropna()
        row["ttft_p50_ms"] = float(ttft.quantile(0.5)) if len(ttft) else None
        out.append(row)
    return pd.DataFrame(out)


def list_sweeps(session: Session, limit: int = 50) -> list[tuple[Sweep, Progress]]:
    """Recent sweeps with their progress, newest first."""
    sweeps = session.exec(select(Sweep).order_by(col(Sweep.id).desc()).limit(limit)).all()
    return [(s, progress(session, s.id)) for s in sweeps]


def field_scores_frame(session: Session, sweep_id: int) -> pd.DataFrame:
    """Per column and JSON field: the mean json_match score of that field over the column's rows
    (columns: column, field, mean, n), from the per-field detail of each json_match Score."""
    from workbench.sweeps.scoring import json_match_fields

    df = runs_frame(session, sweep_id)
    empty = pd.DataFrame(columns=["column", "field", "mean", "n"])
    if df.empty:
        return empty
    details = session.exec(
        select(Score.run_id, Score.detail)
        .join(Run, Run.id == Score.run_id)
        .where(Run.sweep_id == sweep_id, Score.metric == "json_match")
    ).all()
    column_of = dict(zip(df["run_id"], df["column"], strict=True))
    rows = [
        {"column": column_of[run_id], "field": name, "score": value}
        for run_id, detail in details
        for name, value in json_match_fields(detail).items()
    ]
    if not rows:
        return empty
    long = pd.DataFrame(rows)
    out = long.groupby(["column", "field"], sort=False)["score"].agg(["mean", "count"]).reset_index()
    return out.rename(columns={"count": "n"})
