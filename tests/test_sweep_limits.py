"""Concurrency limits shared by the processes of one sweep: shares and the resizable limiter."""

import asyncio

import pytest

from workbench.sweeps.limits import Limiter, Limits, max_processes, partition


def test_shares_add_up_to_every_limit_and_the_first_holds_one_of_each():
    limits = Limits(total=7, models={"a": 5, "b": 1, "c": 2})
    shares = partition(limits, 3)
    assert sum(s.total for s in shares) == 7
    for model, limit in limits.models.items():
        assert sum(s.models[model] for s in shares) == limit
        assert shares[0].models[model] >= 1  # a small limit is never left without a process
    assert [s.claimable() for s in shares] == [["a", "b", "c"], ["a", "c"], ["a"]]


def test_what_the_others_hold_is_given_back():
    limits = Limits(total=8, models={"a": 3})
    first, second = partition(limits, 2)
    assert limits.minus(second) == first and first.plus(second) == limits
    assert Limits.from_json(second.to_json()) == second


def test_no_more_processes_than_can_each_hold_a_share():
    limits = Limits(total=16, models={"a": 8, "b": 1, "judge": 3})
    assert max_processes(limits, ["a", "b"]) == 8
    assert max_processes(limits, ["b"]) == 1  # nothing for a second process to call
    assert max_processes(limits, ["a"], judge_model="judge") == 3  # every process judges its cells
    assert max_processes(Limits(total=2, models={"a": 8}), ["a"]) == 2


def test_a_limiter_never_lets_more_in_than_its_capacity_while_it_shrinks_and_grows():
    async def scenario():
        limiter = Limiter(4)
        inside, most, log = 0, 0, []

        async def call(i):
            nonlocal inside, most
            async with limiter:
                inside += 1
                most = max(most, inside)
                log.append((limiter.capacity, inside))
                await asyncio.sleep(0.01)
                inside -= 1

        tasks = [asyncio.create_task(call(i)) for i in range(40)]
        await asyncio.sleep(0.005)
        limiter.resize(2)
        await limiter.drained()
        assert limiter.in_use <= 2
        await asyncio.sleep(0.02)
        limiter.resize(3)
        await asyncio.gather(*tasks)
        return most, log

    most, log = asyncio.run(scenario())
    assert most == 4
    assert all(inside <= capacity for capacity, inside in log)
    assert any(capacity == 3 and inside == 3 for capacity, inside in log)  # grown again: used


def test_a_cancelled_waiter_gives_its_place_back():
    async def scenario():
        limiter = Limiter(1)
        await limiter.__aenter__()
        waiter = asyncio.create_task(limiter.__aenter__())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await limiter.__aexit__(None, None, None)
        assert limiter.in_use == 0
        async with limiter:  # free again
            assert limiter.in_use == 1

    asyncio.run(scenario())


def test_an_executor_whose_limits_shrink_gives_back_the_cells_it_cannot_start_soon(fake_models):
    from sqlmodel import select

    from tests.fakeserver import Reply
    from tests.sweep_helpers import FAKE, FAKE2, plan, seed
    from workbench.db import session_scope
    from workbench.models import Run
    from workbench.sweeps.execute import ExecutorOptions, SweepExecutor

    fake_models.default = Reply(latency=0.4)
    seed(60)
    sweep_id = plan(concurrency=16)  # the models allow 16 at once too: 16 in flight, 16 queued

    def count(status):
        with session_scope() as s:
            return len(s.exec(select(Run.id).where(Run.sweep_id == sweep_id, Run.status == status)).all())

    async def scenario():
        executor = SweepExecutor(sweep_id, ExecutorOptions())
        run = asyncio.create_task(executor.run())
        while fake_models.count() < 16:
            await asyncio.sleep(0.01)
        assert count("running") == 32
        executor.set_limits(Limits(total=8, models={FAKE: 8, FAKE2: 8}))
        await executor.shed()
        released = count("pending")
        await executor.drained()
        assert fake_models.in_flight <= 8
        return released, await run

    released, report = asyncio.run(scenario())
    assert released == 60 - 32 + 8  # the 8 queued cells beyond the smaller window went back
    assert report.called == 60 and fake_models.count() == 60  # every cell called once
    assert fake_models.max_in_flight == 16
