"""Workflow runs, the run of each node, and the Prefect flow runs behind them.

A run is queued by the API and claimed by a worker (``claimed_by``); the worker
keeps ``heartbeat_at`` fresh so that a dead worker's run can be reclaimed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    column,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from uzo_api.db.models.base import Base, IdMixin, TenantScoped, Timestamps

EXECUTION_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
NODE_STATUSES = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "skipped",
    "cancelled",
    "upstream_failed",
)


class WorkflowExecution(IdMixin, TenantScoped, Base):
    """One run of a workflow, from queued to a final status."""

    __tablename__ = "workflow_executions"
    __table_args__ = (
        CheckConstraint(column("status").in_(EXECUTION_STATUSES), name="status"),
        Index("ix_workflow_executions_status_queued_at", "status", "queued_at"),
        Index(
            "ix_workflow_executions_workflow_id_queued_at", "workflow_id", text("queued_at DESC")
        ),
        {"info": {"tenant": True}},
    )

    workflow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    trigger_type: Mapped[str] = mapped_column(String(20), default="manual")
    triggered_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    queued_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    started_at: Mapped[dt.datetime | None] = mapped_column()
    completed_at: Mapped[dt.datetime | None] = mapped_column()
    error: Mapped[dict[str, Any] | None] = mapped_column()
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column()
    cancel_requested_at: Mapped[dt.datetime | None] = mapped_column()
    rows_processed: Mapped[int] = mapped_column(BigInteger, default=0)


class NodeExecution(IdMixin, TenantScoped, Base):
    """The run of one node of a workflow run."""

    __tablename__ = "node_executions"
    __table_args__ = (
        UniqueConstraint("execution_id", "node_id"),
        CheckConstraint(column("status").in_(NODE_STATUSES), name="status"),
        {"info": {"tenant": True}},
    )

    execution_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workflow_executions.id", ondelete="CASCADE")
    )
    node_id: Mapped[str] = mapped_column(String(100))
    node_type: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    rows_in: Mapped[int | None] = mapped_column(BigInteger)
    rows_out: Mapped[int | None] = mapped_column(BigInteger)
    bytes_out: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime | None] = mapped_column()
    completed_at: Mapped[dt.datetime | None] = mapped_column()
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    output_schema: Mapped[dict[str, Any] | None] = mapped_column()
    error: Mapped[dict[str, Any] | None] = mapped_column()


class PrefectFlowRun(IdMixin, Timestamps, TenantScoped, Base):
    """The Prefect flow run that carries a workflow run (when Prefect is used)."""

    __tablename__ = "prefect_flow_runs"

    flow_run_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    workflow_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workflows.id", ondelete="CASCADE"), index=True
    )
    execution_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("workflow_executions.id", ondelete="CASCADE"), index=True
    )
    prefect_state: Mapped[str] = mapped_column(String(40))
    deployment_id: Mapped[uuid.UUID | None] = mapped_column()
