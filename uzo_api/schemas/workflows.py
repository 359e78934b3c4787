"""Workflows: a job's ReactFlow documents, stored as drawn."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator

from uzo_api.pagination import Page
from uzo_api.schemas.common import RequestModel, ResponseModel
from uzo_api.schemas.jobs import Description, Name, not_null

# the document is kept byte for byte as JSON: its keys are not stripped like other strings
Diagram = dict[Annotated[str, StringConstraints(strip_whitespace=False)], Any]

DIAGRAM_DESCRIPTION = (
    "The ReactFlow document `{nodes, edges, viewport}` as `toObject()` exports it, UI "
    "fields included; returned as sent. It must validate (every error is listed at once), "
    "unless saved with `?draft=true`. Secrets do not belong here: a node refers to a saved "
    "connector by `connector_id`."
)


class WorkflowCreate(RequestModel):
    name: Name
    description: Description | None = None
    diagram: Diagram | None = Field(
        default=None, description=DIAGRAM_DESCRIPTION + " Omitted: an empty canvas."
    )


class WorkflowUpdate(RequestModel):
    """Fields left out keep their value; `description: null` clears it."""

    name: Name | None = None
    description: Description | None = None
    diagram: Diagram | None = Field(default=None, description=DIAGRAM_DESCRIPTION)

    _not_null = field_validator("name", "diagram")(not_null)


class WorkflowRead(ResponseModel):
    id: uuid.UUID
    name: str
    description: str | None
    job_id: uuid.UUID
    diagram: dict[str, Any] = Field(description="The document as it was last saved.")
    is_draft: bool = Field(
        description="Saved with `?draft=true`: the diagram need not validate, and the "
        "workflow cannot run until it is saved without."
    )
    current_version: int
    created_by: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime


class WorkflowSummaryRead(ResponseModel):
    """A workflow in a list: everything but its diagram."""

    id: uuid.UUID
    name: str
    description: str | None
    job_id: uuid.UUID
    is_draft: bool
    current_version: int
    created_by: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime


class WorkflowPage(Page[WorkflowSummaryRead]):
    pass
