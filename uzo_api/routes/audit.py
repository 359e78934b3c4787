"""/api/audit: the audit trail, request logs and change history (docs/audit.md)."""

from __future__ import annotations

import datetime as dt  # noqa: TC003 (FastAPI reads the signature at runtime)
import uuid
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query

from uzo_api.authz import permission
from uzo_api.deps import ContextDep, ServicesDep, refuse_unknown_query
from uzo_api.errors import problem_responses
from uzo_api.pagination import PageParams
from uzo_api.schemas.audit import (
    AuditLogPage,
    AuditLogRead,
    ChangePage,
    ChangeRead,
    ServerLogPage,
    ServerLogRead,
)
from uzo_api.services.audit_queries import READ_RULE, AuditQueryService, TimeRange

if TYPE_CHECKING:
    from uzo_api.services.container import Services

router = APIRouter(tags=["audit"], dependencies=[Depends(refuse_unknown_query)])


def _service(services: Services) -> AuditQueryService:
    return AuditQueryService(services.router.control, services.features)


def time_range(
    start: Annotated[
        dt.datetime | None,
        Query(alias="from", description="Only rows at or after this time (ISO 8601)."),
    ] = None,
    end: Annotated[
        dt.datetime | None, Query(alias="to", description="Only rows before this time.")
    ] = None,
) -> TimeRange:
    return TimeRange(start, end)


TimeRangeDep = Annotated[TimeRange, Depends(time_range)]
AllTenants = Annotated[
    bool,
    Query(description="Every tenant's rows (platform admins only; 403 for anyone else)."),
]
Tenant = Annotated[
    uuid.UUID | None, Query(description="Only this subscription's rows (with all_tenants).")
]
UserFilter = Annotated[uuid.UUID | None, Query(description="Only this user's actions.")]
DESCRIPTION = (
    "Newest first; `from`/`to` bound `created_at` (and pick the monthly partitions read). "
    "Needs the `audit_logs` feature (Premium and Enterprise) unless `all_tenants`."
)


@router.get(
    "/api/audit/logs",
    responses=problem_responses(403),
    summary="Audit rows: who changed what, with the request id",
    description=DESCRIPTION,
    openapi_extra=permission(READ_RULE),
)
def list_audit_logs(
    ctx: ContextDep,
    services: ServicesDep,
    page: PageParams,
    when: TimeRangeDep,
    user_id: UserFilter = None,
    resource_type: Annotated[str | None, Query(max_length=50)] = None,
    resource_id: uuid.UUID | None = None,
    action: Annotated[
        str | None, Query(max_length=100, description="e.g. `connector.update`.")
    ] = None,
    subscription_id: Tenant = None,
    all_tenants: AllTenants = False,
) -> AuditLogPage:
    rows = _service(services).logs(
        ctx,
        page,
        when=when,
        user_id=user_id,
        resource_type=resource_type,
        resource_id=resource_id,
        action=action,
        subscription_id=subscription_id,
        all_tenants=all_tenants,
    )
    cursor, link = page.finish([(r.created_at, r.id) for r in rows])
    return AuditLogPage(
        items=[AuditLogRead.model_validate(r) for r in rows[: page.limit]],
        next_cursor=cursor,
        next=link,
    )


@router.get(
    "/api/audit/server",
    responses=problem_responses(403),
    summary="Request logs: method, route, status and duration of each request",
    description=DESCRIPTION + " Rows are written in batches, up to a second after the request.",
    openapi_extra=permission(READ_RULE),
)
def list_server_logs(
    ctx: ContextDep,
    services: ServicesDep,
    page: PageParams,
    when: TimeRangeDep,
    status: Annotated[int | None, Query(ge=100, le=599)] = None,
    method: Annotated[str | None, Query(max_length=10)] = None,
    route: Annotated[
        str | None, Query(max_length=500, description="A route template, e.g. `/api/users`.")
    ] = None,
    user_id: UserFilter = None,
    subscription_id: Tenant = None,
    all_tenants: AllTenants = False,
) -> ServerLogPage:
    rows = _service(services).server(
        ctx,
        page,
        when=when,
        status=status,
        method=method,
        route=route,
        user_id=user_id,
        subscription_id=subscription_id,
        all_tenants=all_tenants,
    )
    cursor, link = page.finish([(r.created_at, r.id) for r in rows])
    return ServerLogPage(
        items=[ServerLogRead.model_validate(r) for r in rows[: page.limit]],
        next_cursor=cursor,
        next=link,
    )


@router.get(
    "/api/audit/changes",
    responses=problem_responses(403),
    summary="Change history: before and after images of changed rows",
    description=DESCRIPTION,
    openapi_extra=permission(READ_RULE),
)
def list_changes(
    ctx: ContextDep,
    services: ServicesDep,
    page: PageParams,
    when: TimeRangeDep,
    table: Annotated[
        str | None, Query(max_length=100, description="A table, e.g. `connectors`.")
    ] = None,
    record_id: uuid.UUID | None = None,
    changed_by: UserFilter = None,
    subscription_id: Tenant = None,
    all_tenants: AllTenants = False,
) -> ChangePage:
    rows = _service(services).changes(
        ctx,
        page,
        when=when,
        table=table,
        record_id=record_id,
        changed_by=changed_by,
        subscription_id=subscription_id,
        all_tenants=all_tenants,
    )
    cursor, link = page.finish([(r.created_at, r.id) for r in rows])
    return ChangePage(
        items=[ChangeRead.model_validate(r) for r in rows[: page.limit]],
        next_cursor=cursor,
        next=link,
    )
