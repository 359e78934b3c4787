"""Keys generated into UZO_HOME are for one machine: production or an external database
must be given the shared keys, and the error names what is missing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from pydantic import SecretStr

from uzo_api.app import create_app
from uzo_api.settings import AuthSettings, DatabaseSettings, Settings

if TYPE_CHECKING:
    from pathlib import Path

JWT = SecretStr("j" * 64)
KEYS = SecretStr("k" * 43 + "=")


def _settings(tmp_path: Path, **over: object) -> Settings:
    base = {"home": tmp_path, "database": DatabaseSettings(url=None)}
    return Settings(**{**base, **over})  # type: ignore[arg-type]


def test_embedded_single_machine_may_generate_its_keys(tmp_path: Path) -> None:
    create_app(_settings(tmp_path, env="development"))


@pytest.mark.parametrize(
    ("over", "missing"),
    [
        ({"env": "production"}, "UZO_AUTH_JWT_SECRET and UZO_SECRET_KEYS must be set with UZO_ENV"),
        (
            {"env": "production", "auth": AuthSettings(jwt_secret=JWT)},
            "UZO_SECRET_KEYS must be set with UZO_ENV=production",
        ),
        (
            {"database": DatabaseSettings(url=SecretStr("postgresql://u:p@db/uzo"))},
            "UZO_AUTH_JWT_SECRET and UZO_SECRET_KEYS must be set with an external database",
        ),
    ],
)
def test_replicas_need_shared_keys(tmp_path: Path, over: dict[str, object], missing: str) -> None:
    with pytest.raises(ValueError, match=missing):
        create_app(_settings(tmp_path, **over))
    assert not (tmp_path / "secrets").exists()  # nothing generated on the way


def test_production_with_both_keys_starts(tmp_path: Path) -> None:
    create_app(
        _settings(tmp_path, env="production", auth=AuthSettings(jwt_secret=JWT), secret_keys=KEYS)
    )
