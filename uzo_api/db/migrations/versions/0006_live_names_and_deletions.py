"""live names unique per parent, deletion logs that say when their rows were purged

Names of workspaces, folders, jobs, workflows and job packages become unique among
the *live* rows of one parent (partial unique indexes ``WHERE deleted_at IS NULL``):
a soft-deleted object keeps its name without blocking it. Live duplicates that exist
before this revision (nothing refused them until now) keep the oldest name; each
later one gets its id's first eight characters appended, ``Sales (1a2b3c4d)``.

Workspaces and folders deleted before this revision wrote no deletion log: each gets
one now, found as before by its timestamp (the folders, jobs and workflows that carry
the same ``deleted_at``), so it stays restorable by the log; every log without a
deadline gets the default one (``deleted_at`` + 30 days).

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


RESTORE_DAYS = 30

# one log per workspace, and per folder deleted on its own (not with what holds it),
# that has none: what carries its timestamp under it, as restores matched it until now
_BACKFILL = """
WITH roots AS (
    SELECT 'workspace' AS kind, w.id, w.subscription_id, w.workspace_name AS name,
           w.deleted_by, w.deleted_at, w.id AS workspace_id
    FROM workspaces w WHERE w.deleted_at IS NOT NULL
    UNION ALL
    SELECT 'folder', f.id, f.subscription_id, f.folder_name, f.deleted_by, f.deleted_at,
           f.workspace_id
    FROM folders f
    WHERE f.deleted_at IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM workspaces w
                      WHERE w.id = f.workspace_id AND w.deleted_at = f.deleted_at)
      AND NOT EXISTS (SELECT 1 FROM folders p
                      WHERE p.id = f.parent_folder_id AND p.deleted_at = f.deleted_at)
), sets AS (
    SELECT r.*,
        ARRAY(SELECT c.id FROM folders c
              WHERE c.deleted_at = r.deleted_at AND c.id <> r.id
                AND CASE WHEN r.kind = 'workspace' THEN c.workspace_id = r.id
                         ELSE c.ancestor_ids @> ARRAY[r.id] END) AS folder_ids
    FROM roots r
    WHERE NOT EXISTS (SELECT 1 FROM deletion_logs l
                      WHERE l.resource_id = r.id AND l.deleted_at = r.deleted_at)
), with_jobs AS (
    SELECT s.*,
        ARRAY(SELECT j.id FROM jobs j
              WHERE j.deleted_at = s.deleted_at
                AND (j.folder_id = ANY(s.folder_ids) OR j.folder_id = s.id)) AS job_ids
    FROM sets s
), full_sets AS (
    SELECT j.*,
        ARRAY(SELECT wf.id FROM workflows wf
              WHERE wf.deleted_at = j.deleted_at AND wf.job_id = ANY(j.job_ids)) AS workflow_ids
    FROM with_jobs j
)
INSERT INTO deletion_logs (id, subscription_id, resource_type, resource_id, resource_name,
                           cascaded_counts, cascaded_ids, is_soft_delete, deleted_by,
                           deleted_at, restore_deadline)
SELECT gen_random_uuid(), subscription_id, kind, id, left(name, 300),
       jsonb_build_object('folders', cardinality(folder_ids), 'jobs', cardinality(job_ids),
                          'workflows', cardinality(workflow_ids)),
       jsonb_build_object('folders', to_jsonb(folder_ids::text[]),
                          'jobs', to_jsonb(job_ids::text[]),
                          'workflows', to_jsonb(workflow_ids::text[])),
       true, deleted_by, deleted_at, deleted_at + make_interval(days => :days)
FROM full_sets
"""


def upgrade() -> None:
    op.execute(sa.text(_BACKFILL).bindparams(days=RESTORE_DAYS))
    op.execute(
        sa.text(
            "UPDATE deletion_logs SET restore_deadline = deleted_at + make_interval(days => :days) "
            "WHERE restore_deadline IS NULL AND is_soft_delete"
        ).bindparams(days=RESTORE_DAYS)
    )
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
