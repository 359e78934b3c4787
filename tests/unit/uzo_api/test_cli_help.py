"""`uzo` conventions every command keeps: -h, --version, flags shown as flags, fast start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import typer.main
from typer.core import TyperGroup, TyperOption
from typer.testing import CliRunner

from uzo_api import __version__
from uzo_api.cli import app

if TYPE_CHECKING:
    from typer._click.core import Command

runner = CliRunner()


def command_paths(command: Command, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group below ``command`` (itself first), as argument prefixes."""
    paths = [prefix]
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            paths.extend(command_paths(sub, (*prefix, name)))
    return paths


ROOT = typer.main.get_command(app)
PATHS = command_paths(ROOT)


def _command(path: tuple[str, ...]) -> Command:
    command = ROOT
    for name in path:
        assert isinstance(command, TyperGroup)
        command = command.commands[name]
    return command


def test_the_tree_has_every_command() -> None:
    assert {("run",), ("validate",), ("preview",), ("db", "downgrade")} <= set(PATHS)
    assert ("admin", "create-subscription") in PATHS
    assert len(PATHS) > 12


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "uzo")
def test_dash_h_is_help_everywhere(path: tuple[str, ...]) -> None:
    short = runner.invoke(app, [*path, "-h"])
    assert short.exit_code == 0, short.output
    assert "Usage:" in short.stdout
    assert short.stdout == runner.invoke(app, [*path, "--help"]).stdout


def _bool_flags(path: tuple[str, ...]) -> list[TyperOption]:
    params = _command(path).params
    return [p for p in params if isinstance(p, TyperOption) and p.is_flag]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "uzo")
def test_boolean_options_show_as_flags(path: tuple[str, ...]) -> None:
    shown = runner.invoke(app, [*path, "-h"]).stdout
    assert "BOOLEAN" not in shown
    assert "<bool>" not in shown
    for option in _bool_flags(path):
        assert option.opts[0] in shown
    # and none of them takes a value
    for param in _command(path).params:
        if isinstance(param, TyperOption) and param.type_descriptor.annotation is bool:
            assert param.is_flag, f"{' '.join(path)} {param.opts}: a bool option that takes a value"


def test_flags_of_the_workflow_commands() -> None:
    assert {o.opts[0] for o in _bool_flags(("run",))} == {
        "--local",
        "--keep-services",
        "--all-steps",
        "--json",
    }
    assert {o.opts[0] for o in _bool_flags(("preview",))} == {"--local", "--json"}
    assert {o.opts[0] for o in _bool_flags(("validate",))} == {"--json"}
    assert {*_bool_flags(("db", "downgrade"))[0].opts} == {"--yes", "-y"}


DOCS = Path(__file__).parents[3] / "docs" / "cli.md"


@pytest.mark.parametrize("command", ["schema", "validate", "run", "preview"])
def test_docs_list_every_option_of_the_workflow_commands(command: str) -> None:
    """docs/cli.md's synopsis of ``uzo COMMAND`` names each of its options."""
    docs = DOCS.read_text(encoding="utf-8")
    start = docs.index(f"\nuzo {command} ")
    ends = [docs.find(mark, start + 1) for mark in ("\nuzo ", "\n```")]
    synopsis = docs[start : min(e for e in ends if e > 0)]
    for param in _command((command,)).params:
        if isinstance(param, TyperOption):
            assert param.opts[0] in synopsis, f"uzo {command} {param.opts[0]}: not in docs/cli.md"


_PLAIN_HELP = r"""
import json, sys
from typer.testing import CliRunner
from uzo_api.cli import app
runner = CliRunner()
out = {" ".join(p): runner.invoke(app, [*p, "-h"]).stdout for p in json.loads(sys.argv[1])}
print(json.dumps(out))
"""


def test_plain_help_shows_flags_as_flags_too() -> None:
    # without rich (TYPER_USE_RICH=0, read at import) help is click's plain layout
    env = {**os.environ, "TYPER_USE_RICH": "0"}
    done = subprocess.run(
        [sys.executable, "-c", _PLAIN_HELP, json.dumps(PATHS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    helps = json.loads(done.stdout)
    assert "╭" not in helps["run"]  # really the plain layout
    assert "--local " in helps["run"]
    for path, shown in helps.items():
        assert "Usage:" in shown, path
        assert "BOOLEAN" not in shown, path
        assert "<bool>" not in shown, path


def test_version_option_and_command() -> None:
    for args in (["--version"], ["version"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0
        assert result.stdout == f"uzo {__version__}\n"


_IMPORTS = r"""
import json, sys
from uzo_api.cli import app
if sys.argv[1:]:
    app(sys.argv[1:], standalone_mode=False)
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""
HEAVY = {
    "alembic",
    "fastapi",
    "polars",
    "prefect",
    "psycopg",
    "pyarrow",
    "pydantic",
    "ray",
    "rich",
    "sqlalchemy",
    "uzo_connectors",
}
#: the engine's CLI (commands and output helpers) is mounted at import: nothing else of it
ENGINE_CLI = {"uzo_engine", "uzo_engine.cli", "uzo_engine.cli.output", "uzo_engine.cli.workflows"}


@pytest.mark.parametrize("args", [[], ["--version"]], ids=["import", "--version"])
def test_cold_start_imports_nothing_heavy(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTS, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    modules = set(json.loads(done.stderr.strip().splitlines()[-1]))
    loaded = {m.split(".", 1)[0] for m in modules}
    assert not loaded & HEAVY
    assert {m for m in modules if m.split(".", 1)[0] == "uzo_engine"} <= ENGINE_CLI
    if args:
        assert done.stdout == f"uzo {__version__}\n"
