"""workflows.is_draft: a diagram saved before it validates, which cannot run

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable with a constant default: PostgreSQL adds it without rewriting the table
    op.add_column(
        "workflows",
        sa.Column("is_draft", sa.Boolean(), server_default=sa.text("false"), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("workflows", "is_draft")
