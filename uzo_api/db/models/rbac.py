"""Groups, roles, role permissions and per-object permission grants.

Permission levels rank read < execute < read_write < admin < owner. Object grants
inherit down the tree workspace -> folder -> job -> workflow; the resolution is
done by the permission service, these tables only hold the explicit grants.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    column,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from uzo_api.db.models.base import Base, IdMixin, TenantScoped, Timestamps

PERMISSION_LEVELS = ("read", "execute", "read_write", "admin", "owner")
OBJECT_TYPES = ("workspace", "folder", "job", "workflow", "connector", "jobpackage")


class Group(IdMixin, Timestamps, TenantScoped, Base):
    """A named set of users of one subscription."""

    __tablename__ = "groups"
    __table_args__ = (
        UniqueConstraint("subscription_id", "group_name"),
        {"info": {"tenant": True}},
    )

    group_name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )


class UserGroup(IdMixin, TenantScoped, Base):
    """Membership of a user in a group."""

    __tablename__ = "user_groups"
    __table_args__ = (
        UniqueConstraint("group_id", "user_id"),
        {"info": {"tenant": True}},
    )

    group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    added_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class Role(IdMixin, Timestamps, TenantScoped, Base):
    """A named bundle of permissions; system roles are seeded per subscription."""

    __tablename__ = "roles"
    __table_args__ = (
        UniqueConstraint("subscription_id", "role_name"),
        {"info": {"tenant": True}},
    )

    role_name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    is_system: Mapped[bool] = mapped_column(Boolean, default=False)


class UserRole(IdMixin, TenantScoped, Base):
    """Assignment of a role to a user."""

    __tablename__ = "user_roles"
    __table_args__ = (
        UniqueConstraint("user_id", "role_id"),
        {"info": {"tenant": True}},
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("roles.id", ondelete="CASCADE"), index=True
    )
    granted_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class GroupRole(IdMixin, TenantScoped, Base):
    """Assignment of a role to every member of a group."""

    __tablename__ = "group_roles"
    __table_args__ = (
        UniqueConstraint("group_id", "role_id"),
        {"info": {"tenant": True}},
    )

    group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    role_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("roles.id", ondelete="CASCADE"), index=True
    )
    granted_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class Permission(IdMixin, TenantScoped, Base):
    """An action a role may perform on a resource type (e.g. workflow/execute)."""

    __tablename__ = "permissions"
    __table_args__ = (
        UniqueConstraint("role_id", "resource_type", "action"),
        {"info": {"tenant": True}},
    )

    role_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"))
    resource_type: Mapped[str] = mapped_column(String(50))
    action: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class ObjectPermission(IdMixin, Timestamps, TenantScoped, Base):
    """A grant of a permission level on one object to exactly one user or group."""

    __tablename__ = "object_permissions"
    __table_args__ = (
        CheckConstraint("(user_id IS NULL) <> (group_id IS NULL)", name="one_grantee"),
        CheckConstraint(column("permission_level").in_(PERMISSION_LEVELS), name="permission_level"),
        CheckConstraint(column("object_type").in_(OBJECT_TYPES), name="object_type"),
        Index("ix_object_permissions_object_type_object_id", "object_type", "object_id"),
        Index(
            "uq_object_permissions_user_grant",
            "object_type",
            "object_id",
            "user_id",
            unique=True,
            postgresql_where=text("user_id IS NOT NULL"),
        ),
        Index(
            "uq_object_permissions_group_grant",
            "object_type",
            "object_id",
            "group_id",
            unique=True,
            postgresql_where=text("group_id IS NOT NULL"),
        ),
        {"info": {"tenant": True}},
    )

    object_type: Mapped[str] = mapped_column(String(20))
    object_id: Mapped[uuid.UUID] = mapped_column()
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    group_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), index=True
    )
    permission_level: Mapped[str] = mapped_column(String(20))
    granted_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
