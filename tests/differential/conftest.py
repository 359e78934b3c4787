"""Shows the differential figures at the end of a pytest run (with or without ``-s``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

_REPORTS = pytest.StashKey[list[str]]()


@pytest.fixture
def differential_summary(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Adds a text block to the terminal summary."""
    reports = request.config.stash.setdefault(_REPORTS, [])
    return reports.append


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    for text in config.stash.get(_REPORTS, []):
        terminalreporter.write_sep("=", "differential test: UZO expressions vs DuckDB")
        terminalreporter.write_line(text)
