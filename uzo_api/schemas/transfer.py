"""A job as a portable bundle: exported from one folder, imported into another."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from uzo_api.schemas.common import RequestModel, ResponseModel
from uzo_api.schemas.jobs import Description, Name
from uzo_api.schemas.workflows import Diagram

MAX_BUNDLE_WORKFLOWS = 200
MAX_BUNDLE_CONNECTORS = 200
Ref = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class ExportConnectorRead(RequestModel):
    """A connector the workflows use, by name and type: the target tenant's connector of
    the same name and type takes its place on import. No configuration, no secret."""

    ref: Ref = Field(description="The id the diagrams use for it in the bundle.")
    name: Name
    connector_type: Annotated[str, StringConstraints(min_length=1, max_length=80)]


class ExportVersionRead(RequestModel):
    version_number: int = Field(ge=1)
    diagram: Diagram


class ExportWorkflowRead(RequestModel):
    name: Name
    description: Description | None = None
    is_draft: bool = False
    diagram: Diagram = Field(description="The latest saved diagram.")
    published: ExportVersionRead | None = Field(
        default=None, description="The published version, when there is one."
    )


class ExportJobRead(RequestModel):
    name: Name
    description: Description | None = None


class JobExportRead(RequestModel):
    """What `GET /api/jobs/{id}/export` answers and `POST /api/folders/{id}/import` takes."""

    format: Literal["uzo.job"] = "uzo.job"
    format_version: Literal[1] = 1
    exported_at: dt.datetime | None = None
    job: ExportJobRead
    workflows: list[ExportWorkflowRead] = Field(
        default_factory=list, max_length=MAX_BUNDLE_WORKFLOWS
    )
    connectors: list[ExportConnectorRead] = Field(
        default_factory=list, max_length=MAX_BUNDLE_CONNECTORS
    )


class ConnectorMappingRead(ResponseModel):
    ref: str
    name: str
    connector_type: str
    connector_id: uuid.UUID | None = Field(
        description="The importing tenant's connector now used, or null when it has none of "
        "that name and type (or none you may read)."
    )
    nodes: list[str] = Field(description="`workflow name/node id` of every use.")


class ImportedWorkflowRead(ResponseModel):
    id: uuid.UUID
    name: str
    is_draft: bool = Field(
        description="Saved as a draft: it was one, or it uses a connector that is not mapped "
        "(the node's `connector_id` is cleared; pick one and save to make it runnable)."
    )
    published_version: int | None = Field(
        description="The version published from the bundle's published diagram: the "
        "workflow's first version, the latest diagram following as the next. Null when the "
        "bundle had none, it uses an unmapped connector, or you may not publish (admin)."
    )


class JobImportResult(ResponseModel):
    job_id: uuid.UUID
    job_name: str
    workflows: list[ImportedWorkflowRead]
    connectors: list[ConnectorMappingRead]
    unmapped_connectors: int


class JobImportRequest(JobExportRead):
    """The body of `POST /api/folders/{id}/import`: what `GET /api/jobs/{id}/export` gave
    (possibly edited: it is checked like any other input)."""
