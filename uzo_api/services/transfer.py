"""Export a job as a bundle, and import a bundle into a folder (this tenant or another).

A bundle (uzo_api.schemas.transfer.JobExportRead) holds the job, its live workflows with
their latest diagram and published version, and the connectors the diagrams use by
name and type only: no configuration, no secret, nothing of the exporting tenant a
reader of the job could not already see. On import the diagrams are checked like any
save (a bundle is input like any other: it may have been edited by hand), each
connector reference is mapped to the importing tenant's connector of the same name and
type that the caller may read, and a workflow that uses an unmapped one is saved as a
draft with that node's ``connector_id`` cleared, so it cannot run until someone picks a
connector. Everything is created in the request's one transaction: an import that
fails on its tenth workflow leaves nothing behind.
"""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from uzo_api.db.models import Connector, Job, Version, Workflow
from uzo_api.errors import Conflict
from uzo_api.schemas.transfer import (
    ConnectorMappingRead,
    ExportConnectorRead,
    ExportJobRead,
    ExportVersionRead,
    ExportWorkflowRead,
    ImportedWorkflowRead,
    JobExportRead,
    JobImportResult,
)
from uzo_api.services import audit

if TYPE_CHECKING:
    from collections.abc import Iterator

    from uzo_api.context import RequestContext
    from uzo_api.services.connectors import ConnectorService
    from uzo_api.services.jobs import JobService
    from uzo_api.services.versions import VersionService
    from uzo_api.services.workflows import WorkflowService


