"""/api/jobs/{id}/export and /api/folders/{id}/import: a job as a portable bundle."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from uzo_api.authz import permission
from uzo_api.deps import ContextDep, ServicesDep, refuse_unknown_query
from uzo_api.errors import problem_responses
from uzo_api.schemas.jobs import Name
from uzo_api.schemas.transfer import JobExportRead, JobImportRequest, JobImportResult

router = APIRouter(tags=["jobs"], dependencies=[Depends(refuse_unknown_query)])


@router.get(
    "/api/jobs/{job_id}/export",
    responses=problem_responses(403, 404),
    summary="The job as a bundle: its workflows and the connectors they use (by name)",
    openapi_extra=permission("read on job"),
)
def export_job(job_id: uuid.UUID, ctx: ContextDep, services: ServicesDep) -> JobExportRead:
    return services.transfer.export(ctx, job_id)


@router.post(
    "/api/folders/{folder_id}/import",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 404, 409, 422),
    summary="Recreate an exported job in this folder, mapping connectors by name and type",
    openapi_extra=permission("read_write on folder"),
)
def import_job(
    folder_id: uuid.UUID,
    body: JobImportRequest,
    ctx: ContextDep,
    services: ServicesDep,
    name: Annotated[
        Name | None, Query(description="The new job's name (default: the bundle's).")
    ] = None,
) -> JobImportResult:
    return services.transfer.import_bundle(ctx, folder_id, body, name)
