"""Connector types (the plugin catalogue) and the connectors tenants configure.

A connector's secrets never sit in ``connection_config``: they are one
MultiFernet token in ``encrypted_credentials`` and the API never returns them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from uzo_api.db.models.base import Base, IdMixin, TenantScoped, Timestamps


class ConnectorType(IdMixin, Timestamps, Base):
    """A kind of connector (postgres, s3, ...) and its config JSON Schema. Global."""

    __tablename__ = "connector_types"

    type_key: Mapped[str] = mapped_column(String(80), unique=True)
    type_name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(40), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    plugin_class: Mapped[str] = mapped_column(String(300))
    config_schema: Mapped[dict[str, Any]] = mapped_column(default=dict)
    capabilities: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class Connector(IdMixin, Timestamps, TenantScoped, Base):
    """A configured connection; a NULL ``workspace_id`` means subscription-wide.

    ``connector_type`` holds a ``connector_types.type_key`` without a foreign key,
    so plugins can be installed or removed without touching tenant rows.
    """

    __tablename__ = "connectors"
    __table_args__ = (
        UniqueConstraint("subscription_id", "connector_name"),
        {"info": {"tenant": True}},
    )

    connector_name: Mapped[str] = mapped_column(String(200))
    connector_type: Mapped[str] = mapped_column(String(80), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    connection_config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    encrypted_credentials: Mapped[str | None] = mapped_column(Text)
    # names of the fields inside encrypted_credentials, so listing never decrypts
    secret_fields: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    workspace_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    last_tested_at: Mapped[dt.datetime | None] = mapped_column()
    last_test_status: Mapped[str | None] = mapped_column(String(20))
