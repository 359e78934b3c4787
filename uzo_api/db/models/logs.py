"""High-volume logs, range-partitioned by month on ``created_at``.

The partition key must be part of the primary key, hence ``(id, created_at)``.
Partitions are made by ``uzo_ensure_log_partitions`` (see migrations/ops.py).
Log rows outlive what they describe, so besides the tenant they have no
foreign keys: ids of users, runs and resources are kept as plain values.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    column,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from uzo_api.db.models.base import Base, TenantScoped, new_id

PARTITION_BY = "RANGE (created_at)"
AUDIT_STATUSES = ("success", "failure")


class AuditLog(TenantScoped, Base):
    """Who did what to which resource, with the changes made."""

    __tablename__ = "audit_logs"
    __table_args__ = (
        CheckConstraint(column("status").in_(AUDIT_STATUSES), name="status"),
        Index("ix_audit_logs_subscription_id_created_at", "subscription_id", "created_at"),
        Index("ix_audit_logs_resource_type_resource_id", "resource_type", "resource_id"),
        Index("ix_audit_logs_changes_gin", "changes", postgresql_using="gin"),
        {
            "postgresql_partition_by": PARTITION_BY,
            "info": {"tenant": True, "partitioned": True},
        },
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    created_at: Mapped[dt.datetime] = mapped_column(primary_key=True, server_default=func.now())
    user_id: Mapped[uuid.UUID | None] = mapped_column()
    api_key_id: Mapped[uuid.UUID | None] = mapped_column()
    action: Mapped[str] = mapped_column(String(100))
    resource_type: Mapped[str] = mapped_column(String(50))
    resource_id: Mapped[uuid.UUID | None] = mapped_column()
    changes: Mapped[dict[str, Any] | None] = mapped_column()
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(400))
    request_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="success")


class ExecutionLog(TenantScoped, Base):
    """A log line of a workflow run or of one of its nodes."""

    __tablename__ = "execution_logs"
    __table_args__ = (
        Index("ix_execution_logs_subscription_id_created_at", "subscription_id", "created_at"),
        Index("ix_execution_logs_execution_id", "execution_id"),
        {
            "postgresql_partition_by": PARTITION_BY,
            "info": {"tenant": True, "partitioned": True},
        },
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    created_at: Mapped[dt.datetime] = mapped_column(primary_key=True, server_default=func.now())
    execution_id: Mapped[uuid.UUID] = mapped_column()
    workflow_id: Mapped[uuid.UUID] = mapped_column()
    node_id: Mapped[str | None] = mapped_column(String(100))
    log_level: Mapped[str] = mapped_column(String(10))
    log_message: Mapped[str] = mapped_column(Text)
    log_details: Mapped[dict[str, Any] | None] = mapped_column()
    performance_metrics: Mapped[dict[str, Any] | None] = mapped_column()


class ServerLog(Base):
    """An HTTP request served; ``subscription_id`` is NULL when unauthenticated."""

    __tablename__ = "server_logs"
    __table_args__ = (
        Index("ix_server_logs_subscription_id_created_at", "subscription_id", "created_at"),
        Index("ix_server_logs_request_id", "request_id"),
        {
            "postgresql_partition_by": PARTITION_BY,
            "info": {"tenant": True, "partitioned": True, "tenant_nullable": True},
        },
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    created_at: Mapped[dt.datetime] = mapped_column(primary_key=True, server_default=func.now())
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE")
    )
    request_id: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(10))
    endpoint: Mapped[str] = mapped_column(String(500))
    response_status: Mapped[int] = mapped_column(Integer)
    response_time_ms: Mapped[float] = mapped_column(Double)
    user_id: Mapped[uuid.UUID | None] = mapped_column()
    ip_address: Mapped[str | None] = mapped_column(String(64))


class DataChangeHistory(TenantScoped, Base):
    """Before/after images of a changed metadata row."""

    __tablename__ = "data_change_history"
    __table_args__ = (
        Index("ix_data_change_history_subscription_id_created_at", "subscription_id", "created_at"),
        Index("ix_data_change_history_table_name_record_id", "table_name", "record_id"),
        {
            "postgresql_partition_by": PARTITION_BY,
            "info": {"tenant": True, "partitioned": True},
        },
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    created_at: Mapped[dt.datetime] = mapped_column(primary_key=True, server_default=func.now())
    table_name: Mapped[str] = mapped_column(String(100))
    record_id: Mapped[uuid.UUID] = mapped_column()
    operation: Mapped[str] = mapped_column(String(10))
    old_data: Mapped[dict[str, Any] | None] = mapped_column()
    new_data: Mapped[dict[str, Any] | None] = mapped_column()
    version_number: Mapped[int | None] = mapped_column(Integer)
    changed_by: Mapped[uuid.UUID | None] = mapped_column()
