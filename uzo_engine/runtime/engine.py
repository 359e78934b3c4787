"""The process-wide runtime: Ray connection + node-actor pool + preview cache + Prefect mirror.

The runtime never waits for Prefect (ADR 0005): it starts the local Prefect
server if UZO runs one, without waiting for it to answer, and hands its URL to
the :class:`~uzo_engine.runtime.record.Recorder`, which mirrors runs from this
process and retries until Prefect answers. Ray workers get nothing of Prefect:
no Prefect code runs in them, so no API URL (a loopback one least of all) is
shipped to the workers of a remote cluster.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING

from uzo_engine.plan import StepContext
from uzo_engine.runtime import cluster, prefect_server
from uzo_engine.runtime.loop import LoopThread

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from uzo_engine.events import EventSink
    from uzo_engine.plan import ExecutionPlan
    from uzo_engine.runtime.actors import ActorPool
    from uzo_engine.runtime.cluster import ClusterInfo
    from uzo_engine.runtime.flow import RunResult
    from uzo_engine.runtime.prefect_server import PrefectApi
    from uzo_engine.runtime.preview import PreviewCache, PreviewResult
    from uzo_engine.runtime.record import Recorder
    from uzo_engine.settings import EngineSettings

log = logging.getLogger(__name__)


class Runtime:
    """Runs plans (Prefect flow runs) and previews (direct actor calls) on a warm cluster."""

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self.prefect: PrefectApi | None = None
        self.cluster: ClusterInfo | None = None
        self._pool: ActorPool | None = None
        self._preview_cache: PreviewCache | None = None
        self._recorder: Recorder | None = None
        self._loop: LoopThread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Runtime:
        """Ray, then the actor pool, and the Prefect mirror alongside (idempotent).

        Returns without waiting for Prefect: a Prefect API that does not answer (yet)
        delays only the mirror.
        """
        from uzo_engine.runtime.actors import ActorPool
        from uzo_engine.runtime.preview import PreviewCache

        with self._lock:
            if self._pool is not None:
                return self
            api = self._start_prefect()  # first: it starts (in its process) while Ray does
            try:
                self.cluster = cluster.connect(self.settings)
                size = self.settings.actor_pool_size or self.cluster.num_cpus
                pool = ActorPool(size)
                pool.ready()
            except BaseException:
                self._stop_mirror(stop_prefect=True)
                raise
            self._pool = pool
            self._preview_cache = PreviewCache()
            # after Ray: the recorder's thread imports Prefect (seconds of CPU), and Ray's
            # start has a fixed 30 s deadline that a loaded machine can miss
            self._recorder = self._mirror_to(api) if api is not None else None
            return self

    def _start_prefect(self) -> PrefectApi | None:
        """The local Prefect server (started, not waited for) or the external API; None when
        the mirror is off or the server cannot start (runs go on either way)."""
        settings = self.settings
        if not settings.prefect_mirror:
            return None
        try:
            api = prefect_server.ensure_prefect_api(settings, wait=False)
        except Exception as exc:  # e.g. Prefect's database cannot be created: runs go on
            log.warning("Prefect mirror off: the Prefect server did not start: %s", exc)
            return None
        self.prefect = api
        return api

    def _mirror_to(self, api: PrefectApi) -> Recorder:
        from uzo_engine.runtime.record import Recorder

        settings = self.settings
        prefect_server.prepare_client(settings)
        hint = f"see {settings.prefect_home / 'server.log'}" if api.pid is not None else ""
        return Recorder(
            api.url,
            cancel_run=self.cancel,
            nice=settings.prefect_nice,
            delay=settings.prefect_record_delay_seconds,
            give_up_seconds=settings.prefect_mirror_give_up_seconds,
            startup_grace_seconds=settings.prefect_server_start_timeout_seconds,
            forward_errors=settings.prefect_mirror_errors,
            hint=hint,
        )

    def _stop_mirror(self, *, stop_prefect: bool, timeout: float = 0.0) -> None:
        if self._recorder is not None:
            self._recorder.close(timeout=timeout)
            self._recorder = None
        api = self.prefect
        if stop_prefect and api is not None and api.started_here:
            prefect_server.stop_prefect_server(self.settings)
            self.prefect = None

    @property
    def mirror(self) -> Recorder | None:
        """The Prefect mirror of this runtime's runs (None when off)."""
        return self._recorder

    def warm_up(self) -> float:
        """Run a one-step plan on every node actor, so the first real run does not pay the
        actors' imports. Returns the seconds it took (the Prefect mirror is not awaited)."""
        from uzo_engine.plan import ExecutionPlan, PlanStep, Stage
        from uzo_engine.runtime.actors import NoopRunner

        # one step per actor (steps are dealt to actors in turn), so every actor warms up
        ids = [f"warm-up-{i}" for i in range(self.pool.size)]
        steps = {i: PlanStep(i, (i,), (), ("out",), NoopRunner()) for i in ids}
        plan = ExecutionPlan("uzo-warm-up", steps, (Stage(0, tuple(ids)),), {i: i for i in ids})
        started = time.perf_counter()
        NoopRunner().run({}, StepContext(execution_id="warm-up"))  # this process compiles plans
        result = self.run_sync(plan)
        if result.status != "succeeded":
            raise RuntimeError(f"warm-up run {result.status}: {result.error}")
        return time.perf_counter() - started

    @property
    def pool(self) -> ActorPool:
        if self._pool is None:
            self.start()
        assert self._pool is not None
        return self._pool

    def close(self, *, stop_cluster: bool = False, stop_prefect: bool = False) -> None:
        """Release the actors; optionally stop Ray, and the local Prefect server if this
        runtime started it (one another process started, e.g. `uzo serve`'s, keeps running).

        Runs still being mirrored get up to 30 s to reach Prefect first.
        """
        with self._lock:
            self._stop_mirror(stop_prefect=stop_prefect, timeout=30.0)
            if self._loop is not None:
                self._loop.stop()
                self._loop = None
            if self._preview_cache is not None:
                self._preview_cache.clear()
            if self._pool is not None:
                try:
                    self._pool.shutdown()
                except Exception:  # Ray already gone
                    log.debug("actor pool shutdown failed", exc_info=True)
            self._pool = None
        if stop_cluster:
            cluster.shutdown()

    # -- runs ---------------------------------------------------------------------------------

    async def run(
        self,
        plan: ExecutionPlan,
        *,
        ctx: StepContext | None = None,
        sink: EventSink | None = None,
        keep_outputs: Iterable[str] = (),
    ) -> RunResult:
        """Run ``plan`` on the node actors; events go to ``sink``.

        Returns when every step has finished. The run's Prefect flow run is written
        alongside and reaches its final state moments later: ``RunResult.recorded()``.
        """
        from uzo_engine.runtime.flow import run_plan

        pool = self._pool
        if pool is None:  # not started yet: start it off the event loop
            pool = await asyncio.to_thread(lambda: self.pool)
        return await run_plan(
            plan,
            pool,
            ctx or StepContext(execution_id=uuid.uuid4().hex),
            recorder=self._recorder,
            sink=sink,
            keep_outputs=keep_outputs,
            cancel_grace_seconds=self.settings.cancel_grace_seconds,
            merge_stages_up_to=self.settings.merge_stages_up_to,
        )

    def run_sync(
        self,
        plan: ExecutionPlan,
        *,
        ctx: StepContext | None = None,
        sink: EventSink | None = None,
        keep_outputs: Iterable[str] = (),
    ) -> RunResult:
        with self._lock:
            if self._loop is None:  # one loop for every synchronous run of this runtime
                self._loop = LoopThread("uzo-runs")
            loop = self._loop
        return loop.run(self.run(plan, ctx=ctx, sink=sink, keep_outputs=keep_outputs))

    def flow_run_id(self, execution_id: str) -> str | None:
        """The Prefect flow run of an execution that is running or still being recorded."""
        recorder = self._recorder
        return recorder.flow_run_id(execution_id) if recorder is not None else None

    def flush_records(self, timeout: float = 30.0) -> int:
        """Wait until every run's flow run is written; returns how many were not in time."""
        recorder = self._recorder
        return recorder.flush(timeout) if recorder is not None else 0

    def cancel(self, execution_id: str) -> bool:
        """Cancel a running execution of this process (thread-safe). The one cancel path:
        the API's, and the mirror's when the flow run is cancelled in Prefect."""
        from uzo_engine.runtime.flow import cancel_run

        return cancel_run(execution_id)

    # -- preview -----------------------------------------------------------------------------

    def preview(
        self,
        plan: ExecutionPlan,
        node_id: str,
        *,
        limit: int = 100,
        fingerprints: Mapping[str, str] | None = None,
        ctx: StepContext | None = None,
        port: str | None = None,
    ) -> PreviewResult:
        """First ``limit`` rows, schema and profile of ``node_id`` (no Prefect flow run)."""
        from uzo_engine.runtime.preview import preview_node

        pool = self.pool
        return preview_node(
            pool,
            plan,
            node_id,
            limit=limit,
            cache=self._preview_cache,
            fingerprints=fingerprints,
            ctx=ctx,
            port=port,
        )


_runtime: dict[str, Runtime] = {}
_runtime_lock = threading.Lock()


def get_runtime(settings: EngineSettings | None = None) -> Runtime:
    """The process's runtime (created, not started, on first call)."""
    from uzo_engine.settings import get_engine_settings

    with _runtime_lock:
        rt = _runtime.get("rt")
        if rt is None:
            rt = Runtime(settings or get_engine_settings())
            _runtime["rt"] = rt
        return rt


def shutdown_runtime(*, stop_cluster: bool = True, stop_prefect: bool = False) -> None:
    """Close the process's runtime (and by default disconnect from / stop local Ray)."""
    with _runtime_lock:
        rt = _runtime.pop("rt", None)
    if rt is not None:
        rt.close(stop_cluster=stop_cluster, stop_prefect=stop_prefect)
    elif stop_cluster:
        cluster.shutdown()
