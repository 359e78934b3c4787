"""docs/plugins.md works: its package is installed from the guide's own code blocks.

The blocks whose first line is ``# <path>`` are written to a temporary directory,
with a ``.dist-info`` whose ``entry_points.txt`` comes from the guide's
``pyproject.toml`` block, so the registries find the plugins exactly as they find
an installed package. Then the guide's workflow runs, and the guide's contract
test runs under pytest in a subprocess, as a plugin author would run it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest

from tests.unit.uzo_engine.helpers import tenant_ctx
from uzo_connectors import registry as connector_registry
from uzo_connectors.base import ReadRequest
from uzo_connectors.settings import ConnectorSettings
from uzo_engine.nodes import registry as node_registry
from uzo_engine.runtime.local import run_workflow
from uzo_engine.validation import WorkflowValidationError

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "plugins.md"
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def _blocks() -> list[tuple[str, str]]:
    return _FENCE.findall(GUIDE.read_text(encoding="utf-8"))


def files_in_guide() -> dict[str, str]:
    """Relative path -> text of every block that starts with a ``# <path>`` line."""
    out = {}
    for language, body in _blocks():
        first = body.splitlines()[0]
        if language in {"python", "toml"} and re.fullmatch(r"# [\w/.-]+\.(py|toml)", first):
            out[first[2:]] = body
    return out


def workflow_in_guide() -> dict[str, Any]:
    (body,) = [body for language, body in _blocks() if language == "json"]
    doc: dict[str, Any] = json.loads(body)
    return doc


def _entry_points_txt(pyproject: str) -> str:
    groups = tomllib.loads(pyproject)["project"]["entry-points"]
    lines = []
    for group, entries in groups.items():
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {target}" for name, target in entries.items())
        lines.append("")
    return "\n".join(lines)


def _forget_plugins() -> None:
    connector_registry.refresh()
    node_registry._plugin_specs.cache_clear()
    node_registry.get_node_type.cache_clear()
    for name in [m for m in sys.modules if m.partition(".")[0] == "acme_uzo"]:
        del sys.modules[name]


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The guide's package, installed as a distribution on sys.path."""
    root = tmp_path / "acme-uzo"
    files = files_in_guide()
    assert {"pyproject.toml", "acme_uzo/arrow_dir.py", "acme_uzo/nodes.py"} <= set(files)
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / "acme_uzo" / "__init__.py").write_text("")
    project = tomllib.loads(files["pyproject.toml"])["project"]
    dist = root / f"acme_uzo-{project['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    (dist / "entry_points.txt").write_text(_entry_points_txt(files["pyproject.toml"]))
    monkeypatch.syspath_prepend(str(root))
    _forget_plugins()
    yield root
    _forget_plugins()


def test_entry_points_register_the_connector_and_the_node_type(plugin_dir: Path) -> None:
    types = connector_registry.available_types()
    assert types["arrow_dir"] == "acme_uzo.arrow_dir:ArrowDirConnector"
    info = connector_registry.type_info("arrow_dir")
    assert info.category == "file"
    assert info.config_schema["additionalProperties"] is False
    assert info.capabilities["write_modes"] == ["append", "overwrite"]
    assert "mask" in node_registry.available_node_types()
    form = node_registry.node_types_json_schema()["mask"]
    assert form["config"]["required"] == ["column"]
    assert form["inputs"] == ["in"]
    assert form["outputs"] == ["out"]


def test_the_guide_workflow_runs(plugin_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "acme"
    target.mkdir()
    doc = workflow_in_guide()
    save = next(n for n in doc["nodes"] if n["id"] == "save")
    assert save["data"]["config"]["config"]["root"] == "/tmp/acme"
    save["data"]["config"]["config"]["root"] = str(target)
    result = run_workflow(doc, ctx=tenant_ctx(target))  # the plugin keeps to the roots
    assert result.status == "succeeded", result.error
    connector = connector_registry.create_connector(
        "arrow_dir", {"root": str(target)}, ConnectorSettings().operator_context()
    )
    plan = connector.plan_read(ReadRequest(dataset="cards"))
    table = pa.Table.from_batches([b for t in plan.tasks for b in t.read()], schema=plan.schema)
    assert table.to_pydict() == {"holder": ["Ada", "Alan"], "card": ["***1111", "***0004"]}
    assert (target / "cards.arrow").stat().st_mode & 0o777 == 0o600


def test_the_guide_node_type_is_validated_before_running(plugin_dir: Path) -> None:
    doc = workflow_in_guide()
    doc["nodes"][1]["data"]["config"]["column"] = "crd"
    with pytest.raises(WorkflowValidationError, match="crd"):
        run_workflow(doc)
    doc = workflow_in_guide()
    doc["nodes"][1]["data"]["config"]["keep_lats"] = 2
    with pytest.raises(WorkflowValidationError, match="keep_lats"):
        run_workflow(doc)


@pytest.mark.slow
def test_the_guide_contract_test_passes_under_pytest(plugin_dir: Path) -> None:
    (plugin_dir / "pytest.ini").write_text("[pytest]\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_dir), str(ROOT)])}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", "pytest.ini"]
    done = subprocess.run(
        [*command, "tests/test_arrow_dir.py"],
        cwd=plugin_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # the count the guide states: 15 tests, the unclaimed capabilities skipped
    assert "9 passed, 6 skipped" in done.stdout, done.stdout
