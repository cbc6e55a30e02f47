"""The winning versions of a sweep and the evidence (scores, tests, leaderboard, optimizations) they carry.

A winner is the best column of a sweep or a column not significantly worse than it (`sweep_winners`),
so a difference the rows cannot tell apart never decides which version ships.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, func, select

from workbench import metrics
from workbench.errors import ValidationError
from workbench.models import Optimization, Prompt, PromptVersion, Rating, Run, Sweep
from workbench.present import json_safe
from workbench.prompts import store
from workbench.sweeps.plan import require_sweep

ALPHA = 0.05  # the error rate of "significantly worse than the best"


def _ref(session: Session, version: PromptVersion | None) -> dict[str, Any] | None:
    if version is None:
        return None
    prompt = session.get(Prompt, version.prompt_id)
    return {"prompt": prompt.name, "version": version.number, "content_hash": version.content_hash}


def _has_ratings(session: Session, sweep_id: int) -> bool:
    return bool(
        session.exec(select(func.count()).select_from(Rating).where(Rating.sweep_id == sweep_id)).one()
    )


def _spec(sweep: Sweep) -> dict[str, Any]:
    return sweep.config.get("spec") or {}


class _Cache:
    """Per-export memo of sweep frames and leaderboards (many versions share one sweep)."""

    def __init__(self) -> None:
        self.frames: dict[int, Any] = {}
        self.boards: dict[int, Any] = {}

    def frame(self, session: Session, sweep_id: int):
        if sweep_id not in self.frames:
            from workbench.sweeps.summary import runs_frame

            self.frames[sweep_id] = runs_frame(session, sweep_id)
        return self.frames[sweep_id]

    def board(self, session: Session, sweep_id: int):
        if sweep_id not in self.boards:
            from workbench.rating import leaderboard

            board = None
            if _has_ratings(session, sweep_id):
                board = leaderboard.leaderboard_for(session, sweep_id=sweep_id, by="version")
                if not len(board) or int(board["votes"].sum()) == 0:
                    board = None  # votes along other dimensions say nothing about versions
            self.boards[sweep_id] = board
        return self.boards[sweep_id]


def sweep_winner(session: Session, *, sweep_id: int) -> tuple[PromptVersion, dict[str, Any]]:
    """The best version of a sweep and the rule that chose it (the first of `sweep_winners`)."""
    return sweep_winners(session, sweep_id=sweep_id)[0]


def sweep_winners(
    session: Session, *, sweep_id: int, alpha: float = ALPHA
) -> list[tuple[PromptVersion, dict[str, Any]]]:
    """The winning versions of a sweep, best first, each with the rule and evidence that made it one.

    With ratings: the top of the sweep's version leaderboard (one winner). Otherwise, on the
    sweep's first metric that can pick a winner: the column (version, model, grid) with the best
    mean, and every column not significantly worse than it, tied (a paired test of each column
    against the best on the rows both have, Holm-adjusted over those comparisons; see
    `workbench.stats`). A version wins when one of its columns does; its rule lists its winning
    columns with the test against the best as evidence.
    """
    return _sweep_winners(session, sweep_id, _Cache(), alpha)


def _sweep_winners(
    session: Session, sweep_id: int, memo: _Cache, alpha: float = ALPHA
) -> list[tuple[PromptVersion, dict[str, Any]]]:
    sweep = require_sweep(session, sweep_id)
    board = memo.board(session, sweep_id)
    if board is not None and len(board):
        top = board.sort_values(["rank", "score"], ascending=[True, False], kind="stable").iloc[0]
        version = store.resolve(session, str(top["entry"]))
        rule = {
            "sweep_id": sweep_id,
            "rule": "leaderboard",
            "metric": "bradley_terry",
            "value": json_safe(top["score"]),
            "rank": int(top["rank"]),
        }
        return [(version, rule)]
    df = memo.frame(session, sweep_id)
    # Only a metric where higher is better can name a winner ("length" would reward verbosity);
    # the sweep's own metrics come first, in the order they were configured.
    scored = {m.name: m for m in metrics.score_columns(df.columns) if m.can_pick_winner}
    configured = (_spec(sweep).get("scoring") or {}).get("metrics") or []
    candidates = [scored[name] for name in configured if name in scored] + list(scored.values())
    if not candidates:
        raise ValidationError(
            f"Sweep {sweep_id} has no scores and no ratings, so it has no winner: score its outputs "
            "with a metric such as exact, or rate them.",
            field="score",
        )
    return _tied_winners(session, sweep_id, df, candidates[0], alpha)


def _tied_winners(
    session: Session, sweep_id: int, df, metric: metrics.Metric, alpha: float
) -> list[tuple[PromptVersion, dict[str, Any]]]:
    """The best column and the columns not significantly worse than it, grouped by version."""
    from workbench.stats.columns import compare_columns
    from workbench.stats.paired import WORSE, significance_word

    done = df[(df["status"] == "done") & df[metric.column].notna()]
    means = done.groupby("column", sort=False)[metric.column].mean()
    if means.empty:
        raise ValidationError(f"Sweep {sweep_id} has no scored cells yet, so it has no winner.")
    best = str(means.idxmax())  # idxmax keeps the first of equal means (plan order)
    version_of = dict(zip(df["column"], df["version_id"], strict=True))
    model_of = dict(zip(df["column"], df["model"], strict=True))
    entries = [{"column": best, "model": model_of[best], "mean": json_safe(means[best]), "best": True}]
    for result in compare_columns(df, metric, best, alpha=alpha):
        # A column counts only with rows to compare; "worse" needs the (Holm) p and the interval.
        if result.n == 0 or significance_word(result, alpha, higher_is_better=True) == WORSE:
            continue
        label = result.b_label
        entries.append(
            {
                "column": label,
                "model": model_of[label],
                "mean": json_safe(means.get(label)),
                "best": False,
                "comparison": {**result.to_dict(), "verdict": significance_word(result, alpha)},
            }
        )
    by_version: dict[int, list[dict[str, Any]]] = {}
    for entry in entries:  # best first, then in summary order
        by_version.setdefault(int(version_of[entry["column"]]), []).append(entry)
    tied = len(entries) > 1
    out = []
    for version_id, columns in by_version.items():
        rule = {
            "sweep_id": sweep_id,
            "rule": "mean_score",
            "metric": metric.name,
            "value": columns[0]["mean"],
            "best": columns[0]["best"],
            "tied": tied,
            "best_column": best,
            "alpha": alpha,
            "method": "paired test of each column against the best on the rows both have, Holm-adjusted",
            "columns": columns,
        }
        out.append((session.get(PromptVersion, version_id), rule))
    return out


def _metrics(row: dict[str, Any], model: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if model is not None:
        out["model"] = model
    out.update(n=int(row["n"]), done=int(row["done"]), failed=int(row["failed"]), cached=int(row["cached"]))
    out["scores"] = {m.name: json_safe(row[m.mean_column]) for m in metrics.mean_columns(row)}
    for key in ("prompt_tokens", "completion_tokens"):
        out[key] = int(row[key])
    for key in ("cost_usd", "latency_p50_ms", "latency_p95_ms"):
        out[key] = json_safe(row.get(key))
    return out


def _evidence_sweep_id(session: Session, version_id: int) -> int | None:
    """The latest sweep in which this version has done cells."""
    stmt = select(func.max(Run.sweep_id)).where(Run.version_id == version_id, Run.status == "done")
    return session.exec(stmt).one()


def _sweep_evidence(session: Session, sweep_id: int, version: PromptVersion, memo: _Cache) -> dict | None:
    from workbench.sweeps.summary import summarize

    df = memo.frame(session, sweep_id)
    if df.empty:
        return None
    mine = df[df["version_id"] == version.id]
    if mine.empty:
        return None
    overall = summarize(mine.assign(column="all")).to_dict("records")[0]
    per_model = summarize(mine.assign(column=mine["model"])).to_dict("records")
    sweep = session.get(Sweep, sweep_id)
    return {
        "sweep_id": sweep_id,
        "sweep_name": sweep.name,
        "dataset": _spec(sweep).get("dataset"),
        "overall": _metrics(overall),
        "per_model": [_metrics(r, r["model"]) for r in per_model],
    }


def _leaderboard_evidence(
    session: Session, sweep_id: int, version: PromptVersion, memo: _Cache
) -> dict[str, Any] | None:
    board = memo.board(session, sweep_id)
    if board is None or not len(board):
        return None
    entry = store.resolve_name(session, version)
    hits = board.index[board["entry"] == entry].tolist()
    if not hits:
        return None
    row = board.loc[hits[0]]
    return {
        "sweep_id": sweep_id,
        "rank": int(row["rank"]),
        "position": int(board.index.get_loc(hits[0])) + 1,
        "entries": len(board),
        "score": json_safe(row["score"]),
        "ci_low": json_safe(row["ci_low"]),
        "ci_high": json_safe(row["ci_high"]),
        "votes": int(row["votes"]),
        "win_rate": json_safe(row["win_rate"]),
    }


def _optimization_evidence(session: Session, version: PromptVersion) -> list[dict[str, Any]]:
    stmt = (
        select(Optimization)
        .where(Optimization.output_version_id == version.id)
        .order_by(col(Optimization.id))
    )
    return [
        {
            "optimizer": o.optimizer,
            "metric": o.metric,
            "task_model": o.task_model,
            "baseline_score": json_safe(o.baseline_score),
            "final_score": json_safe(o.final_score),
            "input_version": _ref(session, session.get(PromptVersion, o.input_version_id)),
            # The held-out paired test and, when the result was saved against it, the override.
            "paired": json_safe((o.program or {}).get("paired")),
            "saved": json_safe((o.config or {}).get("saved")),
        }
        for o in session.exec(stmt)
    ]
