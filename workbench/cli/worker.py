"""`python -m workbench worker`: run pending cells of any sweep, alongside other workers.

Workers claim cells through the database (SKIP LOCKED on PostgreSQL), so several processes, on
one machine or many, share a sweep planned by `sweep run` or the app.
"""

from __future__ import annotations

import argparse
import sys
import time

from workbench.cli.common import ensure_db


def cmd_worker(args: argparse.Namespace) -> int:
    """Claim and run pending cells of any sweep until none are left (or forever with --wait)."""
    import asyncio

    from workbench.db import get_engine
    from workbench.sweeps import claims, lifecycle
    from workbench.sweeps.execute import ExecutorOptions, SweepExecutor

    ensure_db()
    engine = get_engine()
    worker_id = claims.new_worker_id()
    print(f"worker {worker_id} started", file=sys.stderr)
    total = 0
    while True:
        claims.release_stale(engine, sweep_id=args.sweep)  # cells of dead workers run again
        sweep_ids = lifecycle.pending_sweep_ids(engine, sweep_id=args.sweep)
        for sweep_id in sweep_ids:
            report = asyncio.run(SweepExecutor(sweep_id, ExecutorOptions(worker_id=worker_id)).run())
            total += report.called
            print(f"sweep {sweep_id}: ran {report.called} cells ({report.failed} failed)", file=sys.stderr)
        if not sweep_ids:
            if not args.wait:
                break
            time.sleep(args.poll)
    print(f"worker {worker_id} done: {total} cells", file=sys.stderr)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `worker`."""
    c = sub.add_parser("worker", help="Run pending cells from the database until none are left.")
    c.add_argument("--sweep", type=int, help="Only this sweep.")
    c.add_argument("--wait", action="store_true", help="Keep polling for new cells instead of exiting.")
    c.add_argument("--poll", type=float, default=2.0, help="Seconds between polls with --wait.")
    c.set_defaults(func=cmd_worker)
