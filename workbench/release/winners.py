"""The winning version of a sweep and the evidence (scores, leaderboard, optimizations) a release carries."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, func, select

from workbench.errors import NotFoundError, ValidationError
from workbench.models import Optimization, Prompt, PromptVersion, Rating, Run, Sweep
from workbench.prompts.store import store


def _num(value: Any) -> float | int | None:
    """A plain number, or None for None/NaN (pandas writes NaN for a missing mean)."""
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    if f != f:
        return None
    return int(value) if isinstance(value, int) else f


def _ref(session: Session, version: PromptVersion | None) -> dict[str, Any] | None:
    if version is None:
        return None
    prompt = session.get(Prompt, version.prompt_id)
    return {"prompt": prompt.name, "version": version.number, "content_hash": version.content_hash}


def _sweep_or_error(session: Session, sweep_id: int) -> Sweep:
    sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        raise NotFoundError(f"No sweep with id {sweep_id}. List them with: python -m workbench sweep list")
    return sweep


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
    """The winning version of a sweep and the rule that chose it.

    With ratings, the top of the sweep's version leaderboard; otherwise the best mean of the
    sweep's first score metric over done cells.
    """
    return _sweep_winner(session, sweep_id, _Cache())


def _sweep_winner(session: Session, sweep_id: int, memo: _Cache) -> tuple[PromptVersion, dict[str, Any]]:
    sweep = _sweep_or_error(session, sweep_id)
    board = memo.board(session, sweep_id)
    if board is not None and len(board):
        top = board.sort_values(["rank", "score"], ascending=[True, False], kind="stable").iloc[0]
        version = store.resolve(session, str(top["entry"]))
        rule = {
            "sweep_id": sweep_id,
            "rule": "leaderboard",
            "metric": "bradley_terry",
            "value": _num(top["score"]),
            "rank": int(top["rank"]),
        }
        return version, rule
    df = memo.frame(session, sweep_id)
    score_cols = [c for c in df.columns if c.startswith("score_")]
    configured = [f"score_{m}" for m in (_spec(sweep).get("scoring") or {}).get("metrics") or []]
    from workbench.sweeps.scoring import QUALITY_METRICS

    # Only a metric where higher is better can name a winner ("length" would reward verbosity).
    quality = [c for c in score_cols if c.removeprefix("score_") in QUALITY_METRICS]
    metric_col = next((c for c in configured if c in quality), quality[0] if quality else None)
    if metric_col is None:
        raise ValidationError(
            f"Sweep {sweep_id} has no scores and no ratings, so it has no winner: run it with --score "
            "(for example exact) or rate its outputs on the Rate page."
        )
    done = df[df["status"] == "done"]
    means = done.groupby("version_id", sort=False)[metric_col].mean().dropna()
    if means.empty:
        raise ValidationError(f"Sweep {sweep_id} has no scored cells yet, so it has no winner.")
    best_id = int(means.idxmax())  # idxmax keeps the first of equal means (plan order)
    rule = {
        "sweep_id": sweep_id,
        "rule": "mean_score",
        "metric": metric_col.removeprefix("score_"),
        "value": _num(means.max()),
    }
    return session.get(PromptVersion, best_id), rule


def _metrics(row: dict[str, Any], model: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if model is not None:
        out["model"] = model
    out.update(n=int(row["n"]), done=int(row["done"]), failed=int(row["failed"]), cached=int(row["cached"]))
    out["scores"] = {
        k.removeprefix("score_").removesuffix("_mean"): _num(v)
        for k, v in row.items()
        if k.startswith("score_") and k.endswith("_mean")
    }
    for key in ("prompt_tokens", "completion_tokens"):
        out[key] = int(row[key])
    for key in ("cost_usd", "latency_p50_ms", "latency_p95_ms"):
        out[key] = _num(row.get(key))
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
        "score": _num(row["score"]),
        "ci_low": _num(row["ci_low"]),
        "ci_high": _num(row["ci_high"]),
        "votes": int(row["votes"]),
        "win_rate": _num(row["win_rate"]),
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
            "baseline_score": _num(o.baseline_score),
            "final_score": _num(o.final_score),
            "input_version": _ref(session, session.get(PromptVersion, o.input_version_id)),
        }
        for o in session.exec(stmt)
    ]
