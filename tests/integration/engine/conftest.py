"""One local Ray cluster and one Prefect server for the whole session, stopped at the end."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from uzo_engine.runtime import prefect_server
from uzo_engine.runtime.engine import Runtime
from uzo_engine.settings import EngineSettings

if TYPE_CHECKING:
    from collections.abc import Iterator

_ENV_KEYS = ("PREFECT_API_URL", "PREFECT_HOME", "PREFECT_SERVER_ANALYTICS_ENABLED")
_ENV_PREFIXES = ("RAY_AUTH_",)


@pytest.fixture(scope="session")
def engine_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="uzo-engine-test-"))
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def engine_settings(engine_home: Path) -> EngineSettings:
    return EngineSettings(
        home=engine_home,
        ray_num_cpus=2,
        ray_object_store_mb=300,
        actor_pool_size=2,
        actor_cpus=0.5,  # the node actors hold 1 of the 2 CPUs: `uzo run` attaching has room
        cancel_grace_seconds=5.0,
        prefect_server_start_timeout_seconds=240,  # the fixture waits; a loaded machine is slow
    )


@pytest.fixture(scope="session")
def runtime(engine_settings: EngineSettings) -> Iterator[Runtime]:
    """Prefect server + local Ray (2 CPUs, 300 MB object store) + 2 node actors.

    The runtime does not wait for its Prefect server; the fixture does, so that tests
    reading flow runs do not spend their timeouts on the server's start. Test helpers
    find the server through PREFECT_API_URL (the runtime itself exports nothing).
    """
    saved = {k: v for k, v in os.environ.items() if k in _ENV_KEYS or k.startswith(_ENV_PREFIXES)}
    rt = Runtime(engine_settings).start()
    try:
        assert rt.prefect is not None
        prefect_server.wait_until_healthy(rt.prefect, engine_settings)
        os.environ["PREFECT_API_URL"] = rt.prefect.url
        yield rt
    finally:
        rt.close(stop_cluster=True, stop_prefect=True)
        for key in [k for k in os.environ if k in _ENV_KEYS or k.startswith(_ENV_PREFIXES)]:
            del os.environ[key]
        os.environ.update(saved)
