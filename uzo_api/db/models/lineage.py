"""Lineage: data assets, the edges workflows draw between them, and profiles.

Upstream/downstream traversal (up to 15 levels) is a recursive query over
``lineage_edges``; ``lineage_impact_cache`` keeps its latest result per asset.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    column,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from uzo_api.db.models.base import Base, IdMixin, TenantScoped, Timestamps

ASSET_TYPES = ("table", "file", "api", "collection")


class DataAsset(IdMixin, Timestamps, TenantScoped, Base):
    """A table, file, API or collection that a workflow reads or writes."""

    __tablename__ = "data_assets"
    __table_args__ = (
        UniqueConstraint("subscription_id", "asset_qualified_name"),
        CheckConstraint(column("asset_type").in_(ASSET_TYPES), name="asset_type"),
        Index("ix_data_assets_schema_gin", "schema", postgresql_using="gin"),
        {"info": {"tenant": True}},
    )

    asset_qualified_name: Mapped[str] = mapped_column(String(1000))
    asset_type: Mapped[str] = mapped_column(String(20))
    connector_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("connectors.id", ondelete="SET NULL"), index=True
    )
    is_source: Mapped[bool] = mapped_column(Boolean, default=False)
    is_target: Mapped[bool] = mapped_column(Boolean, default=False)
    schema: Mapped[dict[str, Any] | None] = mapped_column()


class LineageEdge(IdMixin, TenantScoped, Base):
    """Data flowed from one asset to another through a node of a workflow."""

    __tablename__ = "lineage_edges"

    source_asset_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("data_assets.id", ondelete="CASCADE"), index=True
    )
    target_asset_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("data_assets.id", ondelete="CASCADE"), index=True
    )
    workflow_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workflows.id", ondelete="CASCADE"), index=True
    )
    node_id: Mapped[str] = mapped_column(String(100))
    execution_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("workflow_executions.id", ondelete="SET NULL"), index=True
    )
    column_mapping: Mapped[dict[str, Any] | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class LineageImpactCache(IdMixin, TenantScoped, Base):
    """The latest computed upstream/downstream closure of one asset."""

    __tablename__ = "lineage_impact_cache"
    __table_args__ = (
        UniqueConstraint("subscription_id", "asset_id"),
        {"info": {"tenant": True}},
    )

    asset_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("data_assets.id", ondelete="CASCADE"), index=True
    )
    upstream_assets: Mapped[list[Any]] = mapped_column(default=list)
    downstream_assets: Mapped[list[Any]] = mapped_column(default=list)
    related_workflows: Mapped[list[Any]] = mapped_column(default=list)
    computed_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class TableProfile(IdMixin, TenantScoped, Base):
    """A profile of an asset at one point in time (one entry per column, in order)."""

    __tablename__ = "table_profiles"
    __table_args__ = (
        Index("ix_table_profiles_asset_id_profiled_at", "asset_id", "profiled_at"),
        {"info": {"tenant": True}},
    )

    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("data_assets.id", ondelete="CASCADE"))
    execution_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("workflow_executions.id", ondelete="SET NULL"), index=True
    )
    row_count: Mapped[int | None] = mapped_column(BigInteger)
    column_profiles: Mapped[list[Any]] = mapped_column(default=list)
    profiled_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
