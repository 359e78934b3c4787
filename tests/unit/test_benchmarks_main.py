"""``python -m benchmarks --help``: the benchmarks, one line each, and the flags."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks import __main__ as runner

ROOT = Path(runner.__file__).parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_lists_every_benchmark_and_the_flags() -> None:
    done = _run("--help")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for name in runner.discover():
        (line,) = [x for x in lines if x.split()[:1] == [name]]
        assert line.strip() != name  # a description follows the name
    assert any(x.split()[:1] == ["tpch"] and "TPC-H" in x for x in lines)
    for flag in ("--quick", "--charts-only", "--help"):
        assert any(x.strip().startswith(flag) for x in lines), flag


def test_short_help_and_unknown_flags() -> None:
    assert _run("-h").returncode == 0
    bad = _run("--bogus")
    assert bad.returncode == 2
    assert "--bogus" in bad.stdout


def test_summary_is_the_docstrings_first_line() -> None:
    assert runner.summary("tpch").startswith("TPC-H Q1")
    assert "`" not in runner.summary("cli_progress")
