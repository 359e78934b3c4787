"""Run Alembic migrations programmatically, as the owner role."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from uzo_api.settings import Settings


def alembic_config(settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "uzo_api.db:migrations")
    cfg.attributes["app_role"] = settings.database.app_role
    app_password = settings.database.app_password
    cfg.attributes["app_password"] = app_password.get_secret_value() if app_password else None
    cfg.attributes["partition_months_ahead"] = settings.database.log_partition_months_ahead
    return cfg


def upgrade(owner_engine: Engine, settings: Settings, revision: str = "head") -> None:
    cfg = alembic_config(settings)
    with owner_engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(owner_engine: Engine, settings: Settings, revision: str) -> None:
    cfg = alembic_config(settings)
    with owner_engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def head_revision(settings: Settings) -> str | None:
    return ScriptDirectory.from_config(alembic_config(settings)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
