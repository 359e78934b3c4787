"""platform admins: who administers every subscription, and the narrow way they see them

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from uzo_api.db.migrations import ops

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# frozen with this revision (ADR 0013)
IS_PLATFORM_ADMIN = (
    "SELECT EXISTS ("
    " SELECT 1 FROM platform_admins pa"
    " JOIN users u ON u.id = pa.user_id AND u.subscription_id = pa.subscription_id"
    " JOIN subscriptions s ON s.id = pa.subscription_id"
    " WHERE pa.user_id = p_user AND pa.subscription_id = uzo_current_tenant()"
    "   AND u.is_active AND u.deleted_at IS NULL"
    "   AND s.status = 'active' AND s.deleted_at IS NULL)"
)
PLATFORM_SCOPE = (
    "SELECT uzo_is_platform_admin(nullif(current_setting('app.platform_admin', true), '')::uuid)"
)
PLATFORM_TABLES = ("subscriptions",)


def _role() -> str:
    attrs = op.get_context().config.attributes  # type: ignore[union-attr]
    return str(attrs.get("app_role", "uzo_app"))


def upgrade() -> None:
    role = _role()
    op.create_table(
        "platform_admins",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("subscription_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_platform_admins_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_platform_admins_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_platform_admins")),
        info={"tenant": True},
    )
    op.create_index(
        op.f("ix_platform_admins_subscription_id"),
        "platform_admins",
        ["subscription_id"],
        unique=False,
    )
    # RLS like every tenant table; and no privilege at all for the application role:
    # only the owner connection (`uzo admin create`) writes it
    ops.enable_tenant_rls("platform_admins")
    op.create_check_constraint(
        op.f("ck_subscriptions_status"),
        "subscriptions",
        "status IN ('active', 'suspended', 'cancelled')",
    )
    op.create_check_constraint(
        op.f("ck_subscriptions_infrastructure_type"),
        "subscriptions",
        "infrastructure_type IN ('shared', 'dedicated')",
    )
    ops.create_definer_function(
        role, "uzo_is_platform_admin", "p_user uuid", "boolean", IS_PLATFORM_ADMIN
    )
    ops.create_definer_function(role, "uzo_platform_scope", "", "boolean", PLATFORM_SCOPE)
    for table in PLATFORM_TABLES:
        ops.enable_platform_scope(table, role)


def downgrade() -> None:
    for table in PLATFORM_TABLES:
        op.execute(f"DROP POLICY IF EXISTS platform_admin ON {table}")
    op.execute("DROP FUNCTION IF EXISTS uzo_platform_scope()")
    op.execute("DROP FUNCTION IF EXISTS uzo_is_platform_admin(uuid)")
    op.drop_constraint(op.f("ck_subscriptions_infrastructure_type"), "subscriptions")
    op.drop_constraint(op.f("ck_subscriptions_status"), "subscriptions")
    op.drop_index(op.f("ix_platform_admins_subscription_id"), table_name="platform_admins")
    op.drop_table("platform_admins")
