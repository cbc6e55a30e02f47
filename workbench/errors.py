"""Typed errors of the workbench core.

Every error a user can cause or meet carries a message that says what went wrong, in the words of
the domain (a prompt, a metric, a sweep), never in the words of one adapter: no command-line flag,
no widget. An error about one setting names it in `field` (a core name such as "regex",
"judge_model", "variables", "sweep"); each adapter turns that into its own advice, the CLI as a
flag (`workbench/cli/common.py: hint_for`), the UI as the widget to change
(`workbench/ui/common.py: show_error`).
"""

from __future__ import annotations

import json


def json_problem(exc: json.JSONDecodeError) -> str:
    """Where JSON text breaks, in one wording for every reader of JSON (files, variables, editors)."""
    return f"{exc.msg} at line {exc.lineno}, column {exc.colno}"


class WorkbenchError(Exception):
    """Base class: an error whose message is shown to the user as is."""

    def __init__(self, message: str = "", *, field: str | None = None):
        super().__init__(message)
        self.field = field  # the setting the error is about, in core words (see the module doc)


class NotFoundError(WorkbenchError):
    """A prompt, version, label, dataset, sweep or model that does not exist."""


class SweepNotFoundError(NotFoundError):
    """No sweep has this id (raised only by `sweeps.plan.require_sweep`)."""

    def __init__(self, sweep_id: int):
        super().__init__(f"No sweep with id {sweep_id}.", field="sweep")
        self.sweep_id = sweep_id


class TemplateError(WorkbenchError):
    """A Jinja template that does not parse, with the line and column Jinja reports."""

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        message_index: int | None = None,
    ):
        self.line = line
        self.column = column
        self.message_index = message_index
        where = []
        if message_index is not None:
            where.append(f"message {message_index + 1}")
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column}")
        prefix = f"Template error ({', '.join(where)}): " if where else "Template error: "
        super().__init__(prefix + message, field="template")
        self.detail = message


class MissingVariableError(WorkbenchError):
    """Rendering needs a variable the caller did not supply."""

    def __init__(self, name: str, *, context: str = ""):
        self.name = name
        where = f" {context}" if context else ""
        super().__init__(
            f"Missing variable '{name}'{where}: the template uses it, but no value was given "
            f"and the dataset has no '{name}' column.",
            field="variables",
        )


class SandboxError(WorkbenchError):
    """A template tried to reach outside the sandbox (attributes such as __class__)."""


class ValidationError(WorkbenchError):
    """Input that does not fit: a bad name, a malformed file, a parameter out of range."""


class ImportFileError(ValidationError):
    """A dataset or prompt file that cannot be read; nothing was imported."""


class ModelUnavailableError(WorkbenchError):
    """A model that cannot be called now: unknown id, missing key, missing local model file."""


class ProviderError(WorkbenchError):
    """A call to a model provider failed.

    `kind` names the failure (auth, rate_limit, timeout, server, bad_request, not_found,
    context_length, connection, malformed); `transient` says whether a retry may help.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        transient: bool,
        status_code: int | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
        field: str | None = "model",
    ):
        super().__init__(message, field=field)
        self.kind = kind
        self.transient = transient
        self.status_code = status_code
        self.retry_after = retry_after
        self.request_id = request_id


class CancelledError(WorkbenchError):
    """Work stopped because the user cancelled it."""


class BudgetExceededError(WorkbenchError):
    """A plan or a run would spend more than the budget the user set."""
