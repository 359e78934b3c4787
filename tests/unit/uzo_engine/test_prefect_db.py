"""Where the local Prefect server keeps its data (URL resolution only; no server)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from uzo_engine.runtime.prefect_db import PrefectDatabaseError, connection_url
from uzo_engine.settings import EngineSettings

if TYPE_CHECKING:
    from pathlib import Path


def _settings(home: Path, **values: str) -> EngineSettings:
    fields: dict[str, object] = {"database_url": None, "prefect_database_url": None, **values}
    return EngineSettings(home=home, **fields)  # type: ignore[arg-type]


def test_embedded_setup_uses_sqlite_under_uzo_home(tmp_path: Path) -> None:
    assert connection_url(_settings(tmp_path)) == (
        f"sqlite+aiosqlite:///{tmp_path / 'prefect' / 'prefect.db'}"
    )


def test_external_postgresql_hosts_a_prefect_database(tmp_path: Path) -> None:
    settings = _settings(tmp_path, database_url="postgresql://owner:s3cret@db.example:5433/uzo")
    assert connection_url(settings) == "postgresql+asyncpg://owner:s3cret@db.example:5433/prefect"


def test_an_explicit_prefect_database_wins(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        database_url="postgresql://owner:pw@db:5432/uzo",
        prefect_database_url="postgresql+psycopg://p:pw@other:5432/orchestration",
    )
    assert connection_url(settings) == "postgresql+asyncpg://p:pw@other:5432/orchestration"


def test_a_non_postgresql_prefect_database_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path, prefect_database_url="mysql://u:p@h/prefect")
    with pytest.raises(PrefectDatabaseError, match="must be PostgreSQL"):
        connection_url(settings)
