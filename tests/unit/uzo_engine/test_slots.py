"""Free workers are dealt to runs in turn (no run starves behind another's backlog)."""

from __future__ import annotations

import asyncio

from uzo_engine.runtime.slots import FairSlots


def test_a_run_with_one_step_is_served_before_a_backlog_ahead_of_it() -> None:
    async def scenario() -> list[str]:
        slots: FairSlots[str] = FairSlots()
        slots.add("w1")
        served: list[str] = []
        holder = await slots.acquire("big")  # the only worker is busy with run "big"

        async def step(run: str, name: str) -> None:
            worker = await slots.acquire(run)
            served.append(name)
            await asyncio.sleep(0)
            slots.release(worker)

        backlog = [asyncio.create_task(step("big", f"big-{i}")) for i in range(4)]
        await asyncio.sleep(0)
        late = asyncio.create_task(step("small", "small-0"))  # submitted after the backlog
        await asyncio.sleep(0)
        slots.release(holder)
        await asyncio.gather(*backlog, late)
        return served

    served = asyncio.run(scenario())
    assert served[:2] == ["big-0", "small-0"]  # one of each run in turn
    assert sorted(served) == ["big-0", "big-1", "big-2", "big-3", "small-0"]


def test_a_cancelled_waiter_gives_its_slot_on() -> None:
    async def scenario() -> tuple[str, int]:
        slots: FairSlots[str] = FairSlots()
        slots.add("w1")
        holder = await slots.acquire("a")
        gone = asyncio.create_task(slots.acquire("b"))
        waiting = asyncio.create_task(slots.acquire("c"))
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.sleep(0)
        slots.release(holder)
        got = await waiting
        return got, slots.waiting

    assert asyncio.run(scenario()) == ("w1", 0)


def test_a_retired_worker_is_taken_out_of_the_idle_slots() -> None:
    slots: FairSlots[str] = FairSlots()
    slots.add("io", 3)
    slots.add("cpu")
    assert slots.idle == 4
    assert slots.discard("io") == 3
    assert slots.idle == 1


def test_a_burst_hands_one_worker_to_several_steps_of_a_fast_run() -> None:
    """A freed worker goes to up to ``burst(run)`` steps of the run in turn; it is free
    again (for the next run in turn) only once every one of them gave it back."""

    async def scenario() -> tuple[list[tuple[str, str]], list[str]]:
        slots: FairSlots[str] = FairSlots(burst=lambda run: 3 if run == "fast" else 1)
        slots.add("w1")
        holder = await slots.acquire("other")
        granted: list[tuple[str, str]] = []
        order: list[str] = []

        async def step(run: str, name: str) -> str:
            worker = await slots.acquire(run)
            granted.append((name, worker))
            return worker

        fast = [asyncio.create_task(step("fast", f"fast-{i}")) for i in range(5)]
        slow = asyncio.create_task(step("slow", "slow-0"))
        await asyncio.sleep(0)
        slots.release(holder)
        await asyncio.sleep(0)
        order.extend(name for name, _ in granted)  # the burst: three fast steps at once
        for task in fast[:2]:
            slots.release(await task)
        await asyncio.sleep(0)
        assert not slow.done()  # the worker is still held by the burst's third step
        slots.release(await fast[2])
        await asyncio.sleep(0)
        order.append("|")
        order.extend(name for name, _ in granted[3:])
        slots.release(await slow)
        for task in fast[3:]:
            slots.release(await task)
        return granted, order

    granted, order = asyncio.run(scenario())
    assert order == ["fast-0", "fast-1", "fast-2", "|", "slow-0"]  # then the slow run's turn
    assert {w for _, w in granted} == {"w1"}
    assert sorted(n for n, _ in granted) == [*(f"fast-{i}" for i in range(5)), "slow-0"]


def test_without_a_burst_each_step_holds_the_worker_alone() -> None:
    async def scenario() -> int:
        slots: FairSlots[str] = FairSlots(burst=lambda run: 1)
        slots.add("w1")
        holder = await slots.acquire("a")
        waiting = [asyncio.create_task(slots.acquire("a")) for _ in range(3)]
        await asyncio.sleep(0)
        slots.release(holder)
        await asyncio.sleep(0)
        return sum(t.done() for t in waiting)

    assert asyncio.run(scenario()) == 1
