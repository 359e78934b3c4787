"""Importing any UZO module is cheap and quiet: no output, no files, no threads.

Each package is checked in its own fresh interpreter, so an import cycle or a
side effect is attributed to the package that has it. Inside that interpreter
every module is imported as the *first* UZO module: the ``uzo_*`` entries of
``sys.modules`` are dropped before each import (third-party modules stay
cached, which keeps it fast), so a cycle that only breaks when entered from a
particular module is found too. Modules are discovered with ``pkgutil``
without importing anything in the test process.
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("uzo_api", "uzo_engine", "uzo_connectors")

# Modules that are not importable on their own, by design.
SKIP = {
    "uzo_api.db.migrations.env": "Alembic's env.py runs migrations when Alembic loads it",
}

_CHILD = r"""
import importlib, json, sys, threading, traceback

report_path, modules = sys.argv[1], sys.argv[2:]
ours = {"uzo_api", "uzo_engine", "uzo_connectors"}
failures = {}
for name in modules:
    for loaded in [m for m in sys.modules if m.split(".", 1)[0] in ours]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except BaseException:
        failures[name] = traceback.format_exc()
threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
with open(report_path, "w", encoding="utf-8") as f:
    json.dump({"failures": failures, "threads": threads, "count": threading.active_count()}, f)
"""


def discover(package: str, root: Path = ROOT) -> list[str]:
    """Dotted names of the package and every module below it, without importing them."""
    names = [package]

    def walk(path: Path, prefix: str) -> None:
        for info in pkgutil.iter_modules([str(path)]):
            name = f"{prefix}.{info.name}"
            if info.name == "__main__" or name in SKIP:
                continue
            names.append(name)
            if info.ispkg:
                walk(path / info.name, name)

    walk(root / package, package)
    return names


@dataclass
class Smoke:
    stdout: str
    stderr: str
    failures: dict[str, str]
    threads: list[str]
    thread_count: int
    home_files: list[str]
    cwd_files: list[str]


def import_in_fresh_interpreter(package: str, root: Path, tmp_path: Path) -> Smoke:
    """Import every module of ``package`` (found under ``root``) in one new interpreter."""
    home = tmp_path / "uzo_home"
    workdir = tmp_path / "cwd"
    home.mkdir()
    workdir.mkdir()
    report = tmp_path / "report.json"
    env = {
        **os.environ,
        "UZO_HOME": str(home),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(report), *discover(package, root)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(report.read_text(encoding="utf-8"))
    return Smoke(
        stdout=result.stdout,
        stderr=result.stderr,
        failures=outcome["failures"],
        threads=outcome["threads"],
        thread_count=outcome["count"],
        home_files=sorted(str(p.relative_to(home)) for p in home.rglob("*")),
        cwd_files=sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*")),
    )


@pytest.mark.parametrize("package", PACKAGES)
def test_import_has_no_side_effects(package: str, tmp_path: Path) -> None:
    smoke = import_in_fresh_interpreter(package, ROOT, tmp_path)
    assert not smoke.failures, "\n".join(f"--- {m}\n{tb}" for m, tb in smoke.failures.items())
    assert smoke.stdout == "", f"importing {package} printed to stdout"
    assert smoke.stderr == "", f"importing {package} printed to stderr"
    assert smoke.thread_count == 1, f"importing {package} started threads: {smoke.threads}"
    assert smoke.home_files == [], "importing wrote into UZO_HOME"
    assert smoke.cwd_files == [], "importing wrote into the working directory"


def test_discovery_finds_nested_modules() -> None:
    names = discover("uzo_api")
    assert "uzo_api.settings" in names
    assert "uzo_api.db.session" in names
    assert all(name not in names for name in SKIP)


def test_smoke_check_detects_planted_side_effects(tmp_path: Path) -> None:
    """A planted package that shadows uzo_connectors breaks every rule once."""
    pkg = tmp_path / "src" / "uzo_connectors"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "noisy.py").write_text("print('hello')\n")
    (pkg / "threaded.py").write_text(
        "import threading, time\n"
        "threading.Thread(target=time.sleep, args=(30,), name='planted', daemon=True).start()\n"
    )
    (pkg / "writer.py").write_text(
        "import os, pathlib\n"
        "pathlib.Path(os.environ['UZO_HOME'], 'state').write_text('x')\n"
        "pathlib.Path('stray').write_text('x')\n"
    )
    # A cycle that only breaks when entered through `b` (imported after `a`).
    (pkg / "a.py").write_text("Y = 2\nfrom uzo_connectors.b import X\n")
    (pkg / "b.py").write_text("from uzo_connectors.a import Y\nX = 1\n")

    smoke = import_in_fresh_interpreter("uzo_connectors", tmp_path / "src", tmp_path)
    assert sorted(smoke.failures) == ["uzo_connectors.b"]
    assert "partially initialized module" in smoke.failures["uzo_connectors.b"]
    assert smoke.stdout == "hello\n"
    assert smoke.threads == ["planted"]
    assert smoke.thread_count == 2
    assert smoke.home_files == ["state"]
    assert smoke.cwd_files == ["stray"]
