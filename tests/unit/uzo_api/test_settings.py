"""Settings: per-concern groups, env names, validation, secrets kept local."""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING

import pytest
from pydantic import ValidationError

from uzo_api.settings import Settings

if TYPE_CHECKING:
    from pathlib import Path


def test_groups_read_their_own_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("UZO_HOME", str(tmp_path))
    monkeypatch.setenv("UZO_DATABASE_URL", "postgresql://owner:pw@db.example:5432/uzo")
    monkeypatch.setenv("UZO_AUTH_ACCESS_TTL_SECONDS", "120")
    monkeypatch.setenv("UZO_REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("UZO_SERVER_PORT", "9000")
    s = Settings()
    assert s.home == tmp_path
    assert s.database.url is not None
    assert s.database.url.get_secret_value().endswith("/uzo")
    assert s.auth.access_ttl_seconds == 120
    assert s.redis.url is not None
    assert s.server.port == 9000
    assert "pw" not in repr(s)  # secrets are masked


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UZO_SERVER_PORT", "99999")
    with pytest.raises(ValidationError, match="port"):
        Settings()


def test_generated_jwt_secret_is_stable_and_private(tmp_path: Path) -> None:
    s = Settings(home=tmp_path)
    first = s.jwt_secret()
    assert len(first) >= 48
    assert Settings(home=tmp_path).jwt_secret() == first
    mode = (tmp_path / "secrets" / "jwt_secret").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_configured_jwt_secret_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UZO_AUTH_JWT_SECRET", "k" * 64)
    assert Settings(home=tmp_path).jwt_secret() == "k" * 64
    assert not (tmp_path / "secrets").exists()
