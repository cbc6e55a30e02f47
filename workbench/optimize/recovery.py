"""Optimizations whose process died: resume them with their calls and cost carried over, or fail them
saying exactly what was lost.

DSPy's optimizers keep their state in memory, so a run cannot continue mid-way. What can be kept is
kept: the calls and cost already spent (they count against the same cap, which stays the run's total),
the baseline scores when the baseline pass had finished, and the log. The optimizer itself starts
again, and the log says so. When the cap leaves too few calls for a fresh optimizer pass, or the run
has already been restarted `MAX_RESTARTS` times (a run that keeps killing its process should not
restart forever), the run is marked failed with what was lost: calls, cost and phase. Either way
`start_again` creates a new run with the same settings and a fresh cap.

`recover_orphans` is what a starting server does for every orphan of its machine; `prepare_resume`
is what a user asks for one run (the command line's `optimize resume`): it also takes a pending
run nobody started, and reopens a run failed by its dead process when its cap still has room (an
explicit request is not held to `MAX_RESTARTS`).
"""

from __future__ import annotations

import socket
import time
from dataclasses import asdict, dataclass

from sqlmodel import Session, col, select

from workbench import present
from workbench.db import session_scope
from workbench.errors import ValidationError
from workbench.models import Optimization, utcnow
from workbench.optimize.results import require_optimization
from workbench.optimize.run import create_optimization, plan_of, spec_of

MAX_RESTARTS = 2


@dataclass(frozen=True)
class Interrupted:
    """What an optimization had spent when its process stopped."""

    calls: int
    cost_usd: float | None
    phase: str

    @classmethod
    def of(cls, row: Optimization) -> Interrupted:
        """What `row` had spent, as last written by its worker."""
        return cls(
            row.lm_calls, row.cost_usd, (row.config or {}).get("progress", {}).get("phase", "starting")
        )

    def describe(self) -> str:
        """'12 calls ($0.0031) during the optimizing phase'."""
        return f"{self.calls} calls ({present.money(self.cost_usd)}) during the {self.phase} phase"


def orphaned_optimizations(session: Session) -> list[int]:
    """Running optimizations of this machine whose process is gone (a restart or a crash)."""
    from workbench.sweeps.claims import claim_is_dead

    ids = []
    for row in session.exec(select(Optimization).where(col(Optimization.status) == "running")):
        runner_id = (row.config or {}).get("runner") or ""
        # Only runs of this machine are judged: a live run elsewhere has no lease to expire.
        if runner_id.split(":")[0] == socket.gethostname() and claim_is_dead(runner_id, row.created_at):
            ids.append(row.id)
    return ids


def calls_needed(row: Optimization) -> int:
    """The fewest calls a restarted run needs: baseline (unless kept), one optimizer call, final pass."""
    plan = plan_of(row)
    kept = (row.config or {}).get("baseline_rows") is not None
    return (0 if kept else plan.eval_calls) + 1 + plan.eval_calls


def resume_or_fail(
    session: Session, optimization_id: int, *, runner_id: str | None = None, explicit: bool = False
) -> str:
    """Make an orphaned optimization ready to run again ("resumed"), or close it ("failed", "cancelled").

    A resumed run keeps its status "running" under `runner_id` (this process), so another server
    starting at the same time does not take it too, and a crash before it starts is found again.
    `explicit` (a user asked for this run) lifts the limit of MAX_RESTARTS.
    """
    from workbench.sweeps.claims import new_worker_id

    row = require_optimization(session, optimization_id)
    lost = Interrupted.of(row)
    config = dict(row.config or {})
    restarts = list(config.get("restarts", []))
    stopped = "The process running this optimization stopped (a restart or crash)"
    if row.cancel_requested:
        _close(
            row, "cancelled", None, f"{stopped} after a cancel was requested, having spent {lost.describe()}."
        )
        return "cancelled"
    remaining = (row.call_cap or 0) - row.lm_calls
    if len(restarts) >= MAX_RESTARTS and not explicit:
        reason = f"It had already been restarted {len(restarts)} times."
    elif remaining < calls_needed(row):
        reason = (
            f"Only {max(remaining, 0)} of its {row.call_cap} calls remain, fewer than a fresh optimizer "
            f"pass needs ({calls_needed(row)})."
        )
    else:
        restarts.append(
            {"at": utcnow().isoformat(), "calls": lost.calls, "cost_usd": lost.cost_usd, "phase": lost.phase}
        )
        row.config = {**config, "restarts": restarts, "runner": runner_id or new_worker_id()}
        _log(row, f"{stopped} having spent {lost.describe()}. Resuming: they count against the same cap.")
        session.add(row)
        return "resumed"
    error = (
        f"{stopped}. Lost: {lost.describe()}; nothing the optimizer had learned was kept. {reason} "
        "Start it again with the same settings."
    )
    _close(row, "failed", error, error)
    return "failed"


