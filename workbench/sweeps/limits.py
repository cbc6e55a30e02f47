"""A sweep's concurrency limits, and how the processes that run one sweep share them.

A sweep has two kinds of limit: its overall concurrency (calls in flight at once) and each
model's `max_concurrency` from the catalog. Both are totals for the sweep, however many
processes run it. `partition` splits every limit into one share per process, so the shares
never add up to more than the limit; the first share always holds at least one of each
(`partition` puts the remainders first), so a model whose limit is smaller than the number of
processes is run by the first processes and never left without a process. A process claims only
cells of models it holds a share of (`Limits.claimable`).

`Limiter` is the in-process side: a semaphore whose capacity can change while calls hold it, so
a process can start with the whole limit, hand part of it to processes that joined (`resize`,
then `drained` once its own calls fit the smaller share) and take a dead process's share back.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field

from workbench.providers import catalog
from workbench.sweeps.plan import SweepSpec
from workbench.sweeps.scoring import ScoringConfig


@dataclass(frozen=True)
class Limits:
    """Calls in flight at once: `total` over all models, and per model."""

    total: int
    models: dict[str, int] = field(default_factory=dict)

    def claimable(self) -> list[str]:
        """The models this share may run cells of (a share of at least one call)."""
        return sorted(m for m, n in self.models.items() if n > 0)

    def plus(self, other: Limits) -> Limits:
        """The sum of two shares (a process taking back what another held)."""
        models = {m: self.models.get(m, 0) + other.models.get(m, 0) for m in {*self.models, *other.models}}
        return Limits(self.total + other.total, models)

    def minus(self, other: Limits) -> Limits:
        """What is left of these limits once `other` is handed out."""
        return Limits(
            self.total - other.total, {m: n - other.models.get(m, 0) for m, n in self.models.items()}
        )

    def to_json(self) -> str:
        """The limits as a JSON text (passed to a worker process)."""
        return json.dumps({"total": self.total, "models": self.models}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Limits:
        """Limits from `to_json`."""
        data = json.loads(text)
        return cls(int(data["total"]), {str(m): int(n) for m, n in data["models"].items()})


def sweep_limits(spec: SweepSpec, concurrency: int | None = None) -> Limits:
    """The whole sweep's limits: its concurrency and the catalog's limit of every model it calls."""
    models = list(spec.models)
    judge = judge_model(spec)
    if judge and judge not in models:
        models.append(judge)
    return Limits(
        int(concurrency or spec.concurrency),
        {m: max(1, int(catalog.get_model(m).max_concurrency)) for m in models},
    )


def judge_model(spec: SweepSpec) -> str | None:
    """The model that judges the sweep's outputs, when it is judged."""
    scoring = ScoringConfig.from_dict(spec.scoring)
    return scoring.judge_model if "judge" in scoring.metrics else None


def share(limit: int, index: int, processes: int) -> int:
    """Process `index`'s share of `limit` split over `processes` (remainders go to the first)."""
    return limit // processes + (1 if index < limit % processes else 0)


def partition(limits: Limits, processes: int) -> list[Limits]:
    """One share of `limits` per process; the shares of every limit add up to that limit."""
    models = limits.models.items()
    return [
        Limits(share(limits.total, i, processes), {m: share(n, i, processes) for m, n in models})
        for i in range(processes)
    ]


def max_processes(limits: Limits, cell_models: list[str], judge_model: str | None = None) -> int:
    """How many processes can each hold a useful share: one call overall, one model's call, and
    (when cells are judged) one judge call, since every process judges the cells it ran."""
    useful = min(limits.total, max(limits.models.get(m, 1) for m in cell_models))
    if judge_model:
        useful = min(useful, limits.models.get(judge_model, 1))
    return max(1, useful)


class Limiter:
    """An asyncio semaphore whose capacity can change while it is held (`async with limiter:`).

    Waiters are served first come, first served; a release wakes one waiter, not all of them (a
    wake-up per queued cell and call would cost more than the call at hundreds of calls a second).
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.in_use = 0
        self._waiters: deque[asyncio.Future] = deque()
        self._drains: list[asyncio.Future] = []

    async def __aenter__(self) -> None:
        if self.in_use < self.capacity and not self._waiters:
            self.in_use += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # granted: in_use already counts this call
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # granted, then cancelled before it ran: give the place back
            elif waiter in self._waiters:  # (a cancelled waiter may already be popped by _wake)
                self._waiters.remove(waiter)
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._release()

    def _release(self) -> None:
        self.in_use -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_use < self.capacity:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_use += 1
                waiter.set_result(None)
        if self.in_use <= self.capacity:
            for drain in self._drains:
                if not drain.done():
                    drain.set_result(None)
            self._drains.clear()

    def resize(self, capacity: int) -> None:
        """A new capacity; calls in flight above it finish, no new one starts until it fits."""
        self.capacity = capacity
        self._wake()

    async def drained(self) -> None:
        """Wait until the calls in flight fit the capacity (after `resize` made it smaller)."""
        if self.in_use <= self.capacity:
            return
        drain = asyncio.get_running_loop().create_future()
        self._drains.append(drain)
        await drain
