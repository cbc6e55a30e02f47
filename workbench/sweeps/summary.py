"""Progress of a running sweep and per-column summaries of its results.

A column is (version, model, grid params). Token counts include the cached prompt tokens and
reasoning tokens a provider reports (kept apart as `cached_tokens` / `reasoning_tokens`), and the
cost is what the provider bills for that usage. Aggregation happens in pandas over one query, which
stays fast for tens of thousands of cells (see tests/bench/bench_compare.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import UTC
from operator import itemgetter
from typing import Any

import pandas as pd
from sqlalchemy import String, case, cast, func
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


# The cells' fields as runs_frame names them. `params` is read as its JSON text and parsed once
# per distinct parameter set (a sweep has a handful of them): parsing, labelling and serialising
# every cell's copy was most of the time on a big sweep.
_RUN_FIELDS = {
    "run_id": Run.id,
    "version_id": Run.version_id,
    "prompt": Prompt.name,
    "version_number": PromptVersion.number,
    "model": Run.model,
    "params": cast(Run.params, String),
    "example_id": Run.example_id,
    "repeat": Run.repeat_index,
    "status": Run.status,
    "cached": Run.cached,
    "output": Run.output,
    "tool_calls": Run.tool_calls,
    "finish_reason": Run.finish_reason,
    "error_kind": Run.error_kind,
    "error_message": Run.error_message,
    "prompt_tokens": Run.prompt_tokens,
    "completion_tokens": Run.completion_tokens,
    "cached_tokens": Run.cached_tokens,
    "reasoning_tokens": Run.reasoning_tokens,
    "cost_usd": Run.cost_usd,
    "latency_ms": Run.latency_ms,
    "ttft_ms": Run.ttft_ms,
    "attempts": Run.attempts,
}


def runs_frame(session: Session, sweep_id: int) -> pd.DataFrame:
    """One row per cell with its column label, result fields and scores (one column per metric).

    Columns: the fields above (`params` a dict), then `version` ("prompt@N"), `grid` (the sweep's
    grid values), `column` (the column label), `params_json` (the params as sorted JSON),
    `scoring_cost_usd` (what judging the cell cost) and one `score_<metric>` column per registry
    metric with at least one value, in metric-name order. The rows come as plain tuples through
    the connection (no ORM row objects) and the labels are made once per distinct value.
    """
    stmt = (
        select(*_RUN_FIELDS.values())
        .join(PromptVersion, PromptVersion.id == Run.version_id)
        .join(Prompt, Prompt.id == PromptVersion.prompt_id)
        .where(Run.sweep_id == sweep_id)
    )
    # Sorted here, not by the database: SQLite reads the sweep's cells through its (sweep, status)
    # index and would sort them in a temporary B-tree, which costs more than this sort.
    rows = sorted((tuple(row) for row in _core_rows(session, stmt)), key=itemgetter(0))
    df = pd.DataFrame(rows, columns=list(_RUN_FIELDS))
    if df.empty:
        return df
    keys = grid_keys(session.get(Sweep, sweep_id))
    texts = [row[5] for row in rows]
    params = {text: None if text is None else json.loads(text) for text in dict.fromkeys(texts)}
    grids = {text: grid_label(p, keys) for text, p in params.items()}
    versions = {pair: f"{pair[0]}@{pair[1]}" for pair in dict.fromkeys((row[2], row[3]) for row in rows)}
    version = [versions[row[2], row[3]] for row in rows]
    grid = [grids[text] for text in texts]
    columns = list(zip(version, [row[4] for row in rows], grid, strict=True))
    labels = {key: column_label(*key) for key in dict.fromkeys(columns)}
    df["params"] = [params[text] for text in texts]
    df["version"] = version
    df["grid"] = grid
    df["column"] = [labels[key] for key in columns]
    dumped = {text: json.dumps(p, sort_keys=True) for text, p in params.items()}
    df["params_json"] = [dumped[text] for text in texts]
    return _with_scores(session, sweep_id, df)


def _core_rows(session: Session, stmt: Any) -> list:
    """The rows of a column query read through the session's connection, without the ORM's row
    handling (a third of the fetch on a big sweep); pending changes are flushed first, as the
    session's own queries would."""
    if session.autoflush:
        session.flush()
    return session.connection().execute(stmt).all()


def _with_scores(session: Session, sweep_id: int, df: pd.DataFrame) -> pd.DataFrame:
    """Add scoring_cost_usd and one column per registry metric with a value (as a pivot would)."""
    judge_cost = _core_rows(
        session,
        select(Score.run_id, func.sum(Score.cost_usd))
        .join(Run, Run.id == Score.run_id)
        .where(Run.sweep_id == sweep_id, col(Score.cost_usd).is_not(None))
        .group_by(Score.run_id),
    )
    df["scoring_cost_usd"] = df["run_id"].map(dict(judge_cost)).fillna(0.0) if judge_cost else 0.0
    # Only registry metrics get a column: a "scoring_error" row has no value, only a detail. A
    # metric gets a column when one of its scores has a value; a cell without one is NaN. (The
    # cells' ids as a subquery, and the metrics picked here: SQLite runs that query fastest.)
    values: dict[str, dict[int, float]] = {}
    cells = select(Run.id).where(Run.sweep_id == sweep_id)
    scores = _core_rows(
        session, select(Score.run_id, Score.metric, Score.value).where(col(Score.run_id).in_(cells))
    )
    for run_id, metric, value in scores:
        if value is not None and metric in metrics.METRICS and not math.isnan(value):
            values.setdefault(metric, {}).setdefault(run_id, value)
    for name in sorted(values):
        df[metrics.METRICS[name].column] = df["run_id"].map(values[name])
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
