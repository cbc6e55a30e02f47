"""Batched writes of an executor's results and scores.

A result is queued the moment its call returns and flushed at once (after `flush_interval`, so
results that finish together share one transaction): a killed process loses at most the results
of that short window. Under load, results that arrive during a flush go into the next one.
The database work runs in a thread, so the event loop keeps calling providers meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from workbench.models import Run, Score, utcnow

if TYPE_CHECKING:
    from workbench.sweeps.retry import CallOutcome

log = logging.getLogger(__name__)
MAX_FLUSH_FAILURES = 5  # in a row; then the executor stops (the database is gone, not busy)


def score_row(
    run_id: int, metric: str, value: float | None, detail: str | None = None, cost_usd: float | None = None
) -> dict[str, Any]:
    """One Score row to queue: `value` None means the metric could not be computed (see `detail`)."""
    return {"run_id": run_id, "metric": metric, "value": value, "detail": detail, "cost_usd": cost_usd}


def result_write(run_id: int, outcome: CallOutcome) -> dict[str, Any]:
    """The Run columns a finished cell writes."""
    result, error = outcome.result, outcome.error
    common = {"id": run_id, "attempts": outcome.attempts, "finished_at": utcnow()}
    if result is None:
        assert error is not None
        return {
            **common,
            "status": "failed",
            "error_kind": error.kind,
            "error_message": str(error),
            "request_id": error.request_id,
        }
    return {
        **common,
        "status": "done",
        "output": result.text,
        "tool_calls": result.tool_calls or None,
        "finish_reason": result.finish_reason,
        "request_id": result.request_id,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "cached_tokens": result.cached_tokens,
        "reasoning_tokens": result.reasoning_tokens,
        "cost_usd": result.cost_usd,
        "latency_ms": result.latency_ms,
        "ttft_ms": result.ttft_ms,
        # A stream that ended without a finish reason is recorded, not passed off as complete.
        "error_kind": "no_finish_reason" if result.finish_reason is None else None,
        "error_message": None,
    }


def insert_ignore(engine: Engine, table: Any, keys: list[str]) -> Any:
    """INSERT ... ON CONFLICT (keys) DO NOTHING for SQLite and PostgreSQL."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table).on_conflict_do_nothing(index_elements=keys)


def write_batch(
    engine: Engine, worker_id: str, writes: list[dict[str, Any]], scores: list[dict[str, Any]]
) -> None:
    """Write finished cells (Run column values by id) and Score rows in one transaction."""
    if not writes and not scores:
        return
    with Session(engine) as s:
        # Only a cell this executor still holds is written: a cancel that already marked it
        # cancelled wins, and a cell re-claimed elsewhere after a lease expiry is not clobbered.
        # One statement per set of columns, executed for many rows at once (executemany).
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for w in writes:
            groups.setdefault(tuple(sorted(w)), []).append(w)
        table = Run.__table__
        for keys, rows in groups.items():
            cols = [k for k in keys if k != "id"]
            stmt = (
                update(table)
                .where(
                    table.c.id == bindparam("_id"),
                    table.c.status == "running",
                    table.c.claimed_by == worker_id,
                )
                .values({k: bindparam(f"v_{k}") for k in cols})
            )
            params = [{"_id": r["id"], **{f"v_{k}": r[k] for k in cols}} for r in rows]
            s.connection().execute(stmt, params)
        if scores:
            # Two executors may both score a cache hit; the first score wins, the second is a no-op.
            s.connection().execute(insert_ignore(engine, Score.__table__, ["run_id", "metric"]), scores)
        s.commit()


class ResultWriter:
    """Queues results and scores and writes them in batches from one background task."""

    def __init__(
        self,
        engine: Engine,
        worker_id: str,
        *,
        flush_interval: float = 0.1,
        on_flush: Callable[[], None] | None = None,
    ):
        self.engine = engine
        self.worker_id = worker_id
        self.flush_interval = flush_interval
        self.on_flush = on_flush
        self._writes: list[dict[str, Any]] = []
        self._scores: list[dict[str, Any]] = []
        self._ready = asyncio.Event()
        self._stopping = False
        self._failures = 0
        self._task: asyncio.Task | None = None

    def add_result(self, write: dict[str, Any]) -> None:
        """Queue a finished cell's Run values (with its "id"); it is flushed at once."""
        self._writes.append(write)
        self._ready.set()

    def add_scores(self, scores: list[dict[str, Any]]) -> None:
        """Queue Score rows (see `score_row`)."""
        self._scores.extend(scores)
        self._ready.set()

    def start(self) -> None:
        """Start the background flushing task (inside the executor's event loop)."""
        self._task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        """Stop the background task and write whatever is still queued."""
        self._stopping = True
        self._ready.set()
        if self._task is not None:
            await self._task
        for _ in range(MAX_FLUSH_FAILURES):
            if not (self._writes or self._scores):
                break
            await self._flush()

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                await asyncio.wait_for(self._ready.wait(), timeout=0.5)
            except TimeoutError:
                continue
            self._ready.clear()
            await asyncio.sleep(self.flush_interval)
            if self._writes or self._scores:
                await self._flush()
                if self.on_flush:
                    self.on_flush()

    async def _flush(self) -> None:
        """Flush; on a database error keep the rows queued and try again (a paid result is never
        dropped because one write failed). MAX_FLUSH_FAILURES in a row stop the executor."""
        writes, self._writes = self._writes, []
        scores, self._scores = self._scores, []
        try:
            await asyncio.to_thread(write_batch, self.engine, self.worker_id, writes, scores)
            self._failures = 0
        except Exception as exc:
            self._writes[:0] = writes
            self._scores[:0] = scores
            self._failures += 1
            log.warning("writing results failed (%d in a row): %s", self._failures, exc)
            if self._failures >= MAX_FLUSH_FAILURES:
                raise
            await asyncio.sleep(0.2 * self._failures)
            self._ready.set()
