"""Subscriptions, editions (plans and features), users and their credentials."""

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
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    column,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from uzo_api.db.models.base import Base, IdMixin, SoftDelete, TenantScoped, Timestamps


class SubscriptionPlan(IdMixin, Timestamps, Base):
    """An edition: Standard, Premium, Enterprise. Global (not tenant-scoped)."""

    __tablename__ = "subscription_plans"

    plan_key: Mapped[str] = mapped_column(String(40), unique=True)
    plan_name: Mapped[str] = mapped_column(String(100))
    base_price: Mapped[float] = mapped_column(Numeric(10, 2), default=0)
    max_workflows: Mapped[int | None] = mapped_column(Integer)
    max_connectors: Mapped[int | None] = mapped_column(Integer)
    max_executions_per_month: Mapped[int | None] = mapped_column(Integer)
    max_users: Mapped[int | None] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class Feature(IdMixin, Timestamps, Base):
    """A switchable capability (lineage, monitoring, sso, ...). Global."""

    __tablename__ = "features"

    feature_key: Mapped[str] = mapped_column(String(80), unique=True)
    feature_name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    default_enabled: Mapped[bool] = mapped_column(Boolean, default=False)


class PlanFeature(IdMixin, Base):
    __tablename__ = "plan_features"
    __table_args__ = (UniqueConstraint("plan_id", "feature_id"),)

    plan_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscription_plans.id", ondelete="CASCADE"), index=True
    )
    feature_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("features.id", ondelete="CASCADE"), index=True
    )
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    limit_value: Mapped[int | None] = mapped_column(Integer)


#: a subscription's life: active <-> suspended, either -> cancelled (final)
SUBSCRIPTION_STATUSES = ("active", "suspended", "cancelled")
INFRASTRUCTURE_TYPES = ("shared", "dedicated")


class Subscription(IdMixin, Timestamps, SoftDelete, Base):
    """A tenant. Its own row is visible only with its id set as the tenant (or to a
    platform admin inside :func:`uzo_api.db.platform.platform_scope`)."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        CheckConstraint(column("status").in_(SUBSCRIPTION_STATUSES), name="status"),
        CheckConstraint(
            column("infrastructure_type").in_(INFRASTRUCTURE_TYPES), name="infrastructure_type"
        ),
        {"info": {"tenant": True, "tenant_column": "id"}},
    )

    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subscription_plans.id"), index=True)
    company_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="active")
    infrastructure_type: Mapped[str] = mapped_column(String(20), default="shared")
    dedicated_database_url: Mapped[str | None] = mapped_column(
        Text, doc="Encrypted URL of a dedicated-infrastructure tenant's database."
    )
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)


class SubscriptionFeatureOverride(IdMixin, Timestamps, TenantScoped, Base):
    __tablename__ = "subscription_feature_overrides"
    __table_args__ = (
        UniqueConstraint("subscription_id", "feature_id"),
        {"info": {"tenant": True}},
    )

    feature_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("features.id", ondelete="CASCADE"), index=True
    )
    is_enabled: Mapped[bool] = mapped_column(Boolean)
    limit_value: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[dt.datetime | None] = mapped_column()


class User(IdMixin, Timestamps, SoftDelete, TenantScoped, Base):
    """A person in one subscription. Emails are unique across UZO (login by email)."""

    __tablename__ = "users"
    __table_args__ = (
        Index("uq_users_email_lower", text("lower(email)"), unique=True),
        UniqueConstraint("subscription_id", "username"),
        {"info": {"tenant": True}},
    )

    username: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(320))
    full_name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_subscription_owner: Mapped[bool] = mapped_column(Boolean, default=False)
    last_login_at: Mapped[dt.datetime | None] = mapped_column()
    password_changed_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class PlatformAdmin(TenantScoped, Base):
    """A user who administers the whole server (every subscription), see ADR 0013.

    Written only by ``uzo admin create`` on the owner connection: the application role
    has no privilege on this table and learns membership only through the SECURITY
    DEFINER function ``uzo_is_platform_admin``.
    """

    __tablename__ = "platform_admins"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class ApiKey(IdMixin, Timestamps, TenantScoped, Base):
    """A programmatic credential. Only a hash of the secret part is stored."""

    __tablename__ = "api_keys"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(128))
    last_used_at: Mapped[dt.datetime | None] = mapped_column()
    expires_at: Mapped[dt.datetime | None] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()


class RefreshToken(IdMixin, TenantScoped, Base):
    """A rotating refresh token. Reuse of a rotated token revokes its whole family."""

    __tablename__ = "refresh_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    family_id: Mapped[uuid.UUID] = mapped_column(index=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    issued_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[dt.datetime] = mapped_column()
    rotated_at: Mapped[dt.datetime | None] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    user_agent: Mapped[str | None] = mapped_column(String(400))
    ip_address: Mapped[str | None] = mapped_column(String(64))


class PasswordResetToken(IdMixin, TenantScoped, Base):
    """Single-use, expiring. Only a hash is stored."""

    __tablename__ = "password_reset_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[dt.datetime] = mapped_column()
    used_at: Mapped[dt.datetime | None] = mapped_column()


class UsageCounter(IdMixin, TenantScoped, Base):
    """Monthly usage per subscription (executions, ...), for edition limits."""

    __tablename__ = "usage_counters"
    __table_args__ = (
        UniqueConstraint("subscription_id", "usage_type", "period_start"),
        {"info": {"tenant": True}},
    )

    usage_type: Mapped[str] = mapped_column(String(40))
    period_start: Mapped[dt.date] = mapped_column()
    count: Mapped[int] = mapped_column(BigInteger, default=0)
