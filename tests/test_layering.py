"""The layers import one way only: uzo_api -> uzo_engine -> uzo_connectors.

Two independent checks: import-linter's contract (``[tool.importlinter]`` in
pyproject.toml) and a plain AST walk over every source file, so a broken or
misconfigured tool cannot silently pass. Both checks are themselves tested
against a planted violation.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

# package -> top-level packages it must never import
FORBIDDEN: dict[str, frozenset[str]] = {
    "uzo_connectors": frozenset({"uzo_engine", "uzo_api"}),
    "uzo_engine": frozenset({"uzo_api"}),
    "uzo_api": frozenset(),
}

_DYNAMIC_IMPORTERS = {"import_module", "__import__"}


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the tree.

    Covers ``import x``, ``from x import y`` (also under ``if TYPE_CHECKING:``
    and inside functions) and ``importlib.import_module("x")`` /
    ``__import__("x")`` with a literal name. Relative imports stay inside the
    package they are written in, so they are skipped (ruff bans them anyway).
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            first = node.args[0]
            if (
                name in _DYNAMIC_IMPORTERS
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                found.append((node.lineno, first.value))
    return found


def find_violations(package_dir: Path, forbidden: frozenset[str]) -> list[str]:
    """``path:line imports module`` for each import of a forbidden top-level package."""
    violations: list[str] = []
    for path in sorted(package_dir.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, module in _imported_modules(tree):
            if module.split(".", 1)[0] in forbidden:
                rel = path.relative_to(package_dir.parent)
                violations.append(f"{rel}:{line} imports {module}")
    return violations


def test_import_linter_contracts_are_kept(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_upper_layers(package: str) -> None:
    package_dir = ROOT / package
    assert (package_dir / "__init__.py").is_file()
    assert find_violations(package_dir, FORBIDDEN[package]) == []


def _plant_packages(root: Path) -> None:
    for name in FORBIDDEN:
        (root / name).mkdir()
        (root / name / "__init__.py").write_text('"""planted."""\n')
    # the modules the engine's own contract names must exist for it to be checked
    for module in ("nodes", "expressions", "compiler", "validation", "runtime", "cli"):
        (root / "uzo_engine" / module).mkdir()
        (root / "uzo_engine" / module / "__init__.py").write_text("")
    (root / "uzo_engine" / "subworkflow.py").write_text("")
    nested = root / "uzo_connectors" / "files"
    nested.mkdir()
    (nested / "__init__.py").write_text("")
    (nested / "reader.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import uzo_connectors\n"  # own package: fine
        "import uzo_apiary\n"  # a name that merely starts like a layer: fine
        "from uzo_engine.graph import WorkflowGraph\n"
        "if TYPE_CHECKING:\n"
        "    import uzo_api.settings\n"
        "def late():\n"
        "    import importlib\n"
        "    return importlib.import_module('uzo_api.deps')\n"
    )


def test_ast_checker_detects_planted_violations(tmp_path: Path) -> None:
    _plant_packages(tmp_path)
    found = find_violations(tmp_path / "uzo_connectors", FORBIDDEN["uzo_connectors"])
    assert found == [
        "uzo_connectors/files/reader.py:4 imports uzo_engine.graph",
        "uzo_connectors/files/reader.py:6 imports uzo_api.settings",
        "uzo_connectors/files/reader.py:9 imports uzo_api.deps",
    ]
    assert find_violations(tmp_path / "uzo_engine", FORBIDDEN["uzo_engine"]) == []


def test_import_linter_detects_planted_violation(tmp_path: Path) -> None:
    """The project's own contract, run on planted packages that shadow the real ones."""
    _plant_packages(tmp_path)
    (tmp_path / "uzo_connectors" / "files" / "reader.py").write_text(
        "from uzo_engine import graph\n"
    )
    (tmp_path / "uzo_engine" / "graph.py").write_text('"""planted."""\n')
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0, result.stdout + result.stderr
    assert "BROKEN" in result.stdout
    assert "uzo_connectors.files.reader -> uzo_engine" in result.stdout


def test_a_node_type_importing_the_compiler_breaks_the_engine_contract(tmp_path: Path) -> None:
    _plant_packages(tmp_path)
    (tmp_path / "uzo_engine" / "nodes" / "sneaky.py").write_text(
        "def run():\n    from uzo_engine.compiler import compile_workflow\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0, result.stdout + result.stderr
    assert "uzo_engine.nodes.sneaky -> uzo_engine.compiler" in result.stdout
