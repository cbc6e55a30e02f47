"""`log_sweep`: a sweep as one MLflow parent run with one child run per column, logged again in place.

What is sent is `sweep_data.gather`'s record. Runs are found again by tags, so logging a sweep a
second time updates its runs instead of adding new ones: the parent carries `workbench.sweep_key`
(the sweep's id and creation time, hashed, so two workbench databases never share a run) and
`workbench.sweep_id`; a child carries `mlflow.parentRunId`, `workbench.column_key` (its label,
hashed), `workbench.column`, `workbench.version` and the version's `workbench.content_hash`.
MLflow params cannot change once logged, so only params a run does not have yet are sent; a
metric is sent only when its value changed; artifacts are written over. Run status follows the
sweep: done -> FINISHED, failed -> FAILED, cancelled -> KILLED, otherwise RUNNING.

Artifacts: the parent has `summary.json` (the per-column summary, a table), `sweep_config.json`,
`ratings/leaderboard_<by>.json` and `comparisons.json` when there are votes / paired comparisons;
each child has `outputs.json` (its cells, a table) and `messages.txt` (the version's messages, and
as rendered for the column's first cell).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlmodel import Session

from workbench.errors import ValidationError
from workbench.mlflow_sync import client as mlc
from workbench.mlflow_sync.sweep_data import ColumnRecord, SweepRecord, gather

DEFAULT_EXPERIMENT = "prompt-workbench"
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"
STATUS = {"done": "FINISHED", "failed": "FAILED", "cancelled": "KILLED"}
MAX_RUN_NAME = 250
BATCH_PARAMS_TAGS = 100  # MLflow's per-request limits
BATCH_METRICS = 1000


@dataclass
class LoggedRun:
    """One run written: which, and whether it was new."""

    name: str
    run_id: str
    created: bool
    url: str | None = None


@dataclass
class LogResult:
    """What `log_sweep` did."""

    sweep_id: int
    tracking_uri: str
    experiment_id: str
    experiment: str
    parent: LoggedRun
    columns: list[LoggedRun] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """A human summary, one line per fact."""
        new = sum(c.created for c in self.columns)
        verb = "created" if self.parent.created else "updated"
        out = [
            f"Sweep {self.sweep_id} logged to MLflow experiment '{self.experiment}' "
            f"(id {self.experiment_id}) at {self.tracking_uri}: parent run {self.parent.run_id} {verb}, "
            f"{len(self.columns)} column runs ({new} created, {len(self.columns) - new} updated)."
        ]
        if self.parent.url:
            out.append(f"Open: {self.parent.url}")
        out += [f"warning: {w}" for w in self.warnings]
        return out


def experiment_name(name: str | None = None) -> str:
    """The experiment to log to: `name`, else `MLFLOW_EXPERIMENT_NAME`, else 'prompt-workbench'."""
    return (name or os.environ.get(EXPERIMENT_ENV) or DEFAULT_EXPERIMENT).strip()


def log_sweep(
    session: Session,
    sweep_id: int,
    *,
    uri: str | None = None,
    experiment: str | None = None,
    baseline: str | None = None,
) -> LogResult:
    """Log a sweep to MLflow (see the module doc); the server is checked before anything is read."""
    conn = mlc.connect(uri)
    record = gather(session, sweep_id, baseline=baseline)
    name = experiment_name(experiment)
    with mlc.errors(conn.uri, f"logging sweep {sweep_id}"):
        experiment_id = _experiment(conn, name)
        parent, created = _parent(conn, experiment_id, record)
        _write(conn, parent, params=record.params, metrics=record.metrics, tags=_parent_tags(record))
        _parent_artifacts(conn, parent.info.run_id, record)
        existing = _children(conn, experiment_id, parent.info.run_id)
        columns = []
        for column in record.columns:
            run = existing.get(column.key)
            made = run is None
            if made:
                run = conn.client.create_run(
                    experiment_id,
                    start_time=record.start_ms,
                    tags=_column_tags(record, column, parent.info.run_id),
                    run_name=column.label[:MAX_RUN_NAME],
                )
            _write(
                conn,
                run,
                params=column.params,
                metrics=column.metrics,
                tags=_column_tags(record, column, parent.info.run_id),
            )
            mlc.log_table(conn, run.info.run_id, column.outputs, "outputs.json")
            mlc.log_text(conn, run.info.run_id, column.messages_text, "messages.txt")
            _set_status(conn, run.info.run_id, record)
            url = conn.run_url(experiment_id, run.info.run_id)
            columns.append(LoggedRun(column.label, run.info.run_id, made, url))
        _set_status(conn, parent.info.run_id, record)
    return LogResult(
        sweep_id=record.sweep_id,
        tracking_uri=mlc.display_uri(conn.uri),
        experiment_id=experiment_id,
        experiment=name,
        parent=LoggedRun(
            record.name, parent.info.run_id, created, conn.run_url(experiment_id, parent.info.run_id)
        ),
        columns=columns,
        warnings=record.warnings,
    )


def _experiment(conn: mlc.Connection, name: str) -> str:
    if not name:
        raise ValidationError("The MLflow experiment name is empty.", field="experiment")
    found = conn.client.get_experiment_by_name(name)
    if found is None:
        try:
            return conn.client.create_experiment(name)
        except Exception as exc:
            if getattr(exc, "error_code", None) != "RESOURCE_ALREADY_EXISTS":
                raise
            found = conn.client.get_experiment_by_name(name)  # made meanwhile by another process
    if found.lifecycle_stage == "deleted":
        raise ValidationError(
            f"The MLflow experiment '{name}' is deleted; restore it in MLflow or log to another experiment.",
            field="experiment",
        )
    return found.experiment_id


def _search(conn: mlc.Connection, experiment_id: str, filter_string: str) -> list[Any]:
    """Every active run matching the filter, oldest first (all pages)."""
    runs: list[Any] = []
    token = None
    while True:
        page = conn.client.search_runs(
            [experiment_id], filter_string=filter_string, max_results=1000, page_token=token,
            order_by=["attributes.start_time ASC"],
        )  # fmt: skip
        runs += list(page)
        token = getattr(page, "token", None)
        if not token:
            return runs


def _parent(conn: mlc.Connection, experiment_id: str, record: SweepRecord) -> tuple[Any, bool]:
    found = _search(conn, experiment_id, f"tags.`workbench.sweep_key` = '{record.key}'")
    parents = [r for r in found if "mlflow.parentRunId" not in r.data.tags]
    if parents:
        return parents[0], False
    run = conn.client.create_run(
        experiment_id,
        start_time=record.start_ms,
        tags=_parent_tags(record),
        run_name=record.name[:MAX_RUN_NAME],
    )
    return run, True


def _children(conn: mlc.Connection, experiment_id: str, parent_id: str) -> dict[str, Any]:
    """The parent's child runs by column key (the oldest wins should there be two)."""
    out: dict[str, Any] = {}
    for run in _search(conn, experiment_id, f"tags.mlflow.parentRunId = '{parent_id}'"):
        key = run.data.tags.get("workbench.column_key")
        if key and key not in out:
            out[key] = run
    return out


