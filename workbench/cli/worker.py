"""`python -m workbench worker`: run pending cells of any sweep, alongside other workers.

Workers claim cells through the database (SKIP LOCKED on PostgreSQL), so several processes, on
one machine or many, share a sweep planned by `sweep run` or the app.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from workbench.cli.common import ensure_db


def cmd_worker(args: argparse.Namespace) -> int:
    """Claim and run pending cells of any sweep until none are left (or forever with --wait)."""
    import asyncio

    if args.standby:
        return _supervised()

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


def _supervised() -> int:
    """A worker started by a sweep's own process (`sweep run`, the app), running its share."""
    from workbench.sweeps.worker import serve_worker

    serve_worker()
    # Its results are committed and its report sent: skip the interpreter's teardown (most of a
    # second with LiteLLM loaded), which the sweep's process would otherwise wait for.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `worker`."""
    c = sub.add_parser("worker", help="Run pending cells from the database until none are left.")
    c.add_argument("--sweep", type=int, help="Only this sweep.")
    c.add_argument("--wait", action="store_true", help="Keep polling for new cells instead of exiting.")
    c.add_argument("--poll", type=float, default=2.0, help="Seconds between polls with --wait.")
    # Set by a sweep's process that starts its own workers: the worker gets its sweep and share of
    # the limits later, in a line protocol on stdin/stdout (workbench.sweeps.worker, standby).
    c.add_argument("--standby", action="store_true", help=argparse.SUPPRESS)
    c.set_defaults(func=cmd_worker)
