"""The auth circuit breaker: stop calling a model whose key is refused.

A sweep of thousands of cells against a model with a wrong key would otherwise make thousands of
calls that all fail the same way. The circuit of a model opens on its first auth failure when no
call to it has succeeded yet (the key never worked), or after a few auth failures in a row (a key
revoked mid-sweep); once open, no further call to that model is made by this executor, for cells
and judge calls alike. Resuming the sweep with its failed cells starts with closed circuits.
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.errors import ProviderError

AUTH_KINDS = {"auth"}
CONSECUTIVE_AUTH_FAILURES_TO_OPEN = 3


@dataclass
class _Circuit:
    successes: int = 0
    consecutive_auth: int = 0
    open_reason: str | None = None


class CircuitBreaker:
    """Per-model circuits of one executor; `opened` maps each stopped model to a short reason."""

    def __init__(self) -> None:
        self._circuits: dict[str, _Circuit] = {}
        self.opened: dict[str, str] = {}

    def _of(self, model: str) -> _Circuit:
        return self._circuits.setdefault(model, _Circuit())

    def refusal(self, model: str) -> ProviderError | None:
        """The error to record instead of calling `model` when its circuit is open, else None."""
        reason = self._of(model).open_reason
        if reason is None:
            return None
        # Resuming with the failed cells retried is what fixes it, once the key is fixed.
        return ProviderError(reason, kind="circuit_open", transient=False, field="retry_failed")

    def record_success(self, model: str) -> None:
        """A call to `model` succeeded: its key works."""
        circuit = self._of(model)
        circuit.successes += 1
        circuit.consecutive_auth = 0

    def record_failure(self, model: str, error: ProviderError) -> None:
        """A call to `model` failed with `error`; an auth failure may open its circuit."""
        circuit = self._of(model)
        if error.kind not in AUTH_KINDS:
            circuit.consecutive_auth = 0
            return
        circuit.consecutive_auth += 1
        if circuit.open_reason is None and (
            circuit.successes == 0 or circuit.consecutive_auth >= CONSECUTIVE_AUTH_FAILURES_TO_OPEN
        ):
            circuit.open_reason = (
                f"Not called: {model} failed authentication ({error}). Fix its key, then resume the "
                "sweep with its failed cells retried."
            )
            self.opened[model] = f"authentication failed ({error.status_code})"
