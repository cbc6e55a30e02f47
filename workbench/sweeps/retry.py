"""When to retry a transient provider error, and how long to wait."""

from __future__ import annotations

import random
from dataclasses import dataclass

from workbench.errors import ProviderError


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
