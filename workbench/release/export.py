"""Export prompt versions (with the evidence that made them winners), runs and ratings as JSON / CSV.

JSON is the lossless format, described by `workbench/schemas/export-v1.schema.json` and read back
by `workbench.release.imports`. CSV is one flat row per version / cell / vote for spreadsheets and pandas,
with every text cell that a spreadsheet would run as a formula neutralised. Nothing secret leaves:
values of key-like environment variables are redacted from every export, whatever field they hit.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

import workbench
from workbench.datasets import to_csv
from workbench.errors import NotFoundError, ValidationError
from workbench.models import Example, Prompt, PromptVersion, Run, Score, Sweep, utcnow
from workbench.prompts.store import store
from workbench.providers.redact import scrub
from workbench.release.winners import (
    _Cache,
    _evidence_sweep_id,
    _leaderboard_evidence,
    _optimization_evidence,
    _ref,
    _spec,
    _sweep_evidence,
    _sweep_or_error,
    sweep_winner,
)

SCHEMA_VERSION = 1


SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "export-v1.schema.json"


FORMATS = ("csv", "json")


@cache
def load_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the JSON export document."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@dataclass
class Selection:
    """Which versions to export; filters combine (all versions when none is given).

    `prompts` holds NAME (every version of it), NAME@N or NAME:label; `label` keeps versions
    carrying that label; `winners` keeps the winning version of that sweep id.
    """

    prompts: list[str] = field(default_factory=list)
    label: str | None = None
    winners: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, [])}


def _iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    if ts.tzinfo is None:  # SQLite hands back naive datetimes; they were stored as UTC
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).isoformat()


def version_record(
    session: Session,
    version: PromptVersion,
    *,
    evidence_sweep_id: int | None = None,
    winner: dict[str, Any] | None = None,
    _memo: _Cache | None = None,
) -> dict[str, Any]:
    """The lossless JSON record of one version, with its evidence (schema: `$defs/version`)."""
    memo = _memo or _Cache()
    prompt = session.get(Prompt, version.prompt_id)
    labels = store.labels_by_version(session, version.prompt_id).get(version.id, [])
    parent = session.get(PromptVersion, version.parent_id) if version.parent_id else None
    sweep_id = evidence_sweep_id if evidence_sweep_id is not None else _evidence_sweep_id(session, version.id)
    evidence = {
        "winner": winner,
        "sweep": _sweep_evidence(session, sweep_id, version, memo) if sweep_id else None,
        "leaderboard": _leaderboard_evidence(session, sweep_id, version, memo) if sweep_id else None,
        "optimizations": _optimization_evidence(session, version),
    }
    return {
        "prompt": prompt.name,
        "prompt_description": prompt.description,
        "version": version.number,
        "messages": [{"role": m["role"], "content": m["content"]} for m in version.messages],
        "params": version.params,
        "variables": list(version.variables),
        "content_hash": version.content_hash,
        "original_hash": version.original_hash,
        "labels": sorted(labels),
        "parent": _ref(session, parent),
        # The provenance of the content: an imported version reports the source it was exported
        # with, so export -> import -> export gives the same record apart from timestamps.
        "source": version.origin_source or version.source,
        "note": version.note,
        "created_at": _iso(version.created_at),
        "imported_at": _iso(version.created_at) if version.source == "import" else None,
        "evidence": evidence,
    }


def select_versions(
    session: Session, *, selection: Selection
) -> list[tuple[PromptVersion, dict[str, Any] | None]]:
    """The versions a selection names, by prompt name and number, each with its winner rule (or None)."""
    chosen: dict[int, PromptVersion] | None = None
    if selection.prompts:
        chosen = {}
        for ref in selection.prompts:
            r = store.VersionRef.parse(ref)
            if r.number is None and not r.label:
                prompt = store.require_prompt(session, r.name)
                chosen.update({v.id: v for v in store.versions_of(session, prompt.id)})
            else:
                v = store.resolve(session, r)
                chosen[v.id] = v
    if selection.label:
        from workbench.models import Label

        ids = set(session.exec(select(Label.version_id).where(Label.name == selection.label)).all())
        if not ids:
            raise NotFoundError(f"No version carries the label '{selection.label}'.")
        labelled = {
            v.id: v for v in session.exec(select(PromptVersion).where(col(PromptVersion.id).in_(ids)))
        }
        chosen = labelled if chosen is None else {k: v for k, v in chosen.items() if k in labelled}
    winners: dict[int, dict[str, Any]] = {}
    if selection.winners is not None:
        version, rule = sweep_winner(session, sweep_id=selection.winners)
        winners[version.id] = rule
        chosen = {version.id: version} if chosen is None or version.id in chosen else {}
    if chosen is None:
        chosen = {v.id: v for v in session.exec(select(PromptVersion))}
    names = {p.id: p.name for p in session.exec(select(Prompt))}
    ordered = sorted(chosen.values(), key=lambda v: (names[v.prompt_id], v.number))
    return [(v, winners.get(v.id)) for v in ordered]


def _envelope(selection: dict[str, Any] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "exported_at": _iso(utcnow()),
        "workbench_version": workbench.__version__,
    }
    if selection is not None:
        doc["selection"] = selection
    return doc


def versions_document(session: Session, *, selection: Selection | None = None) -> dict[str, Any]:
    """The JSON export document of the selected versions (all when the selection is empty)."""
    selection = selection or Selection()
    memo = _Cache()
    records = [
        version_record(session, v, evidence_sweep_id=selection.winners, winner=rule, _memo=memo)
        for v, rule in select_versions(session, selection=selection)
    ]
    return scrub({**_envelope(selection.to_dict()), "versions": records})


def version_row(record: dict[str, Any]) -> dict[str, Any]:
    """One flat CSV row of a version record: messages as JSON text, headline metrics as columns."""
    ev = record.get("evidence") or {}
    parent = record.get("parent")
    row: dict[str, Any] = {
        "prompt": record["prompt"],
        "version": record["version"],
        "labels": ", ".join(record["labels"]),
        "source": record["source"],
        "parent": f"{parent['prompt']}@{parent['version']}" if parent else "",
        "content_hash": record["content_hash"],
        "original_hash": record.get("original_hash") or "",
        "created_at": record["created_at"],
        "note": record["note"],
        "variables": ", ".join(record["variables"]),
        "params": json.dumps(record["params"], ensure_ascii=False, sort_keys=True),
        "messages": json.dumps(record["messages"], ensure_ascii=False),
    }
    winner = ev.get("winner") or {}
    row["winner_rule"] = winner.get("rule", "")
    sweep = ev.get("sweep")
    row["sweep_id"] = sweep["sweep_id"] if sweep else None
    overall = (sweep or {}).get("overall") or {}
    row["n"] = overall.get("n")
    row["failed"] = overall.get("failed")
    for metric, value in (overall.get("scores") or {}).items():
        row[f"score_{metric}_mean"] = value
    for key in ("cost_usd", "latency_p50_ms", "latency_p95_ms"):
        row[key] = overall.get(key)
    board = ev.get("leaderboard") or {}
    for key in ("rank", "score", "ci_low", "ci_high", "votes", "win_rate"):
        row[f"leaderboard_{key}"] = board.get(key)
    opts = ev.get("optimizations") or []
    last = opts[-1] if opts else {}
    row["optimizer"] = last.get("optimizer", "")
    row["optimization_baseline_score"] = last.get("baseline_score")
    row["optimization_final_score"] = last.get("final_score")
    return row


def runs_rows(session: Session, *, sweep_id: int) -> list[dict[str, Any]]:
    """One row per cell of a sweep: what ran, with which variables, what came out, and its scores."""
    sweep = _sweep_or_error(session, sweep_id)
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
    metrics: list[str] = []
    for sc in session.exec(score_stmt):
        scores.setdefault(sc.run_id, {})[sc.metric] = sc.value
        if sc.metric not in metrics:
            metrics.append(sc.metric)
    example_ids = {r.example_id for r, _n, _v in results if r.example_id is not None}
    examples = (
        {e.id: e for e in session.exec(select(Example).where(col(Example.id).in_(example_ids)))}
        if example_ids
        else {}
    )
    from workbench.sweeps.plan import grid_keys, grid_label

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
            "finish_reason": run.finish_reason,
            "error_kind": run.error_kind,
            "error_message": run.error_message,
            "prompt_tokens": run.prompt_tokens,
            "completion_tokens": run.completion_tokens,
            "cost_usd": run.cost_usd,
            "latency_ms": run.latency_ms,
            "ttft_ms": run.ttft_ms,
            "attempts": run.attempts,
            "request_id": run.request_id,
        }
        for m in metrics:
            row[f"score_{m}"] = scores.get(run.id, {}).get(m)
        rows.append(row)
    return rows


def ratings_rows(session: Session, *, sweep_id: int) -> list[dict[str, Any]]:
    """One row per vote of a sweep (from `workbench.release.ratings_export.export_ratings`)."""
    from workbench.release import ratings_export

    _sweep_or_error(session, sweep_id)
    return ratings_export.export_ratings(session, sweep_id=sweep_id)


def _sweep_header(session: Session, sweep_id: int) -> dict[str, Any]:
    sweep = _sweep_or_error(session, sweep_id)
    spec = _spec(sweep)
    return {
        "id": sweep.id,
        "name": sweep.name,
        "status": sweep.status,
        "dataset": spec.get("dataset"),
        "models": list(spec.get("models") or []),
        "metrics": list((spec.get("scoring") or {}).get("metrics") or []),
    }


def _sweep_versions(session: Session, sweep_id: int, memo: _Cache) -> list[dict[str, Any]]:
    ids = session.exec(select(Run.version_id).where(Run.sweep_id == sweep_id).distinct()).all()
    versions = [session.get(PromptVersion, i) for i in sorted(ids)]
    return [version_record(session, v, evidence_sweep_id=sweep_id, _memo=memo) for v in versions]


def runs_document(session: Session, *, sweep_id: int) -> dict[str, Any]:
    """JSON export of a sweep's cells, with the versions they ran (so the file is self-contained)."""
    memo = _Cache()
    doc = {
        **_envelope({"sweep": sweep_id}),
        "versions": _sweep_versions(session, sweep_id, memo),
        "sweep": _sweep_header(session, sweep_id),
        "runs": runs_rows(session, sweep_id=sweep_id),
    }
    return scrub(doc)


