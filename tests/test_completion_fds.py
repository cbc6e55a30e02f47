"""Provider HTTP clients are closed when an executor's loop is done with them.

LiteLLM caches one client per event loop and never closes it: before the fix every sweep run in a
process left its connections open (8 descriptors per sweep here), and a server running ~80 sweeps
ran out of file descriptors. The fake server runs in this process, so its side of a connection
left open counts too.
"""

from __future__ import annotations

import asyncio
import os

from sqlmodel import select

from tests import sweep_helpers as h
from workbench.db import session_scope
from workbench.models import Run
from workbench.prompts import store
from workbench.providers.completion import complete
from workbench.sweeps.execute import ExecutorOptions, SweepExecutor

SWEEPS = 30


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def statuses(sweep_id: int) -> list[str]:
    with session_scope() as s:
        return list(s.exec(select(Run.status).where(Run.sweep_id == sweep_id)))


def test_sweeps_one_after_another_do_not_leak_descriptors(fake_models):
    h.seed(4)
    for stream in (True, False):  # the first sweeps create what stays for the process's life
        h.run(h.plan(stream=stream, use_cache=False))
    before = open_fds()
    for i in range(SWEEPS):
        sweep_id = h.plan(stream=i % 2 == 0, use_cache=False)
        h.run(sweep_id)
        assert statuses(sweep_id) == ["done"] * 4
    grown = open_fds() - before
    print(f"{SWEEPS} sweeps of 4 cells: {grown:+d} open file descriptors")
    # A leak adds several descriptors per sweep (a client and its connections, both ends);
    # a few can be in the middle of closing when counted.
    assert grown < SWEEPS // 3


def test_single_calls_do_not_leak_descriptors(fake_models):
    complete(h.FAKE, [{"role": "user", "content": "warm up"}])
    before = open_fds()
    for i in range(SWEEPS):
        assert complete(h.FAKE, [{"role": "user", "content": f"call {i}"}]).text == f"echo: call {i}"
    grown = open_fds() - before
    print(f"{SWEEPS} calls: {grown:+d} open file descriptors")
    assert grown < SWEEPS // 3


def test_an_executor_ending_leaves_the_clients_of_another_on_its_loop_open(fake_models):
    """Two executors share a loop (and a client): the quick one ends while the slow one is in the
    middle of its calls, which must not be cut (one attempt each: no retry could hide it)."""
    from tests.fakeserver import Reply
    from workbench.sweeps.retry import RetryPolicy

    h.seed(4)
    with session_scope() as s:
        store.save_version(s, prompt_name="slow", messages=[{"role": "user", "content": "slow {{ marker }}"}])
    fake_models.script("slow cell", [Reply(text="late", latency=0.5)])
    quick = h.plan(use_cache=False)
    slow = h.plan(prompts=["slow"], use_cache=False)
    once = RetryPolicy(max_attempts=1)

    async def both():
        return await asyncio.gather(
            SweepExecutor(quick, ExecutorOptions(retry=once)).run(),
            SweepExecutor(slow, ExecutorOptions(retry=once)).run(),
        )

    quick_report, slow_report = asyncio.run(both())
    assert (quick_report.done, quick_report.failed) == (4, 0)
    assert (slow_report.done, slow_report.failed) == (4, 0)
    assert statuses(slow) == ["done"] * 4
