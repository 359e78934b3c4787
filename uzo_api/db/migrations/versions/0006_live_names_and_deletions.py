"""live names unique per parent, deletion logs that say when their rows were purged

Names of workspaces, folders, jobs, workflows and job packages become unique among
the *live* rows of one parent (partial unique indexes ``WHERE deleted_at IS NULL``):
a soft-deleted object keeps its name without blocking it. Live duplicates that exist
before this revision (nothing refused them until now) keep the oldest name; each
later one gets its id's first eight characters appended, ``Sales (1a2b3c4d)``.

``deletion_logs`` gains ``purged_at``/``purged_by`` (rows removed for real), an index
for listing by time, and a read-only platform-admin policy (ADR 0013), so a platform
admin can list the deletions of every tenant. Soft-deleted rows get a partial index
by age for ``uzo db purge``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from uzo_api.db.migrations import ops

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# frozen with this revision: index -> (table, scope expressions, name column)
LIVE_NAMES = {
    "uq_workspaces_live_name": ("workspaces", ("subscription_id",), "workspace_name"),
    "uq_folders_live_name": (
        "folders",
        ("coalesce(parent_folder_id, workspace_id)",),
        "folder_name",
    ),
    "uq_jobs_live_name": ("jobs", ("folder_id",), "job_name"),
    "uq_workflows_live_name": ("workflows", ("job_id",), "workflow_name"),
    "uq_jobpackages_live_name": ("jobpackages", ("subscription_id",), "package_name"),
}
NAME_LENGTH = 200  # the name columns' length
SUFFIX_LENGTH = len(" (12345678)")


def _role() -> str:
    attrs = op.get_context().config.attributes  # type: ignore[union-attr]
    return str(attrs.get("app_role", "uzo_app"))


def _rename_live_duplicates(table: str, scope: tuple[str, ...], name: str) -> None:
    keep = NAME_LENGTH - SUFFIX_LENGTH
    op.execute(
        f"""
        UPDATE {table} t
        SET {name} = left(t.{name}, {keep}) || ' (' || left(t.id::text, 8) || ')'
        FROM (
            SELECT id, row_number() OVER (
                PARTITION BY {", ".join(scope)}, {name} ORDER BY created_at, id
            ) AS n
            FROM {table} WHERE deleted_at IS NULL
        ) d
        WHERE t.id = d.id AND d.n > 1
        """
    )


def upgrade() -> None:
    for index, (table, scope, name) in LIVE_NAMES.items():
        _rename_live_duplicates(table, scope, name)
        columns = [sa.text(expr) if "(" in expr else expr for expr in scope]
        op.create_index(
            index,
            table,
            [*columns, name],
            unique=True,
            postgresql_where=sa.text("deleted_at IS NULL"),
        )
        op.create_index(
            f"ix_{table}_deleted_at",
            table,
            ["deleted_at"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NOT NULL"),
        )
    op.add_column("deletion_logs", sa.Column("purged_at", sa.DateTime(timezone=True)))
    op.add_column("deletion_logs", sa.Column("purged_by", sa.UUID()))
    op.create_foreign_key(
        op.f("fk_deletion_logs_purged_by_users"),
        "deletion_logs",
        "users",
        ["purged_by"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_index(
        op.f("ix_deletion_logs_purged_by"), "deletion_logs", ["purged_by"], unique=False
    )
    op.create_index(
        "ix_deletion_logs_deleted_at_id", "deletion_logs", ["deleted_at", "id"], unique=False
    )
    ops.enable_platform_scope("deletion_logs", _role(), "SELECT")


def downgrade() -> None:
    op.execute("DROP POLICY IF EXISTS platform_admin ON deletion_logs")
    op.drop_index("ix_deletion_logs_deleted_at_id", table_name="deletion_logs")
    op.drop_index(op.f("ix_deletion_logs_purged_by"), table_name="deletion_logs")
    op.drop_constraint(
        op.f("fk_deletion_logs_purged_by_users"), "deletion_logs", type_="foreignkey"
    )
    op.drop_column("deletion_logs", "purged_by")
    op.drop_column("deletion_logs", "purged_at")
    for index, (table, _, _) in LIVE_NAMES.items():
        op.drop_index(f"ix_{table}_deleted_at", table_name=table)
        op.drop_index(index, table_name=table)
