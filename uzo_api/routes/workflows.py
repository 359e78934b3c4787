"""/api/jobs/{id}/workflows and /api/workflows/{id}.

The diagram is the ReactFlow document as drawn and comes back as it was sent. Saving
one that does not validate answers 422 listing every error (``errors``, each naming
its node or edge and field), unless ``?draft=true``.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from uzo_api.authz import permission
from uzo_api.deps import ContextDep, ServicesDep, refuse_unknown_query
from uzo_api.errors import problem_responses
from uzo_api.pagination import PageParams
from uzo_api.routes.jobs import IfMatch, NameFilter, set_etag, tagged
from uzo_api.schemas.workflows import (
    WorkflowCreate,
    WorkflowPage,
    WorkflowRead,
    WorkflowSummaryRead,
    WorkflowUpdate,
)

if TYPE_CHECKING:
    from uzo_api.db.models import Workflow

router = APIRouter(tags=["workflows"], dependencies=[Depends(refuse_unknown_query)])

Draft = Annotated[
    bool,
    Query(
        description="Save the diagram although it does not validate yet; the workflow is "
        "then a draft (`is_draft`) and cannot run until it is saved without. Secrets are "
        "refused all the same."
    ),
]


def _workflow(row: Workflow) -> WorkflowRead:
    return WorkflowRead(
        id=row.id,
        name=row.workflow_name,
        description=row.description,
        job_id=row.job_id,
        diagram=row.workflow_diagram,
        is_draft=bool(row.is_draft),
        current_version=row.current_version,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _summary(row: Workflow) -> WorkflowSummaryRead:
    return WorkflowSummaryRead(
        id=row.id,
        name=row.workflow_name,
        description=row.description,
        job_id=row.job_id,
        is_draft=bool(row.is_draft),
        current_version=row.current_version,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@router.get(
    "/api/jobs/{job_id}/workflows",
    responses=problem_responses(404),
    summary="The job's workflows you may read, by name (without their diagrams)",
    openapi_extra=permission("read on workflow (all of them with read on the job)"),
)
def list_workflows(
    job_id: uuid.UUID,
    ctx: ContextDep,
    services: ServicesDep,
    page: PageParams,
    name: NameFilter = None,
) -> WorkflowPage:
    rows = services.workflows.page(ctx, job_id, page, name)
    cursor, link = page.finish([(r.workflow_name, r.id) for r in rows])
    return WorkflowPage(
        items=[_summary(r) for r in rows[: page.limit]], next_cursor=cursor, next=link
    )


@router.post(
    "/api/jobs/{job_id}/workflows",
    status_code=status.HTTP_201_CREATED,
    responses=tagged(201, 403, 404, 409),
    summary="Create a workflow in a job (counts against the plan's workflow limit)",
    openapi_extra=permission("read_write on job"),
)
def create_workflow(
    job_id: uuid.UUID,
    body: WorkflowCreate,
    ctx: ContextDep,
    services: ServicesDep,
    response: Response,
    draft: Draft = False,
) -> WorkflowRead:
    row = services.workflows.create(
        ctx,
        job_id,
        name=body.name,
        description=body.description,
        diagram=body.diagram,
        draft=draft,
    )
    set_etag(response, row.updated_at, f"/api/workflows/{row.id}")
    return _workflow(row)


@router.get(
    "/api/workflows/{workflow_id}",
    responses=tagged(200, 403, 404),
    summary="One workflow, with its diagram as saved",
    openapi_extra=permission("read on workflow"),
)
def get_workflow(
    workflow_id: uuid.UUID, ctx: ContextDep, services: ServicesDep, response: Response
) -> WorkflowRead:
    row = services.workflows.get(ctx, workflow_id)
    set_etag(response, row.updated_at)
    return _workflow(row)


@router.patch(
    "/api/workflows/{workflow_id}",
    responses=tagged(200, 403, 404, 409, 412),
    summary="Change a workflow's name, description or diagram",
    openapi_extra=permission("read_write on workflow"),
    description="Send `If-Match` with the `ETag` you read so that a change made meanwhile "
    "by someone else is not overwritten (412).",
)
def update_workflow(
    workflow_id: uuid.UUID,
    body: WorkflowUpdate,
    ctx: ContextDep,
    services: ServicesDep,
    response: Response,
    if_match: IfMatch = None,
    draft: Draft = False,
) -> WorkflowRead:
    row = services.workflows.update(
        ctx,
        workflow_id,
        body.model_dump(exclude_unset=True),
        draft=draft,
        if_match=if_match,
    )
    set_etag(response, row.updated_at)
    return _workflow(row)


@router.delete(
    "/api/workflows/{workflow_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404),
    summary="Delete a workflow (restorable: see /api/audit/deletions)",
    openapi_extra=permission("admin on workflow"),
)
def delete_workflow(workflow_id: uuid.UUID, ctx: ContextDep, services: ServicesDep) -> Response:
    services.deletions.delete(ctx, "workflow", workflow_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