def ratings_document(session: Session, *, sweep_id: int) -> dict[str, Any]:
    """JSON export of a sweep's votes, with the versions that were rated."""
    memo = _Cache()
    doc = {
        **_envelope({"sweep": sweep_id}),
        "versions": _sweep_versions(session, sweep_id, memo),
        "sweep": _sweep_header(session, sweep_id),
        "ratings": ratings_rows(session, sweep_id=sweep_id),
    }
    return scrub(doc)


def to_json(doc: dict[str, Any]) -> str:
    """The JSON text of an export document (UTF-8, indented, newline at the end)."""
    return json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n"


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    """CSV of flat rows: nested values as JSON text, formula-like text cells neutralised, secrets redacted."""
    return to_csv(scrub(rows))


def _check_format(fmt: str) -> str:
    fmt = (fmt or "").lower()
    if fmt not in FORMATS:
        raise ValidationError(f"Unknown format '{fmt}': use csv or json.")
    return fmt


def choices(session: Session, *, sweep_limit: int = 100) -> dict[str, Any]:
    """What an export can be chosen from: prompt -> version numbers, label names, recent sweeps."""
    from workbench.models import Label

    names = {p.id: p.name for p in session.exec(select(Prompt).order_by(Prompt.name))}
    versions: dict[str, list[int]] = {name: [] for name in names.values()}
    for pid, number in session.exec(
        select(PromptVersion.prompt_id, PromptVersion.number).order_by(PromptVersion.number)
    ):
        versions[names[pid]].append(number)
    labels = sorted(set(session.exec(select(Label.name)).all()))
    sweeps = [
        (sw.id, sw.name)
        for sw in session.exec(select(Sweep).order_by(col(Sweep.id).desc()).limit(sweep_limit))
    ]
    return {"prompts": versions, "labels": labels, "sweeps": sweeps}


