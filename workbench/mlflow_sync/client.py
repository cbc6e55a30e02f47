"""The connection to an MLflow tracking server: which URI, whether it answers, and its errors in
workbench words.

The URI is the one given, else `MLFLOW_TRACKING_URI`; without either the feature is off
(`configured()` is False and the UI shows no MLflow action). `connect` checks an http(s) server
answers before anything else happens, so an unreachable server is one clear error and nothing,
here or there, has changed. mlflow is imported only inside `connect` (the client side needs
`mlflow-skinny` alone), with MLflow's telemetry and its printed run links turned off, and its HTTP
retries bounded so a server that goes away mid-way fails in seconds, not minutes.

Errors: an unreachable server or a failed request is a `ProviderError` (kind "connection" or
"server" / "bad_request", field "tracking_uri"); something MLflow does not have is a
`NotFoundError`. Messages never carry credentials: a URI is shown without its user and password,
and every text passes `providers.redact.scrub`.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from workbench.errors import NotFoundError, ProviderError, ValidationError, WorkbenchError
from workbench.present import json_safe
from workbench.providers.redact import scrub

ENV = "MLFLOW_TRACKING_URI"
FIELD = "tracking_uri"
HEALTH_TIMEOUT_S = 5.0
# MLflow's own defaults retry for minutes (7 retries, 120 s timeout); a user waiting on a button
# should know in seconds. Set only when the user has not chosen values of their own.
CLIENT_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_DISABLE_TELEMETRY": "true",  # no network beyond the server the user named
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",  # run links would mix into --json output
}
LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"  # what MlflowClient.log_table records for the UI


def tracking_uri(uri: str | None = None) -> str | None:
    """The tracking URI to use: `uri`, else `MLFLOW_TRACKING_URI`, else None (feature off)."""
    chosen = (uri or os.environ.get(ENV) or "").strip()
    return chosen or None


def configured() -> bool:
    """True when a tracking URI is set in the environment (the UI shows MLflow actions then)."""
    return tracking_uri() is not None


def display_uri(uri: str) -> str:
    """The URI without user and password, fit for messages and links."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _is_http(uri: str) -> bool:
    return urlsplit(uri).scheme in ("http", "https")


def require_uri(uri: str | None = None) -> str:
    """The tracking URI, or a ValidationError when none is configured."""
    chosen = tracking_uri(uri)
    if chosen is None:
        raise ValidationError(
            f"No MLflow tracking server is configured: {ENV} is not set and no URI was given.",
            field=FIELD,
        )
    return chosen


def check_reachable(uri: str) -> None:
    """Raise a ProviderError (kind "connection") when the http(s) server at `uri` does not answer.

    Any HTTP answer counts as reachable (a proxy asking for credentials included): only a refused
    or timed-out connection is "unreachable". Other URI schemes (a local store) are not checked.
    """
    if not _is_http(uri):
        return
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT_S):  # http(s) only, checked above
            return
    except urllib.error.HTTPError:
        return  # it answered
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise unreachable(uri, reason) from None


def unreachable(uri: str, reason: Any) -> ProviderError:
    """The error for a server that does not answer."""
    return ProviderError(
        scrub(
            f"Cannot reach the MLflow tracking server at {display_uri(uri)} ({reason}). "
            "Nothing was sent and nothing was changed."
        ),
        kind="connection",
        transient=True,
        field=FIELD,
    )


@dataclass
class Connection:
    """A checked connection: the URI and an MlflowClient on it (tracking and prompt registry)."""

    uri: str
    client: Any

    @property
    def base_url(self) -> str | None:
        """The web address of the MLflow UI, or None for a store that has no UI (a local path)."""
        return display_uri(self.uri).rstrip("/") if _is_http(self.uri) else None

    def run_url(self, experiment_id: str, run_id: str) -> str | None:
        """Where a run is in the MLflow UI."""
        base = self.base_url
        return f"{base}/#/experiments/{experiment_id}/runs/{run_id}" if base else None

    def prompt_url(self, name: str, version: int | str | None = None) -> str | None:
        """Where a registered prompt (and one of its versions) is in the MLflow UI."""
        base = self.base_url
        if not base:
            return None
        url = f"{base}/#/prompts/{quote(name, safe='')}"
        return f"{url}?promptVersion={version}" if version is not None else url


