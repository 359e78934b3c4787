"""Session-wide fixtures: one real PostgreSQL per test session, migrated once.

With ``UZO_DATABASE_URL`` unset, the embedded pgserver runs in a temporary
UZO_HOME; with it set (CI's Debian PostgreSQL run), that server is used.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from pydantic import SecretStr

from uzo_api.app import create_app, open_database
from uzo_api.db import migrate
from uzo_api.db.embedded import stop_embedded
from uzo_api.settings import AuthSettings, Settings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from uzo_api.db.session import Database


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "database" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


# external-database runs need shared keys (uzo_api.app.require_shared_secrets)
TEST_SECRET_KEYS = Fernet.generate_key().decode()


def make_settings(home: Path, **auth: str) -> Settings:
    auth_settings = AuthSettings(
        jwt_secret="test-secret-" + "x" * 40,
        login_limit_per_account=auth.get("login_limit_per_account", "1000/minute"),
        login_limit_per_ip=auth.get("login_limit_per_ip", "10000/minute"),
        register_limit_per_ip=auth.get("register_limit_per_ip", "10000/minute"),
    )
    return Settings(
        home=home,
        env="test",
        log_json=True,
        auth=auth_settings,
        secret_keys=SecretStr(TEST_SECRET_KEYS),  # type: ignore[call-arg]
    )


@pytest.fixture(scope="session")
def uzo_home() -> Iterator[Path]:
    # not under pytest's 0700 tmp root: the embedded server runs as the `pgserver`
    # system user when tests run as root, and must reach its data directory
    home = Path(tempfile.mkdtemp(prefix="uzo-test-"))
    home.chmod(0o755)
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(uzo_home: Path) -> Settings:
    return make_settings(uzo_home)


@pytest.fixture(scope="session")
def database(settings: Settings) -> Iterator[Database]:
    db = open_database(settings)
    migrate.upgrade(db.owner_engine, settings)
    try:
        yield db
    finally:
        db.dispose()
        if os.environ.get("UZO_DATABASE_URL") is None:
            stop_embedded(settings)


@pytest.fixture(scope="session")
def client(settings: Settings, database: Database) -> Iterator[TestClient]:
    with TestClient(create_app(settings, database)) as c:
        yield c


@pytest.fixture
def owner_conn(database: Database) -> Iterator[object]:
    """A connection as the owner role, rolled back after the test."""
    with database.owner_engine.connect() as conn:
        trans = conn.begin()
        yield conn
        trans.rollback()
