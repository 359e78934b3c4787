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
        """Ray, then the node actors, and the Prefect mirror alongside (idempotent).

        Returns without waiting for Prefect: a Prefect API that does not answer (yet)
        delays only the mirror.
        """
        from uzo_engine.runtime.backends import RayBackend
        from uzo_engine.runtime.preview import PreviewCache

        with self._lock:
            if self._backend is not None:
                return self
            api = self._start_prefect()  # first: it starts (in its process) while Ray does
            try:
                self.cluster = cluster.connect(self.settings)
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
            except BaseException:
                self._stop_mirror(stop_prefect=True)
                raise
            self._backend = backend
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
        if stop_prefect and api is not None and api.pid is not None:
            # the last process using the local server stops it, whoever started it
            prefect_server.release_prefect_server(self.settings)
            self.prefect = None

    @property
    def mirror(self) -> Recorder | None:
        """The Prefect mirror of this runtime's runs (None when off)."""
        return self._recorder

    def warm_up(self) -> float:
        """Run a one-step plan so the first real run does not pay this process's imports
        (the node actors warm up as they start). Returns the seconds it took (the Prefect
        mirror is not awaited)."""
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
        return time.perf_counter() - started

    @property
    def backend(self) -> RayBackend:
        if self._backend is None:
            self.start()
        assert self._backend is not None
        return self._backend

    def close(self, *, stop_cluster: bool = False, stop_prefect: bool = False) -> None:
        """Release the actors; optionally stop Ray, and release the local Prefect server:
        it stops unless another live process (`uzo serve`, another run) still uses it.

        Runs still being mirrored get up to 30 s to reach Prefect first.
        """
        with self._lock:
            self._stop_mirror(stop_prefect=stop_prefect, timeout=30.0)
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
        """First ``limit`` rows, schema and profile of ``node_id`` (no Prefect flow run).

        Sources read at most ``ctx.preview_limit`` rows each; unset, the
        ``preview_max_source_rows`` setting (0: no budget)."""
        import dataclasses

        from uzo_engine.runtime.preview import preview_node

        if ctx is None or ctx.preview_limit is None:
            budget = self.settings.preview_max_source_rows
            ctx = dataclasses.replace(
                ctx or StepContext(execution_id=f"preview-{uuid.uuid4().hex[:12]}"),
                preview_limit=budget,
            )
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
