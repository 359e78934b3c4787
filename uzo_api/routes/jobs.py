"""/api/folders/{id}/jobs, /api/jobs/{id} and /api/jobpackages.

Every read and write of one object answers its version in ``ETag``; a PATCH (or PUT of
a package's jobs) with ``If-Match`` naming an older version is refused with 412.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response, status

from uzo_api.authz import permission
from uzo_api.deps import ContextDep, ServicesDep, refuse_unknown_query
from uzo_api.errors import problem_responses
from uzo_api.pagination import PageParams
from uzo_api.schemas.jobs import (
    JobCreate,
    JobPackageCreate,
    JobPackageJobsUpdate,
    JobPackagePage,
    JobPackageRead,
    JobPackageUpdate,
    JobPage,
    JobRead,
    JobUpdate,
)
from uzo_api.services.jobs import entity_tag

if TYPE_CHECKING:
    import datetime as dt

    from uzo_api.db.models import Job
    from uzo_api.services.jobs import PackageView

router = APIRouter(tags=["jobs"], dependencies=[Depends(refuse_unknown_query)])

NameFilter = Annotated[
    str | None,
    Query(max_length=200, description="Only names containing this text (case-insensitive)."),
]
IfMatch = Annotated[
    str | None,
    Header(
        max_length=1000,
        description="The `ETag` you read: the change is refused (412) if the object has "
        "changed since.",
    ),
]


def tagged(status_code: int, *errors: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route answering one object: its ``ETag``, and the problems."""
    etag = {"description": "The object's version, for `If-Match`.", "schema": {"type": "string"}}
    return {status_code: {"headers": {"ETag": etag}}, **problem_responses(*errors)}


def set_etag(response: Response, updated_at: dt.datetime, location: str | None = None) -> None:
    response.headers["ETag"] = entity_tag(updated_at)
    if location is not None:
        response.headers["Location"] = location


