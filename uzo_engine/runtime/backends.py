"""Where a step runs: the two backends of the one executor core (:mod:`.core`).

Both run a step through the same :meth:`NodeWorker.execute` (retries, timeout,
cancellation, error text); they differ only in where that call happens.

- :class:`InProcessBackend`: plain :class:`NodeWorker` objects, each call in a
  thread of this process (tests, ``uzo run --local``, a loop node's iterations).
- :class:`RayBackend`: node actors on the Ray cluster, in two lanes. The CPU lane
  is one actor per CPU, each asking Ray for one CPU and taking one call at a
  time; the I/O lane is threaded actors that ask for no CPU and take many calls
  at once (a step that only waits on a database or an API holds no CPU slot).
  A step whose node asks for resources (``settings.cpus``, ``memory_mb``,
  ``resources``) runs as a Ray task with exactly that request; it borrows the
  CPU-lane actors whose CPUs it needs (they are retired, and replaced when the
  task ends), so Ray can place it and an autoscaler sees the demand.

Slots are dealt fairly between runs (:class:`~.slots.FairSlots`); a worker left
with an abandoned runner thread (a timed-out or cancelled step) is replaced as
soon as its last call returns, and an actor that died is replaced at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from uzo_engine.plan import NodeResult, StepContext
from uzo_engine.runtime.actors import (
    Absent,
    NodeWorker,
    NoopRunner,
    StepCall,
    StepMeta,
    never_cancelled,
)
from uzo_engine.runtime.slots import FairSlots

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Sequence

    from uzo_engine.plan import PlanStep, StepLane

log = logging.getLogger(__name__)


@dataclass
class StepDone:
    """What a backend reports for one step call."""

    meta: StepMeta | None  # None: the call returned nothing (``error`` says why)
    outputs: dict[str, Any] = field(default_factory=dict)  # port -> table or ObjectRef
    error: str | None = None


class Backend(Protocol):
    def run_chain(
        self,
        run_key: str,
        steps: Sequence[PlanStep],
        ctx: StepContext,
        inputs: Sequence[Any],
        stop: Callable[[], bool] = ...,
    ) -> list[asyncio.Future[StepDone]]:
        """Run ``steps`` one after the other on one worker (each reads only the one before
        it; ``inputs`` are the first one's); one future per step, set as each ends. A step
        of the chain does not start once ``stop()`` is true (the run was cancelled)."""
        ...

    async def cancel(self, execution_id: str) -> None: ...

    def begin(self, execution_id: str) -> None:
        """A run with this id starts (an id cancelled before may be run again)."""

    def fetch(self, value: Any) -> Any: ...


def _outputs(call: StepCall, values: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(call.outputs, values, strict=True))


class _Cancelled:
    """Runs cancelled lately: a step of theirs that gets a worker only now does not run."""

    def __init__(self, keep: int = 1000) -> None:
        self._ids: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._keep = keep

    def add(self, execution_id: str) -> None:
        self._ids[execution_id] = None
        while len(self._ids) > self._keep:
            self._ids.popitem(last=False)

    def __contains__(self, execution_id: object) -> bool:
        return execution_id in self._ids

    def discard(self, execution_id: str) -> None:
        self._ids.pop(execution_id, None)


def _chain_inputs(step: PlanStep, before: PlanStep, values: Sequence[Any]) -> list[Any]:
    """``step``'s inputs, all outputs of the step ``before`` it in a chain."""
    by_port = dict(zip(before.outputs, values, strict=True))
    return [by_port[i.output_port] for i in step.inputs]


def _start_chain(
    body: Callable[[list[asyncio.Future[StepDone]]], Coroutine[Any, Any, None]],
    steps: Sequence[PlanStep],
) -> list[asyncio.Future[StepDone]]:
    loop = asyncio.get_running_loop()
    futures: list[asyncio.Future[StepDone]] = [loop.create_future() for _ in steps]
    task = loop.create_task(body(futures))

    def settle(t: asyncio.Task[None]) -> None:  # a body that died: nobody waits forever
        error = None if t.cancelled() else t.exception()
        for f in futures:
            if not f.done():
                f.set_result(StepDone(None, error=f"the step was not run: {error!r}"))

    task.add_done_callback(settle)
    _CHAINS.add(task)
    task.add_done_callback(_CHAINS.discard)
    return futures


_CHAINS: set[asyncio.Task[None]] = set()  # running chain bodies (kept from the GC)


def _not_started(step: PlanStep) -> StepDone:
    results = [
        NodeResult(n, "cancelled", attempts=0, error="cancelled before start")
        for n in step.node_ids
    ]
    return StepDone(StepMeta(step.step_id, "cancelled", results))


# -- in this process ----------------------------------------------------------------------


class InProcessBackend:
    """Runs steps in threads of this process through plain :class:`NodeWorker` objects."""

    def __init__(self, concurrency: int = 4, io_concurrency: int = 16) -> None:
        self._lanes: dict[str, FairSlots[NodeWorker]] = {"cpu": FairSlots(), "io": FairSlots()}
        for lane, n in (("cpu", concurrency), ("io", io_concurrency)):
            for _ in range(max(1, n)):
                self._lanes[lane].add(NodeWorker())
        self._busy: dict[NodeWorker, str] = {}  # worker -> execution id of its call
        self._cancelled = _Cancelled()

    def run_chain(
        self,
        run_key: str,
        steps: Sequence[PlanStep],
        ctx: StepContext,
        inputs: Sequence[Any],
        stop: Callable[[], bool] = never_cancelled,
    ) -> list[asyncio.Future[StepDone]]:
        async def body(futures: list[asyncio.Future[StepDone]]) -> None:
            lane = self._lanes[steps[0].lane]
            worker = await lane.acquire(run_key)
            values: Sequence[Any] = inputs
            try:
                for i, (step, future) in enumerate(zip(steps, futures, strict=True)):
                    if i:
                        values = _chain_inputs(step, steps[i - 1], values)
                    asked = stop() or ctx.execution_id in self._cancelled
                    if asked and not any(isinstance(v, Absent) for v in values):
                        # (an absent input: the worker says why, as an actor would)
                        future.set_result(_not_started(step))
                        values = [Absent("cancelled", step.node_ids[0]) for _ in step.outputs]
                        continue
                    call = StepCall.from_step(step)
                    self._busy[worker] = ctx.execution_id
                    try:
                        meta, values = await asyncio.to_thread(worker.execute, call, ctx, values)
                    finally:
                        self._busy.pop(worker, None)
                    future.set_result(StepDone(meta, _outputs(call, values)))
                    if meta.poisoned:
                        # an abandoned runner thread cannot be killed in this process:
                        # the worker is not reused (the thread ends on its own)
                        worker = NodeWorker()
            finally:
                lane.release(worker)

        return _start_chain(body, steps)

    async def cancel(self, execution_id: str) -> None:
        self._cancelled.add(execution_id)
        for worker, eid in list(self._busy.items()):
            if eid == execution_id:
                worker.cancel(execution_id)

    def begin(self, execution_id: str) -> None:
        self._cancelled.discard(execution_id)

    def fetch(self, value: Any) -> Any:
        return value


# -- on Ray ----------------------------------------------------------------------------------


class _Handle:
    """One node actor and its calls in flight."""

    __slots__ = ("actor", "in_flight", "lane", "retired", "running", "slots")

    def __init__(self, actor: Any, lane: str, slots: int) -> None:
        self.actor = actor
        self.lane = lane
        self.slots = slots
        self.in_flight = 0
        self.retired = False  # poisoned or dead: no new calls; replaced once idle
        self.running: collections.Counter[str] = collections.Counter()  # execution id -> calls


def _step_task(call: StepCall, ctx: StepContext, *tables: Any) -> Any:
    """Body of a step that runs as a Ray task with its own resource request."""
    return NodeWorker().run_step(call, ctx, *tables)


_BURST_MAX = 8  # steps of one run a CPU actor takes at once (see FairSlots)
_BURST_BELOW_SECONDS = 0.002  # ... while that run's steps take less than this on average
_TIMED_RUNS = 4096  # runs whose step times are kept


class RayBackend:
    """Node actors of this process on the Ray cluster (Ray initialised before)."""

    def __init__(
        self,
        cpu_actors: int,
        io_actors: int = 1,
        io_concurrency: int = 64,
        *,
        actor_cpus: float = 1.0,
        start_timeout: float = 120.0,
    ) -> None:
        self.cpu_actors = max(1, cpu_actors)
        self.actor_cpus = actor_cpus
        self.start_timeout = start_timeout
        self.io_actors = max(1, io_actors)
        self.io_concurrency = max(1, io_concurrency)
        self._lanes: dict[str, FairSlots[_Handle]] = {
            "cpu": FairSlots(burst=self._burst),
            "io": FairSlots(),
        }
        # run key -> a moving average of its CPU-lane steps' seconds (recent runs only)
        self._step_seconds: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._handles: set[_Handle] = set()
        self._borrow = asyncio.Lock()
        self._spawning: set[asyncio.Task[None]] = set()
        self.replaced = 0  # actors replaced since start (poisoned or dead)
        self._task: Any = None
        self._cancelled = _Cancelled()

    # -- lifecycle ------------------------------------------------------------------------

    def _new_actor(self, lane: StepLane) -> Any:
        import ray

        options: dict[str, Any] = {
            "max_restarts": 0,
            "concurrency_groups": {"control": 1},  # cancel/info answer while a step runs
            "scheduling_strategy": "SPREAD",
        }
        if lane == "cpu":
            options["num_cpus"] = self.actor_cpus
        else:
            options["num_cpus"] = 0
            options["max_concurrency"] = self.io_concurrency
        remote: Any = ray.remote
        return remote(**options)(NodeWorker).remote()

    async def _spawn(self, lane: StepLane) -> None:
        """Start an actor, warm it up (imports, Polars) and only then offer its slots."""
        actor = self._new_actor(lane)
        handle = _Handle(actor, lane, 1 if lane == "cpu" else self.io_concurrency)
        warm = StepCall("warm-up", ("warm-up",), (), ("out",), NoopRunner())
        try:
            await actor.run_step.options(num_returns=2).remote(warm, StepContext("warm-up"))[0]
        except Exception:  # it will fail its first call too; that call reports it
            log.warning("a new %s-lane node actor failed its warm-up", lane, exc_info=True)
        self._handles.add(handle)
        self._lanes[lane].add(handle, handle.slots)

    async def start(self) -> None:
        """Create and warm up every actor (returns once all can take calls)."""
        import ray

        cpu: list[StepLane] = ["cpu"] * self.cpu_actors
        io: list[StepLane] = ["io"] * self.io_actors
        spawning = [asyncio.ensure_future(self._spawn(lane)) for lane in cpu + io]
        done, pending = await asyncio.wait(spawning, timeout=self.start_timeout)
        if pending:
            for task in pending:
                task.cancel()
            await self.shutdown()
            free = ray.available_resources().get("CPU", 0.0)  # type: ignore[no-untyped-call]
            total = ray.cluster_resources().get("CPU", 0.0)  # type: ignore[no-untyped-call]
            raise RuntimeError(
                f"Ray placed {len(done)} of {len(spawning)} node actors in "
                f"{self.start_timeout:g} s: {self.cpu_actors} ask {self.actor_cpus:g} CPU each "
                f"and the cluster has {free:g} of {total:g} CPUs free (other processes' node "
                "actors hold the rest?); lower UZO_ACTOR_POOL_SIZE or UZO_ACTOR_CPUS, or add "
                "nodes to the cluster"
            )
        for task in done:
            task.result()

    def _replace_later(self, handle: _Handle) -> None:
        import ray

        self._handles.discard(handle)
        with contextlib.suppress(Exception):
            ray.kill(handle.actor, no_restart=True)
        self.replaced += 1
        task = asyncio.get_running_loop().create_task(self._spawn(handle.lane))  # type: ignore[arg-type]
        self._spawning.add(task)
        task.add_done_callback(self._spawning.discard)

    def _retire(self, handle: _Handle) -> None:
        if not handle.retired:
            handle.retired = True
            self._lanes[handle.lane].discard(handle)
        if handle.in_flight == 0:
            self._replace_later(handle)

    def _give_back(self, handle: _Handle) -> None:
        if handle.retired:
            self._retire(handle)
        else:
            self._lanes[handle.lane].release(handle)

    async def shutdown(self) -> None:
        import ray

        for task in list(self._spawning):
            task.cancel()
        for handle in self._handles:
            with contextlib.suppress(Exception):
                ray.kill(handle.actor, no_restart=True)
        self._handles.clear()

    @property
    def actors(self) -> list[Any]:
        return [h.actor for h in self._handles]

    async def info(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        """What every live actor says of itself (pid, abandoned threads), with its lane."""
        handles = list(self._handles)
        refs = [h.actor.info.options(concurrency_group="control").remote() for h in handles]
        infos = await asyncio.wait_for(asyncio.gather(*refs), timeout)
        return [{**info, "lane": h.lane} for h, info in zip(handles, infos, strict=True)]

    # -- calls ------------------------------------------------------------------------------

    def run_chain(
        self,
        run_key: str,
        steps: Sequence[PlanStep],
        ctx: StepContext,
        inputs: Sequence[Any],
        stop: Callable[[], bool] = never_cancelled,
    ) -> list[asyncio.Future[StepDone]]:
        """All of the chain's calls go to one actor at once, each taking the refs of the
        one before: Ray resolves them on the actor, with no round trip to this driver."""

        async def body(futures: list[asyncio.Future[StepDone]]) -> None:
            first = steps[0]
            if first.resources is not None:  # never chained: a task of its own
                futures[0].set_result(await self._run_task(run_key, first, ctx, inputs))
                return
            handle = await self._lanes[first.lane].acquire(run_key)
            if stop() or ctx.execution_id in self._cancelled:
                self._give_back(handle)
                for step, future in zip(steps, futures, strict=True):
                    future.set_result(_not_started(step))
                return
            handle.in_flight += 1
            handle.running[ctx.execution_id] += 1
            try:
                submitted = []
                values: Sequence[Any] = inputs
                for i, step in enumerate(steps):
                    if i:
                        values = _chain_inputs(step, steps[i - 1], values)
                    call = StepCall.from_step(step)
                    refs = self._submit(handle.actor.run_step, call, ctx, values)
                    submitted.append((call, refs))
                    values = refs[1:]
                for (call, refs), future in zip(submitted, futures, strict=True):
                    try:
                        meta: StepMeta = await refs[0]
                    except Exception as exc:  # the actor died (killed, out of memory)
                        handle.retired = True
                        error = f"node actor failed: {type(exc).__name__}: {exc}"
                        future.set_result(StepDone(None, error=error))
                        continue
                    if meta.poisoned:
                        handle.retired = True
                    if handle.lane == "cpu":
                        self._timed(run_key, meta)
                    future.set_result(StepDone(meta, _outputs(call, refs[1:])))
            finally:
                handle.in_flight -= 1
                handle.running[ctx.execution_id] -= 1
                if handle.running[ctx.execution_id] <= 0:
                    del handle.running[ctx.execution_id]
                self._give_back(handle)

        return _start_chain(body, steps)

    def _timed(self, run_key: str, meta: StepMeta) -> None:
        if meta.started_at is None or meta.ended_at is None:
            return
        took = max(0.0, meta.ended_at - meta.started_at)
        before = self._step_seconds.pop(run_key, took)
        self._step_seconds[run_key] = 0.7 * before + 0.3 * took
        while len(self._step_seconds) > _TIMED_RUNS:
            self._step_seconds.popitem(last=False)

    def _burst(self, run_key: str) -> int:
        """How many of a run's waiting steps a freed CPU actor takes at once: several only
        while the run's steps have been shorter than a round trip to the actor."""
        seconds = self._step_seconds.get(run_key)
        return _BURST_MAX if seconds is not None and seconds < _BURST_BELOW_SECONDS else 1

    @staticmethod
    def _submit(method: Any, call: StepCall, ctx: StepContext, inputs: Sequence[Any]) -> list[Any]:
        n = 1 + len(call.outputs)
        if n == 1:
            return [method.remote(call, ctx, *inputs)]
        return list(method.options(num_returns=n).remote(call, ctx, *inputs))

    async def _run_task(
        self, run_key: str, step: PlanStep, ctx: StepContext, inputs: Sequence[Any]
    ) -> StepDone:
        import ray

        res = step.resources
        assert res is not None
        missing = self._unavailable(res.cpus, res.memory_bytes, dict(res.custom))
        if missing:
            return StepDone(None, error=missing)
        call = StepCall.from_step(step)
        borrowed: list[_Handle] = []
        try:
            async with self._borrow:  # one borrower at a time: no two half-served requests
                free = ray.available_resources().get("CPU", 0.0)  # type: ignore[no-untyped-call]
                short = max(0.0, res.cpus - free)
                for _ in range(min(self.cpu_actors, math.ceil(short / self.actor_cpus))):
                    # its own key: a borrowed actor is never shared with a burst
                    borrowed.append(await self._lanes["cpu"].acquire(f"{run_key}/borrow"))
            for handle in borrowed:  # retired: Ray gets their CPUs back for the task
                handle.retired = True
                handle.in_flight += 1
            for handle in borrowed:
                with contextlib.suppress(Exception):
                    ray.kill(handle.actor, no_restart=True)
            options: dict[str, Any] = {"num_cpus": res.cpus, "max_retries": 0}
            if res.memory_bytes:
                options["memory"] = res.memory_bytes
            if res.custom:
                options["resources"] = dict(res.custom)
            if self._task is None:
                remote: Any = ray.remote
                # a fresh worker process per task: an abandoned runner thread dies with it
                self._task = remote(max_calls=1)(_step_task)
            n = 1 + len(call.outputs)
            task = self._task.options(**options, num_returns=n)
            out = task.remote(call, ctx, *inputs)
            refs = [out] if n == 1 else list(out)
            meta: StepMeta = await refs[0]
            return StepDone(meta, _outputs(call, refs[1:]))
        except Exception as exc:
            return StepDone(None, error=f"step task failed: {type(exc).__name__}: {exc}")
        finally:
            for handle in borrowed:
                handle.in_flight -= 1
                self._retire(handle)

    @staticmethod
    def _unavailable(cpus: float, memory: int | None, custom: dict[str, float]) -> str | None:
        """Why the cluster can never place this request (None: it can)."""
        import ray

        total: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
        wanted = {"CPU": cpus, **custom}
        if memory:
            wanted["memory"] = float(memory)
        short = [
            f"{name} {amount:g} (the cluster has {total.get(name, 0):g})"
            for name, amount in sorted(wanted.items())
            if total.get(name, 0) < amount
        ]
        if not short:
            return None
        return "asks for more than the cluster has: " + ", ".join(short)

    async def cancel(self, execution_id: str) -> None:
        self._cancelled.add(execution_id)
        for handle in list(self._handles):
            if handle.running.get(execution_id):
                handle.actor.cancel.options(concurrency_group="control").remote(execution_id)

    def begin(self, execution_id: str) -> None:
        self._cancelled.discard(execution_id)

    def fetch(self, value: Any) -> Any:
        if isinstance(value, Absent):
            return value
        import ray

        return ray.get(value)