def _parent_tags(record: SweepRecord) -> dict[str, str]:
    return {
        **record.tags,
        "workbench.kind": "sweep",
        "workbench.sweep_id": str(record.sweep_id),
        "workbench.sweep_key": record.key,
        "mlflow.note.content": f"Prompt Workbench sweep {record.sweep_id}: one child run per column.",
    }


def _column_tags(record: SweepRecord, column: ColumnRecord, parent_id: str) -> dict[str, str]:
    return {
        **column.tags,
        "mlflow.parentRunId": parent_id,
        "workbench.kind": "column",
        "workbench.sweep_id": str(record.sweep_id),
        "workbench.sweep_key": record.key,
        "workbench.column_key": column.key,
        "workbench.column": column.label[:5000],
        "workbench.version": column.version,
        "workbench.content_hash": column.content_hash,
    }


def _write(
    conn: mlc.Connection, run: Any, *, params: dict[str, str], metrics: dict[str, float], tags: dict[str, str]
) -> None:
    """Send what the run lacks: new params, changed metrics, and every tag."""
    from mlflow.entities import Metric, Param, RunTag

    have = run.data
    now = int(time.time() * 1000)
    new_params = [Param(k, v) for k, v in params.items() if k not in have.params]
    changed = [Metric(k, v, now, 0) for k, v in metrics.items() if have.metrics.get(k) != v]
    run_tags = [RunTag(k, v) for k, v in tags.items() if have.tags.get(k) != v]
    run_id = run.info.run_id
    for i in range(0, max(len(new_params), len(run_tags)), BATCH_PARAMS_TAGS):
        conn.client.log_batch(
            run_id, params=new_params[i : i + BATCH_PARAMS_TAGS], tags=run_tags[i : i + BATCH_PARAMS_TAGS]
        )
    for i in range(0, len(changed), BATCH_METRICS):
        conn.client.log_batch(run_id, metrics=changed[i : i + BATCH_METRICS])


def _parent_artifacts(conn: mlc.Connection, run_id: str, record: SweepRecord) -> None:
    mlc.log_table(conn, run_id, record.summary, "summary.json")
    mlc.log_text(conn, run_id, json.dumps(record.config, indent=2, default=str), "sweep_config.json")
    for by, rows in record.leaderboards.items():
        mlc.log_table(conn, run_id, rows, f"ratings/leaderboard_{by}.json")
    if record.comparisons:
        mlc.log_table(conn, run_id, record.comparisons, "comparisons.json")


def _set_status(conn: mlc.Connection, run_id: str, record: SweepRecord) -> None:
    status = STATUS.get(record.status)
    if status:
        conn.client.set_terminated(run_id, status=status, end_time=record.end_ms)
    else:
        conn.client.update_run(run_id, status="RUNNING")
