"""Connect this process to Ray once: a local cluster, or the one at ``UZO_RAY_ADDRESS``.

A local cluster keeps its temp and session folders under ``UZO_HOME/ray`` (not Ray's
``/tmp/ray``, which is never cleaned), unless that path is too long for the Unix sockets
Ray puts there (about 107 bytes, the session folder's name and ``sockets/plasma_store``
included): then they go to ``/tmp/uzo-ray-<hash of UZO_HOME>`` and a log line says so.
Before it starts, the session folders of clusters whose starting process is gone are
removed; the live ones (this UZO_HOME may run several processes) are kept. A cluster
started here dies with this process (``ray.init`` ties it to its driver): a process that
attached to it with ``UZO_RAY_ADDRESS`` loses it then. Attaching never stops a cluster:
``ray.shutdown`` only disconnects a driver that did not start it (ADR 0019).

:func:`connect` can give every worker of this job an environment. UZO gives none
today: no Prefect code runs in Ray workers any more (the Prefect mirror writes
from the driver, ADR 0005), so no Prefect API URL is shipped to them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uzo_engine.runtime import procs

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

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


# The longest socket path Ray makes under its temp folder, past the folder itself:
# /session_<%Y-%m-%d_%H-%M-%S_%f>_<pid up to 7 digits>/sockets/plasma_store.<n>
_SOCKET_TAIL = len("/session_2026-01-01_00-00-00_000000_4194304/sockets/plasma_store.99")
_SESSION = re.compile(r"session_(\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_\d{6})_(\d+)")


def _max_temp_len() -> int:
    # AF_UNIX sun_path: 108 bytes on Linux, 104 on macOS, the terminating NUL included
    return (104 if sys.platform == "darwin" else 108) - 1 - _SOCKET_TAIL


def temp_root(settings: EngineSettings) -> Path:
    """Where a local cluster of ``settings``' UZO_HOME keeps its temp and session folders."""
    preferred = settings.ray_home
    if len(str(preferred).encode()) <= _max_temp_len():
        return preferred
    digest = hashlib.sha256(str(settings.home.absolute()).encode()).hexdigest()[:12]
    return Path("/tmp") / f"uzo-ray-{digest}"


def _prepare_temp_root(settings: EngineSettings) -> Path:
    root = temp_root(settings)
    if root != settings.ray_home:
        log.info(
            "Ray's session folders go to %s: %s is too long for Ray's socket paths "
            "(at most %d bytes)",
            root,
            settings.ray_home,
            _max_temp_len(),
        )
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    if root.stat().st_uid != os.getuid():  # a shared /tmp: not a folder someone else made
        raise RuntimeError(f"Ray temp folder {root} belongs to another user")
    try:
        remove_old_sessions(root)
    except OSError:  # never a reason not to start
        log.warning("could not remove old Ray session folders in %s", root, exc_info=True)
    return root


def _session_alive(name: str) -> bool:
    """The process that started this session (its pid ends the name) is still running."""
    match = _SESSION.fullmatch(name)
    if match is None:
        return True  # not a session folder: leave it alone
    pid = int(match.group(2))
    if not procs.pid_exists(pid):
        return False
    began = procs.started_at(pid)
    if began is None:
        return True
    created = time.mktime(time.strptime(match.group(1)[:-7], "%Y-%m-%d_%H-%M-%S"))
    return began <= created + 2  # else the pid was handed out again since


def remove_old_sessions(root: Path) -> list[Path]:
    """Remove the session folders in ``root`` of clusters whose starting process is gone
    (the live ones, and the one ``session_latest`` points to, are kept). Returns them."""
    latest = root / "session_latest"
    keep = latest.resolve() if latest.is_symlink() else None
    removed = []
    for path in sorted(root.glob("session_*")):
        if path.is_symlink() or not path.is_dir() or path.resolve() == keep:
            continue
        if not _session_alive(path.name):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    if latest.is_symlink() and not latest.exists():
        latest.unlink(missing_ok=True)
    return removed


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


@contextlib.contextmanager
def _no_api_server() -> Iterator[None]:
    """Start a local cluster without Ray's API server (``ray/dashboard/dashboard.py``).

    ``include_dashboard=False`` still starts that process (about 120 MB), loading only
    ``UsageStatsHead``, which reports usage stats that ``ray.init`` turns off anyway
    (``Node.start_head_processes`` calls ``start_api_server`` unconditionally). Nothing
    UZO uses needs it: the job-submission and state APIs it would serve are not loaded
    without the dashboard either. The dashboard agent and the runtime-env agent still
    run: the raylet refuses to start without them ("Dashboard agent command must be non
    empty"); they listen on 127.0.0.1 only. A Ray without this method starts it as before.
    """
    from ray._private import node

    original = getattr(node.Node, "start_api_server", None)
    if original is None:
        log.debug("ray._private.node.Node.start_api_server is gone: Ray's API server starts")
        yield
        return

    def start_api_server(self: Any, *args: Any, **kwargs: Any) -> None:
        self._webui_url = None

    setattr(node.Node, "start_api_server", start_api_server)  # noqa: B010 - private, untyped
    try:
        yield
    finally:
        setattr(node.Node, "start_api_server", original)  # noqa: B010


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
            temp_dir = _prepare_temp_root(settings)
            with _no_api_server():
                ray.init(
                    address="local",  # never RAY_ADDRESS or a cluster `ray start` recorded
                    _temp_dir=str(temp_dir),
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
