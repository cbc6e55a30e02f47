"""Export prompt versions (with the evidence that made them winners), runs and ratings as JSON / CSV.

JSON is the lossless format, described by `workbench/release/schemas/export-v2.schema.json` and read
back by `workbench.release.imports` (which also reads version 1 files: they predate response formats,
tools, placeholder messages and the tool-call / cached / reasoning token fields of runs). CSV is one
flat row per version / cell / vote for spreadsheets and pandas, with every text cell that a
spreadsheet would run as a formula neutralised. Nothing secret leaves: values of key-like
environment variables are redacted from every export, whatever field they hit. Timestamps are ISO
8601 in UTC. The rows of a sweep (cells, votes) are built in `workbench.release.sweep_rows`; this
module is the one way out for all three exports (the CLI's `export ...` and `ratings export`, and
the Export page).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, or_, select

import workbench
from workbench.datasets import to_csv
from workbench.errors import NotFoundError, ValidationError
from workbench.metrics import METRICS
from workbench.models import Prompt, PromptVersion, Rating, Run, Sweep, utcnow
from workbench.present import iso_utc
from workbench.prompts import store
from workbench.providers.redact import scrub
from workbench.release.sweep_rows import RATING_COLUMNS, ratings_rows, runs_rows
from workbench.release.winners import (
    _Cache,
    _evidence_sweep_id,
    _leaderboard_evidence,
    _optimization_evidence,
    _ref,
    _spec,
    _sweep_evidence,
    sweep_winners,
)
from workbench.sweeps.plan import require_sweep

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)  # what an import accepts: every schema this workbench has written
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
SCHEMA_PATH = SCHEMA_DIR / f"export-v{SCHEMA_VERSION}.schema.json"


FORMATS = ("csv", "json")


@cache
def load_schema(version: int = SCHEMA_VERSION) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the JSON export document (of an older schema version too)."""
    return json.loads((SCHEMA_DIR / f"export-v{version}.schema.json").read_text(encoding="utf-8"))


@dataclass
class Selection:
    """Which versions to export; filters combine (all versions when none is given).

    `prompts` holds NAME (every version of it), NAME@N or NAME:label; `label` keeps versions
    carrying that label; `winners` keeps the winning versions of that sweep id (the best and every
    one not significantly worse, see `winners.sweep_winners`).
    """

    prompts: list[str] = field(default_factory=list)
    label: str | None = None
    winners: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, [])}


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
        "response_format": version.response_format,
        "tools": version.tools,
        "tool_choice": version.tool_choice,
        "variables": list(version.variables),
        "content_hash": version.content_hash,
        "original_hash": version.original_hash,
        "labels": sorted(labels),
        "parent": _ref(session, parent),
        # The provenance of the content: an imported version reports the source it was exported
        # with, so export -> import -> export gives the same record apart from timestamps.
        "source": version.origin_source or version.source,
        "note": version.note,
        "created_at": iso_utc(version.created_at),
        "imported_at": iso_utc(version.created_at) if version.source == "import" else None,
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
        ranked = sweep_winners(session, sweep_id=selection.winners)
        won = {version.id: version for version, _rule in ranked}
        winners = {version.id: rule for version, rule in ranked}
        chosen = won if chosen is None else {k: v for k, v in chosen.items() if k in won}
    if chosen is None:
        chosen = {v.id: v for v in session.exec(select(PromptVersion))}
    names = {p.id: p.name for p in session.exec(select(Prompt))}
    ordered = sorted(chosen.values(), key=lambda v: (names[v.prompt_id], v.number))
    return [(v, winners.get(v.id)) for v in ordered]


