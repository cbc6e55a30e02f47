"""Typed errors of the workbench core.

Every error a user can cause or meet carries a message that says what went wrong and what to do.
The UI (`workbench/ui/errors.py`) and the CLI render them in one place each.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base class: an error whose message is shown to the user as is."""


class NotFoundError(WorkbenchError):
    """A prompt, version, label, dataset, sweep or model that does not exist."""


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
        super().__init__(prefix + message)
        self.detail = message


class MissingVariableError(WorkbenchError):
    """Rendering needs a variable the caller did not supply."""

    def __init__(self, name: str, *, context: str = ""):
        self.name = name
        where = f" {context}" if context else ""
        super().__init__(
            f"Missing variable '{name}'{where}: give it a value (for example --var {name}=...) "
            f"or add a '{name}' column to the dataset."
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
    ):
        super().__init__(message)
        self.kind = kind
        self.transient = transient
        self.status_code = status_code
        self.retry_after = retry_after
        self.request_id = request_id


class CancelledError(WorkbenchError):
    """Work stopped because the user cancelled it."""


class BudgetExceededError(WorkbenchError):
    """A plan or a run would spend more than the budget the user set."""