def _job(row: Job) -> JobRead:
    return JobRead(
        id=row.id,
        name=row.job_name,
        description=row.description,
        folder_id=row.folder_id,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _package(view: PackageView) -> JobPackageRead:
    row = view.row
    return JobPackageRead(
        id=row.id,
        name=row.package_name,
        description=row.description,
        job_ids=view.job_ids,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


# -- jobs -------------------------------------------------------------------------------------


@router.get(
    "/api/folders/{folder_id}/jobs",
    responses=problem_responses(404),
    summary="The folder's jobs you may read, by name",
    openapi_extra=permission("read on job (all of them with read on the folder)"),
)
def list_jobs(
    folder_id: uuid.UUID,
    ctx: ContextDep,
    services: ServicesDep,
    page: PageParams,
    name: NameFilter = None,
) -> JobPage:
    rows = services.jobs.page(ctx, folder_id, page, name)
    cursor, link = page.finish([(r.job_name, r.id) for r in rows])
    return JobPage(items=[_job(r) for r in rows[: page.limit]], next_cursor=cursor, next=link)


@router.post(
    "/api/folders/{folder_id}/jobs",
    status_code=status.HTTP_201_CREATED,
    responses=tagged(201, 403, 404, 409),
    summary="Create a job in a folder",
    openapi_extra=permission("read_write on folder"),
)
def create_job(
    folder_id: uuid.UUID,
    body: JobCreate,
    ctx: ContextDep,
    services: ServicesDep,
    response: Response,
) -> JobRead:
    row = services.jobs.create(ctx, folder_id, name=body.name, description=body.description)
    set_etag(response, row.updated_at, f"/api/jobs/{row.id}")
    return _job(row)


@router.get(
    "/api/jobs/{job_id}",
    responses=tagged(200, 403, 404),
    summary="One job",
    openapi_extra=permission("read on job"),
)
def get_job(
    job_id: uuid.UUID, ctx: ContextDep, services: ServicesDep, response: Response
) -> JobRead:
    row = services.jobs.get(ctx, job_id)
    set_etag(response, row.updated_at)
    return _job(row)


@router.patch(
    "/api/jobs/{job_id}",
    responses=tagged(200, 403, 404, 409, 412),
    summary="Rename a job or change its description",
    openapi_extra=permission("read_write on job"),
)
def update_job(
    job_id: uuid.UUID,
    body: JobUpdate,
    ctx: ContextDep,
    services: ServicesDep,
    response: Response,
    if_match: IfMatch = None,
) -> JobRead:
    row = services.jobs.update(ctx, job_id, body.model_dump(exclude_unset=True), if_match=if_match)
    set_etag(response, row.updated_at)
    return _job(row)


@router.delete(
    "/api/jobs/{job_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404),
    summary="Delete a job and its workflows (restorable: see /api/audit/deletions)",
    openapi_extra=permission("admin on job"),
)
def delete_job(job_id: uuid.UUID, ctx: ContextDep, services: ServicesDep) -> Response:
    services.deletions.delete(ctx, "job", job_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- job packages -----------------------------------------------------------------------------


@router.get(
    "/api/jobpackages",
    summary="The job packages you may read, by name",
    openapi_extra=permission("read on jobpackage (listed only where held)"),
)
def list_job_packages(
    ctx: ContextDep, services: ServicesDep, page: PageParams, name: NameFilter = None
) -> JobPackagePage:
    views = services.jobpackages.page(ctx, page, name)
    cursor, link = page.finish([(v.row.package_name, v.row.id) for v in views])
    return JobPackagePage(
        items=[_package(v) for v in views[: page.limit]], next_cursor=cursor, next=link
    )


@router.post(
    "/api/jobpackages",
    status_code=status.HTTP_201_CREATED,
    responses=tagged(201, 403, 409),
    summary="Create a job package (an ordered set of jobs)",
    openapi_extra=permission("read_write on every jobpackage (the owner, or a role)"),
)
def create_job_package(
    body: JobPackageCreate, ctx: ContextDep, services: ServicesDep, response: Response
) -> JobPackageRead:
    view = services.jobpackages.create(ctx, name=body.name, description=body.description)
    set_etag(response, view.row.updated_at, f"/api/jobpackages/{view.row.id}")
    return _package(view)


@router.get(
    "/api/jobpackages/{package_id}",
    responses=tagged(200, 403, 404),
    summary="One job package, with its jobs in order",
    openapi_extra=permission("read on jobpackage"),
)
def get_job_package(
    package_id: uuid.UUID, ctx: ContextDep, services: ServicesDep, response: Response
) -> JobPackageRead:
    view = services.jobpackages.get(ctx, package_id)
    set_etag(response, view.row.updated_at)
    return _package(view)


@router.patch(
    "/api/jobpackages/{package_id}",
    responses=tagged(200, 403, 404, 409, 412),
    summary="Rename a job package or change its description",
    openapi_extra=permission("read_write on jobpackage"),
)
def update_job_package(
    package_id: uuid.UUID,
    body: JobPackageUpdate,
    ctx: ContextDep,
    services: ServicesDep,
    response: Response,
    if_match: IfMatch = None,
) -> JobPackageRead:
    view = services.jobpackages.update(
        ctx, package_id, body.model_dump(exclude_unset=True), if_match=if_match
    )
    set_etag(response, view.row.updated_at)
    return _package(view)


@router.put(
    "/api/jobpackages/{package_id}/jobs",
    responses=tagged(200, 403, 404, 412),
    summary="Set the package's jobs, in order",
    openapi_extra=permission("read_write on jobpackage, and read on each job"),
)
def set_job_package_jobs(
    package_id: uuid.UUID,
    body: JobPackageJobsUpdate,
    ctx: ContextDep,
    services: ServicesDep,
    response: Response,
    if_match: IfMatch = None,
) -> JobPackageRead:
    view = services.jobpackages.set_jobs(ctx, package_id, body.job_ids, if_match=if_match)
    set_etag(response, view.row.updated_at)
    return _package(view)


@router.delete(
    "/api/jobpackages/{package_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404),
    summary="Delete a job package (its jobs stay; restorable: see /api/audit/deletions)",
    openapi_extra=permission("admin on jobpackage"),
)
def delete_job_package(package_id: uuid.UUID, ctx: ContextDep, services: ServicesDep) -> Response:
    services.deletions.delete(ctx, "jobpackage", package_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
