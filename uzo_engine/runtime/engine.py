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
from typing import TYPE_CHECKING, Any, TypeVar

from uzo_engine.plan import StepContext
from uzo_engine.runtime import cluster, prefect_server
from uzo_engine.runtime.loop import LoopThread

if TYPE_CHECKING:
    from collections.abc import Coroutine, Iterable, Mapping

    from uzo_engine.events import EventSink
    from uzo_engine.plan import ExecutionPlan
    from uzo_engine.runtime.backends import RayBackend
    from uzo_engine.runtime.cluster import ClusterInfo
    from uzo_engine.runtime.core import PortKey, RunResult
    from uzo_engine.runtime.prefect_server import PrefectApi
    from uzo_engine.runtime.preview import PreviewCache, PreviewResult
    from uzo_engine.runtime.record import Recorder
    from uzo_engine.settings import EngineSettings

log = logging.getLogger(__name__)
T = TypeVar("T")


class Runtime:
    """Runs plans (Prefect flow runs) and previews (direct actor calls) on a warm cluster."""

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self.prefect: PrefectApi | None = None
        self.cluster: ClusterInfo | None = None
        self._backend: RayBackend | None = None
        self._preview_cache: PreviewCache | None = None
        self._recorder: Recorder | None = None
        self._loop: LoopThread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Runtime:
        """Prefect API, then Ray, then the node actors (idempotent)."""
        from uzo_engine.runtime.backends import RayBackend
        from uzo_engine.runtime.preview import PreviewCache
        from uzo_engine.runtime.record import Recorder

        with self._lock:
            if self._backend is not None:
                return self
            # the server's URL is known at once: Ray starts while the server migrates
            api = prefect_server.ensure_prefect_api(self.settings, wait=False)
            try:
                worker_env = prefect_server.export_api_url(api, self.settings)
                self.cluster = cluster.connect(self.settings, worker_env)
                cpus = self.cluster.num_cpus
                size = self.settings.actor_pool_size or max(1, int(cpus / self.settings.actor_cpus))
                backend = RayBackend(
                    size,
                    io_actors=self.settings.io_actors,
                    io_concurrency=self.settings.io_concurrency,
                    actor_cpus=self.settings.actor_cpus,
                    start_timeout=self.settings.actor_start_timeout_seconds,
                )
                if self._loop is None:
                    self._loop = LoopThread("uzo-runs")
                self._loop.run(backend.start())
                self.prefect = prefect_server.wait_until_healthy(api, self.settings)
            except BaseException:
                if api.started_here:
                    prefect_server.stop_prefect_server(self.settings)
                raise
            self._backend = backend
            self._preview_cache = PreviewCache()
            self._recorder = Recorder(
                self.prefect.url,
                nice=self.settings.prefect_nice,
                delay=self.settings.prefect_record_delay_seconds,
                cancel_run=self.cancel,
            )
            return self

    def warm_up(self) -> float:
        """Run a one-node flow so the first real run does not pay Prefect's start-up, nor
        this process its imports (the node actors warm up as they start). Returns the
        seconds until the run and its flow run were done."""
        from uzo_engine.plan import ExecutionPlan, PlanStep, Stage
        from uzo_engine.runtime.actors import NoopRunner

        steps = {"warm-up": PlanStep("warm-up", ("warm-up",), (), ("out",), NoopRunner())}
        plan = ExecutionPlan(
            "uzo-warm-up", steps, (Stage(0, ("warm-up",)),), {"warm-up": "warm-up"}
        )
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
    def backend(self) -> RayBackend:
        if self._backend is None:
            self.start()
        assert self._backend is not None
        return self._backend

    def close(self, *, stop_cluster: bool = False, stop_prefect: bool = False) -> None:
        """Release the actors; optionally stop Ray and the shared Prefect server.

        Flow runs still being recorded get up to 30 s to reach their final state first.
        """
        with self._lock:
            if self._recorder is not None:
                self._recorder.close(timeout=30.0)
                self._recorder = None
            if self._backend is not None and self._loop is not None:
                try:
                    self._loop.run(self._backend.shutdown())
                except Exception:  # Ray already gone
                    log.debug("node actor shutdown failed", exc_info=True)
            self._backend = None
            if self._loop is not None:
                self._loop.stop()
                self._loop = None
            if self._preview_cache is not None:
                self._preview_cache.clear()
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

        Every run of this process is driven on the runtime's one event loop (whatever
        loop awaits this), so the node actors are shared fairly between them. Returns
        when every step has finished. The run's Prefect flow run is recorded alongside
        and reaches its final state moments later: ``RunResult.recorded()``.
        """
        backend = self._backend
        if backend is None:  # not started yet: start it off the event loop
            backend = await asyncio.to_thread(lambda: self.backend)
        assert self._loop is not None
        coro = self._execute(plan, ctx, sink, keep_outputs)
        if asyncio.get_running_loop() is self._loop.loop:
            return await coro
        return await asyncio.wrap_future(self._loop.submit(coro))

    async def _execute(
        self,
        plan: ExecutionPlan,
        ctx: StepContext | None,
        sink: EventSink | None,
        keep_outputs: Iterable[str],
        given: Mapping[PortKey, Any] | None = None,
        recorded: bool = True,
    ) -> RunResult:
        from uzo_engine.runtime.core import execute

        return await execute(
            plan,
            ctx or StepContext(execution_id=uuid.uuid4().hex),
            self.backend,
            sink=sink,
            recorder=self._recorder if recorded else None,
            keep_outputs=keep_outputs,
            cancel_grace_seconds=self.settings.cancel_grace_seconds,
            given=given,
        )

    def run_sync(
        self,
        plan: ExecutionPlan,
        *,
        ctx: StepContext | None = None,
        sink: EventSink | None = None,
        keep_outputs: Iterable[str] = (),
    ) -> RunResult:
        backend = self.backend
        assert self._loop is not None
        assert backend is not None
        return self._loop.run(self._execute(plan, ctx, sink, keep_outputs))

    def on_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the runtime's event loop, where every run is driven."""
        self.start()
        assert self._loop is not None
        return self._loop.run(coro)

    def actor_info(self) -> list[dict[str, Any]]:
        """``{"pid", "zombies", "lane"}`` of every node actor (asks each one)."""
        return self.on_loop(self.backend.info())

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
        from uzo_engine.runtime.core import cancel_run

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
        cache: PreviewCache | None = None,
    ) -> PreviewResult:
        """First ``limit`` rows, schema and profile of ``node_id`` (no Prefect flow run)."""
        from uzo_engine.runtime.preview import preview_node

        return preview_node(
            _PreviewRunner(self),
            plan,
            node_id,
            limit=limit,
            cache=cache if cache is not None else self._preview_cache,
            fingerprints=fingerprints,
            ctx=ctx,
            port=port,
        )


class _PreviewRunner:
    """A preview's uncached steps, run by the core on the node actors (no flow run)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def __call__(
        self,
        plan: ExecutionPlan,
        ctx: StepContext,
        keep: list[str],
        given: dict[PortKey, Any],
        timeout_seconds: float,
    ) -> RunResult:
        rt = self.runtime
        backend = rt.backend
        assert rt._loop is not None
        assert backend is not None
        coro = rt._execute(plan, ctx, None, keep, given=given, recorded=False)
        future = rt._loop.submit(coro)
        try:
            return future.result(timeout=timeout_seconds)
        except TimeoutError:
            rt.cancel(ctx.execution_id)
            return future.result(timeout=rt.settings.cancel_grace_seconds + 5)

    def fetch(self, value: Any) -> Any:
        return self.runtime.backend.fetch(value)


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
