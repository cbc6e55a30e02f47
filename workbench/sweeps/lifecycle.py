"""A sweep's states and how it moves between them: start, finish, cancel, resume, recover.

    pending --(an executor starts)--> running --(no cell left)--> done
    running --(request_cancel)--> cancelled;  any --(prepare_resume)--> pending
    running --(the executor crashed)--> failed (with the error; resume finishes it)

Executors (`execute`) call `mark_running`, `finish` and `finish_cancelled`; adapters (CLI, UI,
the server's start-up) call `request_cancel`, `prepare_resume`, `unfinished_sweeps` and
`mark_stopped`. Cells are handed out by `claims`; this module only changes their states in bulk.
"""

from __future__ import annotations

from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from workbench.db import get_engine
from workbench.models import Run, Sweep, utcnow
from workbench.sweeps import claims
from workbench.sweeps.plan import require_sweep

NOT_RUN = "Cancelled before it ran."
IN_FLIGHT = "Cancelled while its call was in flight; its result was not kept."


def _cancel_cells(session: Session, sweep_id: int, *, worker_id: str | None = None) -> None:
    """Cancel the sweep's pending cells, and the running cells of `worker_id` when given."""
    now = utcnow()
    values = {"status": "cancelled", "finished_at": now, "error_kind": "cancelled"}
    session.execute(
        update(Run)
        .where(Run.sweep_id == sweep_id, Run.status == "pending")
        .values(**values, error_message=NOT_RUN)
    )
    if worker_id is not None:
        session.execute(
            update(Run)
            .where(Run.sweep_id == sweep_id, Run.status == "running", Run.claimed_by == worker_id)
            .values(**values, error_message=IN_FLIGHT)
        )


def _count(session: Session, sweep_id: int, statuses: list[str]) -> int:
    stmt = (
        select(func.count()).select_from(Run).where(Run.sweep_id == sweep_id, col(Run.status).in_(statuses))
    )
    return int(session.exec(stmt).one())


def mark_running(sweep: Sweep) -> None:
    """An executor starts on `sweep` (the caller adds and commits it)."""
    if sweep.status in ("pending", "done", "failed", "cancelled"):
        sweep.status = "running"
        sweep.started_at = sweep.started_at or utcnow()
        sweep.finished_at = None


def cancel_requested(engine: Engine, sweep_id: int) -> bool:
    """True once someone asked the sweep to stop (executors poll this)."""
    with Session(engine) as s:
        return bool(s.exec(select(Sweep.cancel_requested).where(Sweep.id == sweep_id)).first())


def finish_cancelled(engine: Engine, sweep_id: int, *, worker_id: str) -> None:
    """An executor stopped by a cancel: its cells and the pending ones are cancelled, the sweep too.

    Cells other executors are running finish there (their calls are already paid for).
    """
    with Session(engine) as s:
        _cancel_cells(s, sweep_id, worker_id=worker_id)
        sweep = require_sweep(s, sweep_id)
        sweep.status = "cancelled"
        sweep.finished_at = utcnow()
        s.add(sweep)
        s.commit()


def finish(engine: Engine, sweep_id: int, *, stopped_models: dict[str, str] | None = None) -> None:
    """An executor ran out of cells: the sweep is done when no cell is left anywhere.

    `stopped_models` (model -> reason, from the circuit breaker) is written as the sweep's error.
    """
    with Session(engine) as s:
        sweep = require_sweep(s, sweep_id)
        if _count(s, sweep_id, ["pending", "running"]) == 0 and sweep.status != "cancelled":
            sweep.status = "done"
            sweep.finished_at = utcnow()
        if stopped_models:
            notes = "; ".join(f"{m}: {r}" for m, r in stopped_models.items())
            sweep.error = f"Stopped calling {notes}"
        s.add(sweep)
        s.commit()


def request_cancel(sweep_id: int, *, engine: Engine | None = None) -> None:
    """Ask every executor of a sweep to stop (honoured within about a second).

    Pending cells are cancelled at once, and so are cells held by executors that died, so a
    sweep whose process is gone still ends up cancelled instead of "running" forever.
    """
    engine = engine or get_engine()
    claims.release_stale(engine, sweep_id=sweep_id)  # dead executors' cells back to pending
    with Session(engine) as s:
        sweep = require_sweep(s, sweep_id)
        if sweep.status in ("done", "cancelled"):
            return
        sweep.cancel_requested = True
        _cancel_cells(s, sweep_id)
        if not _count(s, sweep_id, ["running"]):  # no live executor holds a cell: nobody else will close it
            sweep.status = "cancelled"
            sweep.finished_at = utcnow()
        s.add(sweep)
        s.commit()


def prepare_resume(sweep_id: int, *, retry_failed: bool = False, engine: Engine | None = None) -> int:
    """Make a sweep runnable again: release dead claims, optionally retry failed and cancelled cells.

    Returns the number of cells that will run.
    """
    engine = engine or get_engine()
    claims.release_stale(engine, sweep_id=sweep_id)
    with Session(engine) as s:
        sweep = require_sweep(s, sweep_id)
        sweep.cancel_requested = False
        states = ["failed", "cancelled"] if retry_failed else ["cancelled"]
        s.execute(
            update(Run)
            .where(Run.sweep_id == sweep_id, col(Run.status).in_(states))
            .values(
                status="pending",
                claimed_by=None,
                started_at=None,
                finished_at=None,
                error_kind=None,
                error_message=None,
            )
        )
        pending = _count(s, sweep_id, ["pending", "running"])
        if pending:
            sweep.status = "pending"
            sweep.finished_at = None
            sweep.error = None
        s.add(sweep)
        s.commit()
    return pending


def pending_sweep_ids(engine: Engine | None = None, *, sweep_id: int | None = None) -> list[int]:
    """Sweeps with pending cells that nobody asked to cancel (only `sweep_id` when given)."""
    with Session(engine or get_engine()) as s:
        stmt = (
            select(Run.sweep_id)
            .join(Sweep, Sweep.id == Run.sweep_id)
            .where(Run.status == "pending", col(Sweep.cancel_requested).is_(False))
            .distinct()
        )
        if sweep_id is not None:
            stmt = stmt.where(Run.sweep_id == sweep_id)
        return sorted(s.exec(stmt).all())


def unfinished_sweeps(engine: Engine | None = None) -> list[int]:
    """Sweeps left running with pending cells (their process died): release its claims, list them."""
    engine = engine or get_engine()
    claims.release_stale(engine)
    with Session(engine) as s:
        stmt = (
            select(Run.sweep_id)
            .join(Sweep, Sweep.id == Run.sweep_id)
            .where(
                Run.status == "pending",
                col(Sweep.status) == "running",
                col(Sweep.cancel_requested).is_(False),
            )
            .distinct()
        )
        return sorted(s.exec(stmt).all())


def mark_stopped(sweep_id: int, error: BaseException, *, engine: Engine | None = None) -> None:
    """An executor of this process crashed (a database outage, a bug): record why, free its cells.

    The sweep is marked failed with the error, so a page says what happened, and this process's
    claims go back to pending, so a resume finishes the rest.
    """
    engine = engine or get_engine()
    claims.release_stale(engine, sweep_id=sweep_id, release_own=True)
    with Session(engine) as s:
        sweep = s.get(Sweep, sweep_id)
        if sweep is None:  # deleted meanwhile: nothing to record the error on
            return
        sweep.status = "failed"
        sweep.error = f"The sweep stopped: {type(error).__name__}: {error}. Resume it to finish the rest."
        s.add(sweep)
        s.commit()
