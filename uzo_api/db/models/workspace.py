"""The object tree: workspaces, nested folders, jobs, job packages and workflows.

Everything here is soft-deletable; ``deletion_logs`` records what a delete
cascaded to so that a restore can bring it all back. Names are unique among the live
objects of one parent (partial unique indexes, ``WHERE deleted_at IS NULL``): a deleted
object keeps its name without blocking it, and restoring it refuses a name taken since.
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
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from uzo_api.db.models.base import Base, IdMixin, SoftDelete, TenantScoped, Timestamps

SCHEDULE_TYPES = ("manual", "cron", "trigger")
LIVE = text("deleted_at IS NULL")
DELETED = text("deleted_at IS NOT NULL")


def _deleted_index(table: str) -> Index:
    """Soft-deleted rows by age, for ``uzo db purge``."""
    return Index(f"ix_{table}_deleted_at", "deleted_at", postgresql_where=DELETED)


def empty_diagram() -> dict[str, Any]:
    """A new workflow's ReactFlow document: no nodes, no edges, default viewport."""
    return {"nodes": [], "edges": [], "viewport": {"x": 0, "y": 0, "zoom": 1}}


class Workspace(IdMixin, Timestamps, SoftDelete, TenantScoped, Base):
    """Top of the object tree; permissions granted here inherit downwards."""

    __tablename__ = "workspaces"
    __table_args__ = (
        Index(
            "uq_workspaces_live_name",
            "subscription_id",
            "workspace_name",
            unique=True,
            postgresql_where=LIVE,
        ),
        _deleted_index("workspaces"),
        {"info": {"tenant": True}},
    )

    workspace_name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )


class Folder(IdMixin, Timestamps, SoftDelete, TenantScoped, Base):
    """A folder of a workspace; a NULL parent means a top-level folder."""

    __tablename__ = "folders"
    __table_args__ = (
        Index("ix_folders_ancestor_ids_gin", "ancestor_ids", postgresql_using="gin"),
        # a top-level folder's parent is its workspace
        Index(
            "uq_folders_live_name",
            text("coalesce(parent_folder_id, workspace_id)"),
            "folder_name",
            unique=True,
            postgresql_where=LIVE,
        ),
        _deleted_index("folders"),
        {"info": {"tenant": True}},
    )

    folder_name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    parent_folder_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("folders.id", ondelete="CASCADE"), index=True
    )
    #: every folder above this one, nearest last (empty for a top-level folder): one
    #: array lookup finds the grants a folder inherits, and a move checks for cycles
    ancestor_ids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(UUID(as_uuid=True)), server_default=text("'{}'::uuid[]")
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )


class Job(IdMixin, Timestamps, SoftDelete, TenantScoped, Base):
    """A schedulable unit in a folder that holds workflows."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(column("schedule_type").in_(SCHEDULE_TYPES), name="schedule_type"),
        CheckConstraint(
            "schedule_type <> 'cron' OR cron_expression IS NOT NULL", name="cron_expression"
        ),
        Index(
            "ix_jobs_due",
            "next_run_at",
            postgresql_where=text("is_enabled AND deleted_at IS NULL AND next_run_at IS NOT NULL"),
        ),
        Index("uq_jobs_live_name", "folder_id", "job_name", unique=True, postgresql_where=LIVE),
        _deleted_index("jobs"),
        {"info": {"tenant": True}},
    )

    job_name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    folder_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("folders.id", ondelete="CASCADE"), index=True
    )
    schedule_type: Mapped[str] = mapped_column(String(20), default="manual")
    cron_expression: Mapped[str | None] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run_at: Mapped[dt.datetime | None] = mapped_column()
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )


class JobPackage(IdMixin, Timestamps, SoftDelete, TenantScoped, Base):
    """A named, ordered bundle of jobs (members in ``jobpackage_jobs``)."""

    __tablename__ = "jobpackages"
    __table_args__ = (
        Index(
            "uq_jobpackages_live_name",
            "subscription_id",
            "package_name",
            unique=True,
            postgresql_where=LIVE,
        ),
        _deleted_index("jobpackages"),
        {"info": {"tenant": True}},
    )

    package_name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )


class JobPackageJob(IdMixin, TenantScoped, Base):
    """A job in a job package, at a position (0-based order of the package)."""

    __tablename__ = "jobpackage_jobs"
    __table_args__ = (
        UniqueConstraint("jobpackage_id", "job_id"),
        {"info": {"tenant": True}},
    )

    jobpackage_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("jobpackages.id", ondelete="CASCADE")
    )
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Workflow(IdMixin, Timestamps, SoftDelete, TenantScoped, Base):
    """A workflow of a job; ``workflow_diagram`` is the ReactFlow document.

    ``current_version`` is the number of the latest saved version (0 before the
    first one). A checked-out workflow is editable only by ``checked_out_by``. A draft
    (``is_draft``) holds a diagram that did not have to validate; it does not run.
    """

    __tablename__ = "workflows"
    __table_args__ = (
        Index("ix_workflows_workflow_diagram_gin", "workflow_diagram", postgresql_using="gin"),
        Index(
            "uq_workflows_live_name", "job_id", "workflow_name", unique=True, postgresql_where=LIVE
        ),
        _deleted_index("workflows"),
        {"info": {"tenant": True}},
    )

    workflow_name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    workflow_diagram: Mapped[dict[str, Any]] = mapped_column(default=empty_diagram)
    current_version: Mapped[int] = mapped_column(Integer, default=0)
    is_checked_out: Mapped[bool] = mapped_column(Boolean, default=False)
    checked_out_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    checked_out_at: Mapped[dt.datetime | None] = mapped_column()
    #: saved with ``?draft=true``: the diagram need not validate, and it cannot run until
    #: it is saved without; NULL (rows older than the column) reads as not a draft
    is_draft: Mapped[bool | None] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
