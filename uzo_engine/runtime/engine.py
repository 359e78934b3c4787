"""The process-wide runtime: Prefect API + Ray connection + node-actor pool + preview cache.

Order matters (docs/measured-stack.md): the Prefect API URL is exported before
Ray starts, and handed to every Ray worker through the job's ``runtime_env``;
otherwise each worker would start its own temporary Prefect server.
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
        """Prefect API, then Ray, then the actor pool (idempotent)."""
        from uzo_engine.runtime.actors import ActorPool
        from uzo_engine.runtime.preview import PreviewCache
        from uzo_engine.runtime.record import Recorder

        with self._lock:
            if self._pool is not None:
                return self
            # the server's URL is known at once: Ray starts while the server migrates
            api = prefect_server.ensure_prefect_api(self.settings, wait=False)
            try:
                worker_env = prefect_server.export_api_url(api, self.settings)
                self.cluster = cluster.connect(self.settings, worker_env)
                size = self.settings.actor_pool_size or self.cluster.num_cpus
                pool = ActorPool(size)
                pool.ready()
                self.prefect = prefect_server.wait_until_healthy(api, self.settings)
            except BaseException:
                if api.started_here:
                    prefect_server.stop_prefect_server(self.settings)
                raise
            self._pool = pool
            self._preview_cache = PreviewCache()
            self._recorder = Recorder(
                self.prefect.url,
                nice=self.settings.prefect_nice,
                delay=self.settings.prefect_record_delay_seconds,
            )
            return self

    def warm_up(self) -> float:
        """Run a one-node flow so the first real run does not pay Prefect's start-up in the
        Ray workers (seconds: docs/measured-stack.md), nor the node actors their imports.
        Returns the seconds until the run and its flow run were done."""
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
        recorded = result.recorded(timeout=120)
        if recorded.state != "COMPLETED":
            raise RuntimeError(f"warm-up flow run not completed: {recorded}")
        return time.perf_counter() - started

    @property
    def pool(self) -> ActorPool:
        if self._pool is None:
            self.start()
        assert self._pool is not None
        return self._pool

    def close(self, *, stop_cluster: bool = False, stop_prefect: bool = False) -> None:
        """Release the actors; optionally stop Ray and the shared Prefect server.

        Flow runs still being recorded get up to 30 s to reach their final state first.
        """
        with self._lock:
            if self._recorder is not None:
                self._recorder.close(timeout=30.0)
                self._recorder = None
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
        if stop_prefect and self.prefect is not None and self.prefect.pid is not None:
            _flush_prefect_logs()
            prefect_server.stop_prefect_server(self.settings)
            self.prefect = None

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

        Returns when every step has finished. The run's Prefect flow run is recorded
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
        """Wait until every run's flow run is recorded; returns how many were not in time."""
        recorder = self._recorder
        return recorder.flush(timeout) if recorder is not None else 0

    def cancel(self, execution_id: str) -> bool:
        """Cancel a running execution of this process (thread-safe)."""
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


def _flush_prefect_logs() -> None:
    """Send buffered flow-run logs before the server goes away (else: noise at exit)."""
    import sys

    if "prefect.logging.handlers" not in sys.modules:
        return
    from prefect.logging.handlers import APILogWorker

    try:
        APILogWorker.drain_all(timeout=5)
    except Exception:  # the server is already gone: nothing to save
        log.debug("flushing Prefect logs failed", exc_info=True)


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
