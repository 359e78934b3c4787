"""folders.ancestor_ids: the folders above each folder, for inherited grants and moves

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "folders",
        sa.Column(
            "ancestor_ids",
            postgresql.ARRAY(postgresql.UUID(as_uuid=True)),
            server_default=sa.text("'{}'::uuid[]"),
            nullable=False,
        ),
    )
    # folders that exist already: walk each one's parents (no cycles: there was no move)
    op.execute(
        """
        WITH RECURSIVE chain(id, ancestor, depth) AS (
            SELECT id, parent_folder_id, 1 FROM folders WHERE parent_folder_id IS NOT NULL
            UNION ALL
            SELECT c.id, f.parent_folder_id, c.depth + 1
            FROM chain c JOIN folders f ON f.id = c.ancestor
            WHERE f.parent_folder_id IS NOT NULL
        )
        UPDATE folders SET ancestor_ids = sub.ids
        FROM (
            SELECT id, array_agg(ancestor ORDER BY depth DESC) AS ids FROM chain GROUP BY id
        ) sub
        WHERE folders.id = sub.id
        """
    )
    op.create_index(
        "ix_folders_ancestor_ids_gin", "folders", ["ancestor_ids"], postgresql_using="gin"
    )


def downgrade() -> None:
    op.drop_index("ix_folders_ancestor_ids_gin", table_name="folders")
    op.drop_column("folders", "ancestor_ids")