def _envelope(selection: dict[str, Any] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "exported_at": iso_utc(utcnow()),
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


def _decisive_p(test: dict[str, Any]) -> float:
    """The p-value a comparison was decided on: Holm-adjusted when there is one."""
    return test["p_value"] if test.get("p_adjusted") is None else test["p_adjusted"]


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
    for key in ("response_format", "tools", "tool_choice"):
        value = record.get(key)
        row[key] = "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)
    winner = ev.get("winner") or {}
    row["winner_rule"] = winner.get("rule", "")
    columns = winner.get("columns") or []
    row["winner"] = "" if not winner else ("best" if winner.get("best", True) else "tied")
    # A tied winner's headline test is the one against the best column with the highest p-value
    # (its column closest to the best); the JSON keeps every column's test.
    tests = [c["comparison"] for c in columns if c.get("comparison") and not winner.get("best")]
    closest = max(tests, key=_decisive_p, default=None)
    row["winner_diff"] = closest["diff"] if closest else None
    row["winner_p"] = _decisive_p(closest) if closest else None
    sweep = ev.get("sweep")
    row["sweep_id"] = sweep["sweep_id"] if sweep else None
    overall = (sweep or {}).get("overall") or {}
    row["n"] = overall.get("n")
    row["failed"] = overall.get("failed")
    for name, value in (overall.get("scores") or {}).items():
        metric = METRICS.get(name)
        if metric is not None:
            row[metric.mean_column] = value
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


def _sweep_header(session: Session, sweep_id: int) -> dict[str, Any]:
    sweep = require_sweep(session, sweep_id)
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


def _rated_versions(session: Session, memo: _Cache) -> list[dict[str, Any]]:
    """The versions behind every rated run (of any sweep), each with its own latest evidence."""
    rated = or_(Rating.run_a_id == Run.id, Rating.run_b_id == Run.id)
    ids = session.exec(select(Run.version_id).join(Rating, rated).distinct()).all()
    versions = [session.get(PromptVersion, i) for i in sorted(ids)]
    return [version_record(session, v, _memo=memo) for v in versions]


def ratings_document(session: Session, *, sweep_id: int | None = None) -> dict[str, Any]:
    """JSON export of the votes of one sweep (with its header) or of all sweeps, with the rated versions."""
    memo = _Cache()
    if sweep_id is None:
        rows = ratings_rows(session)
        doc = {**_envelope({}), "versions": _rated_versions(session, memo), "ratings": rows}
    else:
        header = _sweep_header(session, sweep_id)
        doc = {
            **_envelope({"sweep": sweep_id}),
            "versions": _sweep_versions(session, sweep_id, memo),
            "sweep": header,
            "ratings": ratings_rows(session, sweep_id=sweep_id),
        }
    return scrub(doc)


def to_json(doc: dict[str, Any]) -> str:
    """The JSON text of an export document (UTF-8, indented, newline at the end)."""
    return json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n"


def rows_to_csv(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """CSV of flat rows: nested values as JSON text, formula-like text cells neutralised, secrets redacted.

    `columns` come first and make the header even when there are no rows.
    """
    return to_csv(scrub(rows), columns=columns)


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
    "note", "variables", "params", "messages", "response_format", "tools", "tool_choice",
]  # fmt: skip


def export_versions(session: Session, *, selection: Selection | None = None, fmt: str = "json") -> str:
    """The selected versions as JSON (lossless) or CSV (one row per version) text."""
    fmt = _check_format(fmt)
    doc = versions_document(session, selection=selection)
    if fmt == "json":
        return to_json(doc)
    return rows_to_csv([version_row(r) for r in doc["versions"]], VERSION_CSV_COLUMNS)


def export_runs(session: Session, *, sweep_id: int, fmt: str = "json") -> str:
    """A sweep's cells as JSON or CSV (one row per cell) text."""
    fmt = _check_format(fmt)
    if fmt == "json":
        return to_json(runs_document(session, sweep_id=sweep_id))
    return rows_to_csv(runs_rows(session, sweep_id=sweep_id))


def export_ratings(session: Session, *, sweep_id: int | None = None, fmt: str = "json") -> str:
    """The votes of one sweep (or of all when sweep_id is None) as JSON or CSV (one row per vote) text."""
    fmt = _check_format(fmt)
    if fmt == "json":
        return to_json(ratings_document(session, sweep_id=sweep_id))
    return rows_to_csv(ratings_rows(session, sweep_id=sweep_id), RATING_COLUMNS)
