"""A worker process's side of a sweep on several processes (`processes` is the other side).

`python -m workbench worker --standby` runs `serve_worker`: it imports what a call needs, says
`ready` on stdout, waits for `go SWEEP_ID SHARE_JSON` on stdin (it may wait long: a standby is
started before its sweep exists, see `standby`), runs that share of the sweep's limits and prints
`report {json}`. A cancel reaches it through the database, like any executor. The end of its
stdin (its parent is gone, or gave up) before the go ends it; after, it pauses it: its unfinished
cells go back to pending (or are cancelled, when the sweep was cancelled meanwhile) and it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import sys
import threading
from dataclasses import asdict

from sqlalchemy.engine import Engine
from sqlmodel import Session

from workbench.db import get_engine
from workbench.sweeps.execute import ExecutionReport, ExecutorOptions, SweepExecutor
from workbench.sweeps.limits import Limits
from workbench.sweeps.plan import require_sweep

IDLE_SECONDS = 15 * 60  # a ready worker told nothing for this long exits


def serve_worker(engine: Engine | None = None) -> ExecutionReport | None:
    """A supervised worker's life (`worker --standby`): get ready, wait for go, run its share.

    Talks with `Supervisor` over stdin/stdout (see the module doc); returns None when told to
    stop before it began.
    """
    from workbench.providers.completion import ensure_litellm

    engine = engine or get_engine()
    ensure_litellm()  # the slow import, before saying ready, so a go starts calls at once
    _warm_up()
    with Session(engine) as s:  # a first connection (its pool keeps it)
        s.connection()
    print("ready", flush=True)
    # A standby nobody uses (a previewed sweep never started) gives its memory back after a while;
    # the pool starts another on the next preview.
    waiting, _, _ = select.select([sys.stdin], [], [], IDLE_SECONDS)
    go = parse_go(sys.stdin.readline()) if waiting else None
    if go is None:
        return None
    sweep_id, share = go
    with Session(engine) as s:
        require_sweep(s, sweep_id)
    executor = SweepExecutor(sweep_id, ExecutorOptions(limits=share, score_cached=False), engine=engine)

    async def main() -> ExecutionReport:
        loop = asyncio.get_running_loop()

        def listen() -> None:
            # End of input: the parent is gone (or gave up on the sweep): give the cells back.
            for _line in sys.stdin:
                pass
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(executor.pause)

        threading.Thread(target=listen, name="workbench-worker-stdin", daemon=True).start()
        return await executor.run()

    report = asyncio.run(main())
    data = asdict(report)
    print("report " + json.dumps(data), flush=True)
    return report


def go_line(sweep_id: int, share: Limits) -> str:
    """What the sweep's process sends a ready worker to start it on its share."""
    return f"go {sweep_id} {share.to_json()}"


def parse_go(line: str) -> tuple[int, Limits] | None:
    """The sweep and share of a go line; None for anything else (end of input: stop)."""
    parts = line.strip().split(" ", 2)
    if len(parts) != 3 or parts[0] != "go":
        return None
    return int(parts[1]), Limits.from_json(parts[2])


def _warm_up() -> None:
    """Import what LiteLLM imports on its first call (about 0.5 s), so the first calls after go
    do not stall the worker while it holds its share."""
    import importlib

    for name in (
        "openai.resources.chat",
        "litellm.proxy._types",
        "litellm.litellm_core_utils.default_encoding",
    ):
        with contextlib.suppress(Exception):  # a speed-up only: other LiteLLM versions differ
            importlib.import_module(name)
