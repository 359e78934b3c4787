"""Alembic environment: runs on the owner connection handed in by uzo_api.db.migrate."""

from __future__ import annotations

from alembic import context

from uzo_api.db.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `uzo db upgrade` (uzo_api.db.migrate)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    compare_type=True,
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
