"""The one retry loop of a sweep: every provider call (a cell, an LLM-judge score) goes through it.

`RetryPolicy` says when a transient error deserves another try and how long to wait (exponential
backoff with full jitter, honouring Retry-After, bounded attempts). `ProviderCalls` applies it,
together with the auth circuit breaker, the executor's cancel flag and the count of provider
requests, so a judge call is retried, counted and stopped exactly like a cell.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workbench.errors import ProviderError
from workbench.sweeps.circuit import CircuitBreaker

if TYPE_CHECKING:  # only a type here; the completion layer is imported by whoever calls
    from workbench.providers.completion import CompletionResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, honouring Retry-After, bounded attempts."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0  # never sleep longer than this, whatever the server says

    def should_retry(self, error: ProviderError, attempt: int) -> bool:
        """True when `error` (after `attempt` attempts) deserves another try."""
        return error.transient and attempt < self.max_attempts

    def delay(self, error: ProviderError, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt `attempt + 1`."""
        rng = rng or random
        backoff = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        jittered = rng.uniform(0, backoff)  # full jitter spreads retries of many cells apart
        if error.retry_after is not None:
            # The server said when; add a little jitter so a burst does not return at once.
            return min(self.max_retry_after, error.retry_after) + rng.uniform(0, self.base_delay / 2)
        return jittered


@dataclass
class CallOutcome:
    """What a call came to after its retries: a result, or the last error; and the attempts made."""

    result: CompletionResult | None
    error: ProviderError | None
    attempts: int


class ProviderCalls:
    """Calls providers for one executor: circuit breaker, retries, cancel and request counting."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        breaker: CircuitBreaker,
        cancelled: asyncio.Event,
        rng: random.Random | None = None,
        on_request: Callable[[], None] | None = None,
    ):
        self.policy = policy
        self.breaker = breaker
        self._cancelled = cancelled
        self._rng = rng or random.Random()
        self._on_request = on_request

    async def call(self, model: str, request: Callable[[], Awaitable[CompletionResult]]) -> CallOutcome:
        """Make `request()` (one provider call to `model`) until it succeeds or retrying stops.

        Never raises a provider problem: an open circuit, a fatal error, exhausted attempts or an
        unexpected library error all come back as `CallOutcome.error`, so the caller records it.
        """
        attempts = 0
        while True:
            refusal = self.breaker.refusal(model)
            if refusal is not None:
                return CallOutcome(None, refusal, attempts)
            attempts += 1
            if self._on_request:
                self._on_request()
            try:
                result = await request()
            except ProviderError as exc:
                self.breaker.record_failure(model, exc)
                # After a cancel, no new attempt: the executor is winding down.
                if not self.policy.should_retry(exc, attempts) or self._cancelled.is_set():
                    return CallOutcome(None, exc, attempts)
                await asyncio.sleep(self.policy.delay(exc, attempts, self._rng))
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug or an unexpected library error: record it, go on
                log.exception("a call to %s failed unexpectedly", model)
                error = ProviderError(
                    f"Internal error: {type(exc).__name__}: {exc}", kind="internal", transient=False
                )
                return CallOutcome(None, error, attempts)
            self.breaker.record_success(model)
            return CallOutcome(result, None, attempts)
