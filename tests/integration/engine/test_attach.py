"""`uzo run` in another process attaches to a running cluster and Prefect API (settings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.integration.engine.test_runtime import flow_run_state

if TYPE_CHECKING:
    from uzo_engine.runtime.engine import Runtime
    from uzo_engine.settings import EngineSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

UZO = str(Path(sys.executable).with_name("uzo"))


def _workflow(path: Path) -> Path:
    doc = {
        "nodes": [
            {
                "id": "numbers",
                "position": {"x": 0, "y": 0},
                "data": {"nodeType": "values", "config": {"rows": [{"n": 1}, {"n": 2}]}},
            },
            {
                "id": "tripled",
                "position": {"x": 200, "y": 0},
                "data": {"nodeType": "derive", "config": {"columns": {"m": "n * 3"}}},
            },
        ],
        "edges": [{"id": "e1", "source": "numbers", "target": "tripled"}],
    }
    path.write_text(json.dumps(doc))
    return path


def test_uzo_run_attaches_to_the_running_cluster(
    runtime: Runtime, engine_settings: EngineSettings, tmp_path: Path
) -> None:
    import ray

    assert runtime.prefect is not None
    assert runtime.cluster is not None
    token = (engine_settings.ray_home / "auth_token").read_text().strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UZO_", "RAY_", "PREFECT_"))}
    env.update(
        UZO_HOME=str(tmp_path / "home"),
        UZO_RAY_ADDRESS=runtime.cluster.address,
        UZO_RAY_AUTH_TOKEN=token,
        UZO_PREFECT_API_URL=runtime.prefect.url,
        # two actors in the one CPU the session's actors leave free
        UZO_ACTOR_CPUS="0.5",
        UZO_ACTOR_POOL_SIZE="2",
    )
    nodes_before = len(ray.nodes())  # type: ignore[no-untyped-call]

    done = subprocess.run(
        [UZO, "run", str(_workflow(tmp_path / "wf.json"))],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Failed to create" not in done.stderr
    assert f"Ray: attached to {runtime.cluster.address}" in done.stdout
    flow_line = next(line for line in done.stdout.splitlines() if "Prefect flow run" in line)
    flow_run_id = flow_line.split()[3].rstrip(":")
    assert flow_line.endswith("COMPLETED")
    assert flow_run_state(flow_run_id)[0] == "COMPLETED"  # in the session's Prefect server
    assert len(ray.nodes()) == nodes_before  # type: ignore[no-untyped-call]
    assert not (tmp_path / "home" / "ray").exists()  # no local cluster was set up
    assert runtime.actor_info()  # the session's actors are untouched