def connector_refs(diagram: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every node's ``data.config`` that names a connector, with the node's id."""
    for node in diagram.get("nodes") or []:
        if not isinstance(node, dict):
            continue
        data = node.get("data")
        config = data.get("config") if isinstance(data, dict) else None
        if isinstance(config, dict) and isinstance(config.get("connector_id"), str):
            yield str(node.get("id")), config


@dataclass
class _Use:
    ref: ExportConnectorRead
    nodes: list[str] = field(default_factory=list)
    target: uuid.UUID | None = None


class TransferService:
    def __init__(
        self,
        jobs: JobService,
        workflows: WorkflowService,
        versions: VersionService,
        connectors: ConnectorService,
    ) -> None:
        self.jobs = jobs
        self.workflows = workflows
        self.versions = versions
        self.connectors = connectors

    # -- export -------------------------------------------------------------------------------

    def export(self, ctx: RequestContext, job_id: uuid.UUID) -> JobExportRead:
        """The job's bundle: needs read on the job (its workflows inherit it)."""
        job: Job = ctx.authz.require("read", "job", job_id)
        rows = ctx.session.scalars(
            select(Workflow)
            .where(Workflow.job_id == job.id, Workflow.deleted_at.is_(None))
            .order_by(Workflow.workflow_name, Workflow.id)
        ).all()
        used: dict[str, Connector | None] = {}
        for row in rows:
            for _, config in connector_refs(row.workflow_diagram):
                used.setdefault(config["connector_id"], None)
        if used:
            found = ctx.session.scalars(
                select(Connector).where(Connector.id.in_(_uuids(used)))
            ).all()
            used.update({str(c.id): c for c in found})
        audit.record(ctx, "job.export", "job", job.id, {"workflows": len(rows)})
        return JobExportRead(
            exported_at=dt.datetime.now(dt.UTC),
            job=ExportJobRead(name=job.job_name, description=job.description),
            workflows=[
                ExportWorkflowRead(
                    name=row.workflow_name,
                    description=row.description,
                    is_draft=bool(row.is_draft),
                    diagram=row.workflow_diagram,
                    published=self._published(ctx, row),
                )
                for row in rows
            ],
            connectors=[
                ExportConnectorRead(ref=ref, name=c.connector_name, connector_type=c.connector_type)
                for ref, c in sorted(used.items())
                if c is not None
            ],
        )

    @staticmethod
    def _published(ctx: RequestContext, row: Workflow) -> ExportVersionRead | None:
        version = ctx.session.scalars(
            select(Version)
            .where(
                Version.resource_type == "workflow",
                Version.resource_id == row.id,
                Version.status == "published",
            )
            .order_by(Version.version_number.desc())
            .limit(1)
        ).first()
        if version is None:
            return None
        data = version.version_data or {}
        diagram = data.get("diagram", data) if isinstance(data, dict) else {}
        return ExportVersionRead(version_number=version.version_number, diagram=diagram)

    # -- import -------------------------------------------------------------------------------

    def import_bundle(
        self, ctx: RequestContext, folder_id: uuid.UUID, bundle: JobExportRead, name: str | None
    ) -> JobImportResult:
        """Recreate the bundle's job in the folder: needs read_write on the folder, and a
        free workflow slot in the plan for each workflow."""
        ctx.authz.require("read_write", "folder", folder_id)
        job_name = name or bundle.job.name
        taken = ctx.session.scalar(
            select(Job.id).where(
                Job.folder_id == folder_id, Job.job_name == job_name, Job.deleted_at.is_(None)
            )
        )
        if taken is not None:
            raise Conflict(
                f"this folder already has a job named {job_name!r}: import under another "
                "name (`?name=`)",
                field="name",
            )
        uses = self._map_connectors(ctx, bundle)
        job = self.jobs.create(ctx, folder_id, name=job_name, description=bundle.job.description)
        imported = [self._import_workflow(ctx, job.id, spec, uses) for spec in bundle.workflows]
        mappings = [
            ConnectorMappingRead(
                ref=use.ref.ref,
                name=use.ref.name,
                connector_type=use.ref.connector_type,
                connector_id=use.target,
                nodes=use.nodes,
            )
            for use in uses.values()
        ]
        unmapped_count = sum(1 for m in mappings if m.connector_id is None and m.nodes)
        audit.record(
            ctx,
            "job.import",
            "job",
            job.id,
            {
                "workflows": len(imported),
                "connectors_mapped": sum(1 for m in mappings if m.connector_id is not None),
                "connectors_unmapped": unmapped_count,
            },
        )
        return JobImportResult(
            job_id=job.id,
            job_name=job.job_name,
            workflows=imported,
            connectors=mappings,
            unmapped_connectors=unmapped_count,
        )

    def _import_workflow(
        self,
        ctx: RequestContext,
        job_id: uuid.UUID,
        spec: ExportWorkflowRead,
        uses: dict[str, _Use],
    ) -> ImportedWorkflowRead:
        """The workflow, its published diagram first (version 1, published when the caller
        may publish: admin on it), then its latest one as the next version if it differs."""
        latest, latest_unmapped = _remap(spec.name, spec.diagram, uses)
        draft = spec.is_draft or latest_unmapped
        published: int | None = None
        if spec.published is None:
            row = self.workflows.create(
                ctx, job_id, name=spec.name, description=spec.description,
                diagram=latest, draft=draft,
            )  # fmt: skip
        else:
            first, first_unmapped = _remap(spec.name, spec.published.diagram, uses, count=False)
            row = self.workflows.create(
                ctx, job_id, name=spec.name, description=spec.description,
                diagram=first, draft=first_unmapped,
            )  # fmt: skip
            if not first_unmapped and ctx.authz.decide("workflow", row).allows("admin"):
                version = self.versions.by_number(ctx, row.id, row.current_version)
                published = self.versions.publish(ctx, version.id).version_number
            if latest != first or draft != first_unmapped:
                row = self.workflows.update(ctx, row.id, {"diagram": latest}, draft=draft)
        return ImportedWorkflowRead(
            id=row.id, name=row.workflow_name, is_draft=draft, published_version=published
        )

    def _map_connectors(self, ctx: RequestContext, bundle: JobExportRead) -> dict[str, _Use]:
        """Each reference, with this tenant's readable connector of its name and type."""
        uses = {ref.ref: _Use(ref) for ref in bundle.connectors}
        if not uses:
            return uses
        names = {use.ref.name for use in uses.values()}
        candidates = ctx.session.scalars(
            select(Connector).where(
                Connector.connector_name.in_(names), self.connectors.readable(ctx)
            )
        ).all()
        by_name = {(c.connector_name, c.connector_type): c.id for c in candidates}
        for use in uses.values():
            use.target = by_name.get((use.ref.name, use.ref.connector_type))
        return uses


def _remap(
    workflow: str, diagram: dict[str, Any], uses: dict[str, _Use], *, count: bool = True
) -> tuple[dict[str, Any], bool]:
    """The diagram with connector ids of this tenant; True if one could not be mapped.
    ``count``: record each use in ``uses`` (once per workflow: its latest diagram)."""
    document = copy.deepcopy(diagram)
    unmapped = False
    for node_id, config in connector_refs(document):
        use = uses.get(config["connector_id"])
        if use is not None and count:
            use.nodes.append(f"{workflow}/{node_id}")
        if use is None or use.target is None:
            config["connector_id"] = None  # not this tenant's: cleared, the node needs one
            unmapped = True
        else:
            config["connector_id"] = str(use.target)
    return document, unmapped


def _uuids(refs: dict[str, Any]) -> list[uuid.UUID]:
    out = []
    for ref in refs:
        try:
            out.append(uuid.UUID(ref))
        except ValueError:
            continue  # not an id: it names no connector
    return out
