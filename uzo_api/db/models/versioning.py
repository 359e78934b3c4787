"""Versions of resources (check-out, check-in, publish), their comments, and deletions.

``deletion_logs`` keeps what a delete cascaded to (counts and ids per resource
type) so that a soft delete can be restored until ``restore_deadline``; ``purged_at``
says when its rows were removed for real (``purged_by`` NULL: by ``uzo db purge``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    column,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from uzo_api.db.models.base import Base, IdMixin, TenantScoped, Timestamps

VERSION_STATUSES = ("draft", "checked_in", "published")


class Version(IdMixin, Timestamps, TenantScoped, Base):
    """A numbered snapshot of a resource (a workflow's diagram, for instance)."""

    __tablename__ = "versions"
    __table_args__ = (
        UniqueConstraint("resource_type", "resource_id", "version_number"),
        CheckConstraint(column("status").in_(VERSION_STATUSES), name="status"),
        {"info": {"tenant": True}},
    )

    resource_type: Mapped[str] = mapped_column(String(50))
    resource_id: Mapped[uuid.UUID] = mapped_column()
    version_number: Mapped[int] = mapped_column(Integer)
    version_data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    tag: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="draft")
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    checked_out_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    checked_out_at: Mapped[dt.datetime | None] = mapped_column()
    published_at: Mapped[dt.datetime | None] = mapped_column()


class VersionComment(IdMixin, Timestamps, TenantScoped, Base):
    """A comment on a version."""

    __tablename__ = "version_comments"

    version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("versions.id", ondelete="CASCADE"), index=True
    )
    comment_text: Mapped[str] = mapped_column(Text)
    commented_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )


class DeletionLog(IdMixin, TenantScoped, Base):
    """A delete (soft or hard) of a resource and everything it cascaded to."""

    __tablename__ = "deletion_logs"
    __table_args__ = (
        Index("ix_deletion_logs_resource_type_resource_id", "resource_type", "resource_id"),
        Index("ix_deletion_logs_restore_deadline", "restore_deadline"),
        Index("ix_deletion_logs_deleted_at_id", "deleted_at", "id"),
        {"info": {"tenant": True}},
    )

    resource_type: Mapped[str] = mapped_column(String(50))
    resource_id: Mapped[uuid.UUID] = mapped_column()
    resource_name: Mapped[str | None] = mapped_column(String(300))
    cascaded_counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    cascaded_ids: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_soft_delete: Mapped[bool] = mapped_column(Boolean, default=True)
    deleted_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    deleted_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    restore_deadline: Mapped[dt.datetime | None] = mapped_column()
    restored_at: Mapped[dt.datetime | None] = mapped_column()
    restored_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    purged_at: Mapped[dt.datetime | None] = mapped_column()
    purged_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
