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