VERSION_CSV_COLUMNS = [
    "prompt", "version", "labels", "source", "parent", "content_hash", "original_hash", "created_at",
    "note", "variables", "params", "messages",
]  # fmt: skip


def export_versions(session: Session, *, selection: Selection | None = None, fmt: str = "json") -> str:
    """The selected versions as JSON (lossless) or CSV (one row per version) text."""
    fmt = _check_format(fmt)
    doc = versions_document(session, selection=selection)
    if fmt == "json":
        return to_json(doc)
    rows = [version_row(r) for r in doc["versions"]]
    return rows_to_csv(rows) if rows else ",".join(VERSION_CSV_COLUMNS) + "\r\n"


def export_runs(session: Session, *, sweep_id: int, fmt: str = "json") -> str:
    """A sweep's cells as JSON or CSV (one row per cell) text."""
    fmt = _check_format(fmt)
    if fmt == "json":
        return to_json(runs_document(session, sweep_id=sweep_id))
    return rows_to_csv(runs_rows(session, sweep_id=sweep_id))


def export_ratings(session: Session, *, sweep_id: int, fmt: str = "json") -> str:
    """A sweep's votes as JSON or CSV (one row per vote) text."""
    fmt = _check_format(fmt)
    if fmt == "json":
        return to_json(ratings_document(session, sweep_id=sweep_id))
    from workbench.release.ratings_export import ratings_csv

    return ratings_csv(scrub(ratings_rows(session, sweep_id=sweep_id)))  # keeps the header with no votes
