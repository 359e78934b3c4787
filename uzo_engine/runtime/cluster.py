"""Connect this process to Ray once: a local cluster, or the one at ``UZO_RAY_ADDRESS``.

:func:`connect` can give every worker of this job an environment. UZO gives none
today: no Prefect code runs in Ray workers any more (the Prefect mirror writes
from the driver, ADR 0005), so no Prefect API URL is shipped to them.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from uzo_engine.settings import EngineSettings

log = logging.getLogger(__name__)

_lock = threading.Lock()
_state: dict[str, ClusterInfo] = {}


@dataclass(frozen=True)
class ClusterInfo:
    address: str  # GCS address of the cluster ("127.0.0.1:port")
    started_here: bool  # this process started the local cluster
    num_cpus: int
    namespace: str


def _token_mode() -> None:
    if "RAY_AUTH_MODE" not in os.environ:
        os.environ["RAY_AUTH_MODE"] = "token"
        # Ray caches its C++ config at import; re-read it as ray.init itself does when it
        # turns token auth on by default (authentication_token_setup._enable_token_auth).
        from ray._raylet import Config  # type: ignore[attr-defined]

        Config.initialize("")


def _local_auth_token(settings: EngineSettings) -> None:
    """Token auth for the local cluster, with the token in UZO_HOME instead of ~/.ray."""
    _token_mode()
    if settings.ray_auth_token is not None:
        os.environ["RAY_AUTH_TOKEN"] = settings.ray_auth_token.get_secret_value()
        return
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return
    path = settings.ray_home / "auth_token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(secrets.token_hex(32))
        tmp.chmod(0o600)
        tmp.replace(path)
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(path)


def _loopback_only() -> None:
    """Make the local node listen on 127.0.0.1.

    ``ray.init`` rewrites a ``_node_ip_address`` of 127.0.0.1 to the interface
    address (``services.resolve_ip_for_localhost``) unless Ray runs in its
    single-machine mode, the one it uses on macOS and Windows. The flag is read
    into ``ray_constants`` at import, so set both the variable and the constant.
    """
    import ray._private.ray_constants as ray_constants

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)  # noqa: B010 - private, untyped


def _is_loopback(address: str) -> bool:
    host = address.split("://")[-1].rsplit(":", 1)[0].strip("[]")
    return host in {"127.0.0.1", "localhost", "::1"}


def connect(settings: EngineSettings, worker_env: Mapping[str, str] | None = None) -> ClusterInfo:
    """Initialise Ray in this process (idempotent) and return what it is connected to.

    ``worker_env`` becomes the job's ``runtime_env.env_vars``.
    """
    import ray

    with _lock:
        info = _state.get("info")
        if info is not None and ray.is_initialized():
            return info
        env = dict(worker_env or {})
        runtime_env = {"env_vars": env} if env else None
        started_here = False
        if ray.is_initialized():
            job_env = ray.get_runtime_context().runtime_env.env_vars()
            missing = sorted(k for k, v in env.items() if job_env.get(k) != v)
            if missing:
                log.warning(
                    "Ray was initialised before UZO without %s in runtime_env.env_vars: "
                    "its workers do not see them",
                    ", ".join(missing),
                )
        elif settings.ray_address:
            if settings.ray_auth_token is not None:  # token auth (docs/measured-stack.md)
                _token_mode()
                os.environ["RAY_AUTH_TOKEN"] = settings.ray_auth_token.get_secret_value()
            extra: dict[str, Any] = {}
            if _is_loopback(settings.ray_address):  # else Ray dials the interface address
                _loopback_only()
                extra["_node_ip_address"] = "127.0.0.1"
            ray.init(
                address=settings.ray_address,
                namespace=settings.ray_namespace,
                runtime_env=runtime_env,
                log_to_driver=settings.ray_log_to_driver,
                **extra,
            )
        else:
            _local_auth_token(settings)
            _loopback_only()
            ray.init(
                num_cpus=settings.ray_num_cpus or os.cpu_count() or 1,
                object_store_memory=settings.ray_object_store_mb * 1024 * 1024,
                include_dashboard=False,
                namespace=settings.ray_namespace,
                runtime_env=runtime_env,
                log_to_driver=settings.ray_log_to_driver,
                _node_ip_address="127.0.0.1",
            )
            started_here = True
        ctx = ray.get_runtime_context()
        info = ClusterInfo(
            address=ctx.gcs_address,
            started_here=started_here,
            num_cpus=int(ray.cluster_resources().get("CPU", 1)),  # type: ignore[no-untyped-call]
            namespace=ctx.namespace,
        )
        _state["info"] = info
        return info


def current() -> ClusterInfo | None:
    """What :func:`connect` returned, if this process is connected."""
    return _state.get("info")


def shutdown() -> None:
    """Disconnect from Ray (stops the local cluster if this process started it)."""
    import ray

    with _lock:
        _state.pop("info", None)
        if ray.is_initialized():
            ray.shutdown()