def connect(uri: str | None = None) -> Connection:
    """Check the server answers, then open an MlflowClient on it (tracking and prompt registry)."""
    chosen = require_uri(uri)
    check_reachable(chosen)
    for key, value in CLIENT_ENV.items():
        os.environ.setdefault(key, value)
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise ValidationError(
            "MLflow support needs the mlflow-skinny package (see requirements.txt), which is not installed.",
            field=FIELD,
        ) from None
    with errors(chosen, "connecting"):
        return Connection(chosen, MlflowClient(tracking_uri=chosen, registry_uri=chosen))


def is_connection_failure(exc: BaseException) -> bool:
    """True when an exception says the server could not be reached (refused, timed out, retries spent)."""
    text = str(exc)
    markers = ("Max retries exceeded", "Connection refused", "ConnectionError", "timed out", "Read timed out")
    return any(m in text for m in markers)


@contextmanager
def errors(uri: str, doing: str) -> Iterator[None]:
    """Turn what MLflow or the network raises while `doing` something into workbench errors."""
    try:
        yield
    except WorkbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - mlflow raises MlflowException, requests errors, OSError
        code = getattr(exc, "error_code", None)
        message = scrub(str(getattr(exc, "message", None) or exc)).strip()
        if is_connection_failure(exc):
            raise unreachable(uri, f"lost while {doing}") from None
        if code == "RESOURCE_DOES_NOT_EXIST":
            raise NotFoundError(f"MLflow has no such thing ({doing}): {message}") from None
        status = None
        try:
            status = int(exc.get_http_status_code())  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - not every exception carries a status
            pass
        kind = (
            "bad_request"
            if code == "INVALID_PARAMETER_VALUE" or (status and 400 <= status < 500)
            else "server"
        )
        raise ProviderError(
            f"MLflow at {display_uri(uri)} refused {doing}: {message}",
            kind=kind,
            transient=kind == "server",
            status_code=status,
            field=FIELD,
        ) from None


def log_table(conn: Connection, run_id: str, rows: list[dict[str, Any]], artifact_file: str) -> None:
    """Write a table artifact the MLflow UI shows as a table, replacing any earlier one.

    `MlflowClient.log_table` appends to an existing file, which would double the rows when a
    sweep is logged again; this writes the same JSON ("split" orientation) and the same run tag.
    """
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    doc = {"columns": columns, "data": [[_plain(row.get(c)) for c in columns] for row in rows]}
    _log_bytes(conn, run_id, json.dumps(doc, ensure_ascii=False).encode(), artifact_file)
    run = conn.client.get_run(run_id)
    logged = json.loads(run.data.tags.get(LOGGED_ARTIFACTS_TAG, "[]"))
    entry = {"path": artifact_file, "type": "table"}
    if entry not in logged:
        conn.client.set_tag(run_id, LOGGED_ARTIFACTS_TAG, json.dumps([*logged, entry]))


def log_text(conn: Connection, run_id: str, text: str, artifact_file: str) -> None:
    """Write a text artifact (replacing any earlier one at that path)."""
    _log_bytes(conn, run_id, text.encode(), artifact_file)


def _log_bytes(conn: Connection, run_id: str, data: bytes, artifact_file: str) -> None:
    folder, _, name = artifact_file.rpartition("/")
    with tempfile.TemporaryDirectory(prefix="workbench-mlflow-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        conn.client.log_artifact(run_id, str(path), artifact_path=folder or None)


def _plain(value: Any) -> Any:
    """A JSON value for a table cell: numpy scalars as numbers, NaN as null, nested values as text."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    value = json_safe(value)
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
