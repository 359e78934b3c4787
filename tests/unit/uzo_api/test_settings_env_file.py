"""Settings read `.env` (or UZO_ENV_FILE); environment variables win; nothing at import."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from pydantic import ValidationError

from uzo_api.settings import Settings
from uzo_connectors.settings import ENV_FILE_VARIABLE, ConnectorSettings
from uzo_connectors.sql.files import DatabaseFileSettings
from uzo_engine.settings import EngineSettings

if TYPE_CHECKING:
    from pathlib import Path

VARIABLES = (
    "UZO_SERVER_PORT",
    "UZO_AUTH_ACCESS_TTL_SECONDS",
    "UZO_LOG_LEVEL",
    "UZO_SECRET_KEYS",
    "UZO_RAY_NAMESPACE",
    "UZO_CONNECTORS_ALLOW_LOOPBACK",
    "UZO_CONNECTORS_DATABASE_ROOT",
    ENV_FILE_VARIABLE,
)

DOTENV = """\
# a comment
UZO_SERVER_PORT=9100
UZO_AUTH_ACCESS_TTL_SECONDS=120
UZO_LOG_LEVEL="DEBUG"
UZO_RAY_NAMESPACE=from-file
UZO_CONNECTORS_ALLOW_LOOPBACK=true
UZO_CONNECTORS_DATABASE_ROOT=/srv/databases
NOT_UZO=ignored
"""


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_dotenv_in_the_current_directory_is_read(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(DOTENV)
    clean_env.chdir(tmp_path)
    settings = Settings()
    assert settings.server.port == 9100  # a group of the root model
    assert settings.auth.access_ttl_seconds == 120
    assert settings.log_level == "DEBUG"  # the root model itself, quotes removed
    assert EngineSettings().ray_namespace == "from-file"
    assert ConnectorSettings().allow_loopback is True
    db_root = DatabaseFileSettings().database_root
    assert db_root is not None
    assert str(db_root) == "/srv/databases"


def test_environment_variables_win_over_the_file(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(DOTENV)
    clean_env.chdir(tmp_path)
    clean_env.setenv("UZO_SERVER_PORT", "9200")
    clean_env.setenv("UZO_RAY_NAMESPACE", "from-env")
    assert Settings().server.port == 9200
    assert Settings().auth.access_ttl_seconds == 120  # the file still fills the rest
    assert EngineSettings().ray_namespace == "from-env"
    assert Settings(home=tmp_path).home == tmp_path  # arguments win over both


def test_uzo_env_file_points_elsewhere(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("UZO_SERVER_PORT=9100\n")
    other = tmp_path / "conf" / "uzo.env"
    other.parent.mkdir()
    other.write_text("UZO_SERVER_PORT=9300\n")
    clean_env.chdir(tmp_path)
    clean_env.setenv(ENV_FILE_VARIABLE, str(other))
    assert Settings().server.port == 9300  # the named file instead of ./.env


def test_a_missing_uzo_env_file_is_an_error(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.chdir(tmp_path)
    clean_env.setenv(ENV_FILE_VARIABLE, str(tmp_path / "nope.env"))
    with pytest.raises(FileNotFoundError, match="UZO_ENV_FILE"):
        Settings()


def test_no_dotenv_means_defaults(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.chdir(tmp_path)
    assert Settings().server.port == 8000


def test_bad_values_in_the_file_are_refused_like_bad_env_vars(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("UZO_SERVER_PORT=99999\n")
    clean_env.chdir(tmp_path)
    with pytest.raises(ValidationError, match="port"):
        Settings()


def test_nothing_is_read_at_import_time(tmp_path: Path) -> None:
    """A broken .env cannot break an import: it is read only when settings are built."""
    (tmp_path / ".env").write_text("UZO_SERVER_PORT=not-a-port\nUZO_RAY_OBJECT_STORE_MB=1\n")
    code = (
        "import uzo_api.settings, uzo_api.app, uzo_api.cli, uzo_engine.settings\n"
        "import uzo_connectors.settings, uzo_connectors.sql.files\n"
        "from pydantic import ValidationError\n"
        "from uzo_api.settings import get_settings\n"
        "try:\n"
        "    get_settings()\n"
        "except ValidationError:\n"
        "    print('refused on use')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "refused on use"