def _log(row: Optimization, line: str) -> None:
    row.log = "\n".join(x for x in ((row.log or "").rstrip("\n"), f"{time.strftime('%H:%M:%S')} {line}") if x)


def _close(row: Optimization, status: str, error: str | None, line: str) -> None:
    row.status = status
    row.error = error
    row.finished_at = utcnow()
    row.config = {**(row.config or {}), "interrupted": asdict(Interrupted.of(row))}
    _log(row, line)


def recover_orphans() -> dict[int, str]:
    """Resume or fail every orphaned optimization of this machine; id -> resumed | failed | cancelled.

    One transaction (SQLite's BEGIN IMMEDIATE, a row lock on PostgreSQL): two servers starting at
    once do not both resume a run.
    """
    with session_scope() as s:
        ids = orphaned_optimizations(s)
        if ids:
            s.exec(select(Optimization).where(col(Optimization.id).in_(ids)).with_for_update()).all()
        return {oid: resume_or_fail(s, oid) for oid in ids}


def prepare_resume(session: Session, optimization_id: int) -> str:
    """Make one unfinished optimization ready to run in this process; "pending", "resumed" or "failed".

    A pending run runs as it is. A running run whose process is gone resumes with its calls and cost
    carried over, or fails saying what was lost (too few calls left). A run failed because its process
    stopped reopens the same way when its cap still has room. A run still alive in another process, a
    finished one, or one failed for another reason cannot resume: ValidationError.
    """
    from workbench.sweeps.claims import claim_is_dead, new_worker_id

    session.exec(select(Optimization).where(Optimization.id == optimization_id).with_for_update()).all()
    row = require_optimization(session, optimization_id)
    config = row.config or {}
    runner_id = config.get("runner") or ""
    if row.status == "pending":
        return "pending"
    if row.status == "running":
        host, _, rest = runner_id.partition(":")
        if runner_id and host != socket.gethostname():
            raise ValidationError(
                f"Optimization #{row.id} is running on another machine ({host}); only there can it resume.",
                field="optimization",
            )
        if not claim_is_dead(runner_id, row.created_at):
            raise ValidationError(
                f"Optimization #{row.id} is still running (process {rest.split(':')[0]}); cancel it or wait "
                "for it to finish.",
                field="optimization",
            )
        return resume_or_fail(session, row.id, runner_id=new_worker_id(), explicit=True)
    if row.status == "failed" and "interrupted" in config and not row.cancel_requested:
        lost = Interrupted(**config["interrupted"])
        remaining = (row.call_cap or 0) - row.lm_calls
        if remaining < calls_needed(row):
            raise ValidationError(
                f"Optimization #{row.id} cannot resume: only {max(remaining, 0)} of its {row.call_cap} "
                f"calls remain, fewer than a fresh optimizer pass needs ({calls_needed(row)}). Start it "
                "again with the same settings.",
                field="restart",
            )
        restarts = [*config.get("restarts", []), {"at": utcnow().isoformat(), **asdict(lost)}]
        row.config = {**config, "restarts": restarts, "runner": new_worker_id()}
        row.status, row.error, row.finished_at = "running", None, None
        _log(row, f"Resumed on request having spent {lost.describe()}: they count against the same cap.")
        session.add(row)
        return "resumed"
    why = "it was cancelled" if row.status == "cancelled" else f"it is {row.status}"
    if row.status == "failed":
        why = f"it failed ({row.error or 'no reason recorded'}), not because its process stopped"
    raise ValidationError(
        f"Optimization #{row.id} cannot resume: {why}. Start it again with the same settings.",
        field="restart",
    )


def restarts_of(row: Optimization) -> list[Interrupted]:
    """The interruptions a run was resumed from, oldest first (empty for a run that never stopped)."""
    return [
        Interrupted(r.get("calls", 0), r.get("cost_usd"), r.get("phase", "?"))
        for r in (row.config or {}).get("restarts", [])
    ]


def start_again(session: Session, optimization_id: int) -> Optimization:
    """A new optimization with the same settings as `optimization_id` (re-planned, so a fresh cap)."""
    row, _ = create_optimization(session, spec_of(require_optimization(session, optimization_id)))
    return row
