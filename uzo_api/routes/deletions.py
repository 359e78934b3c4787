"""/api/audit/deletions and /api/deletions/{id}: the deletion log, restore, hard delete.

Deleting stays on each resource (``DELETE /api/workspaces/{id}``, folders, jobs,
workflows, job packages): it is a soft delete that writes one entry here. Restoring
one entry brings back exactly what it took; deleting an entry (``DELETE
/api/deletions/{id}``) is the hard delete: it removes the soft-deleted object and
everything under it for good.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query

from uzo_api.authz import permission
from uzo_api.deps import ContextDep, ServicesDep, refuse_unknown_query
from uzo_api.errors import InvalidInput, problem_responses
from uzo_api.pagination import PageParams
from uzo_api.schemas.deletions import Action, DeletionPage, DeletionRead, ResourceType
from uzo_api.services.deletions import DeletionFilters, status_of

if TYPE_CHECKING:
    from uzo_api.db.models import DeletionLog

router = APIRouter(tags=["deletions"], dependencies=[Depends(refuse_unknown_query)])


def deletion_read(row: DeletionLog, now: dt.datetime | None = None) -> DeletionRead:
    ids = row.cascaded_ids or {}
    return DeletionRead(
        id=row.id,
        subscription_id=row.subscription_id,
        resource_type=row.resource_type,
        resource_id=row.resource_id,
        name=row.resource_name,
        status=status_of(row, now or dt.datetime.now(dt.UTC)),
        cascaded_counts={k: int(v) for k, v in (row.cascaded_counts or {}).items()},
        cascaded_ids={k: [uuid.UUID(str(i)) for i in v] for k, v in ids.items()},
        deleted_by=row.deleted_by,
        deleted_at=row.deleted_at,
        restore_deadline=row.restore_deadline,
        restored_at=row.restored_at,
        restored_by=row.restored_by,
        purged_at=row.purged_at,
        purged_by=row.purged_by,
    )


@router.get(
    "/api/audit/deletions",
    responses=problem_responses(403, 404),
    summary="The deletion log, newest first",
    openapi_extra=permission(
        "authenticated: the subscription's owner reads all of it; a member the deletions "
        "they made and those of the types a role gives them admin on; all_tenants: "
        "platform admin"
    ),
    description="Filters combine (AND). `action`: `soft` (still deleted, restorable or "
    "expired), `restored`, `hard` (removed for good). `from`/`to` bound `deleted_at` "
    "(from inclusive, to exclusive). A `resource_id` the tenant never had is a 404.",
)
def list_deletions(
    ctx: ContextDep,
    services: ServicesDep,
    page: PageParams,
    user: Annotated[uuid.UUID | None, Query(description="Who deleted (`deleted_by`).")] = None,
    resource_type: ResourceType | None = None,
    resource_id: uuid.UUID | None = None,
    action: Action | None = None,
    since: Annotated[
        dt.datetime | None, Query(alias="from", description="Deleted at or after this time.")
    ] = None,
    until: Annotated[
        dt.datetime | None, Query(alias="to", description="Deleted before this time.")
    ] = None,
    all_tenants: Annotated[
        bool, Query(description="Every tenant's deletions (platform admins only).")
    ] = False,
) -> DeletionPage:
    for name, value in (("from", since), ("to", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput("give a time zone (`Z` or an offset)", field=f"query.{name}")
    filters = DeletionFilters(
        user_id=user,
        resource_type=resource_type,
        resource_id=resource_id,
        action=action,
        since=since,
        until=until,
    )
    rows = services.deletions.page(ctx, page, filters, all_tenants=all_tenants)
    cursor, link = page.finish([(r.deleted_at, r.id) for r in rows])
    now = dt.datetime.now(dt.UTC)
    return DeletionPage(
        items=[deletion_read(r, now) for r in rows[: page.limit]], next_cursor=cursor, next=link
    )


@router.post(
    "/api/deletions/{deletion_id}/restore",
    responses=problem_responses(403, 404, 409, 410),
    summary="Restore what one deletion took, exactly",
    openapi_extra=permission("admin on the deleted object"),
    description="Objects deleted on their own before stay deleted. 409 when it was "
    "restored already, when its parent is deleted (restore that first) or when a live "
    "object took its name meanwhile (both named); 410 past `restore_deadline` or once "
    "purged; 403 `plan-limit` when the workflows it brings back do not fit the plan. "
    "Nothing is restored unless everything is.",
)
def restore_deletion(
    deletion_id: uuid.UUID, ctx: ContextDep, services: ServicesDep
) -> DeletionRead:
    return deletion_read(services.deletions.restore(ctx, deletion_id))


@router.delete(
    "/api/deletions/{deletion_id}",
    responses=problem_responses(403, 404, 409, 410),
    summary="Hard delete: remove a soft-deleted object and everything under it for good",
    openapi_extra=permission("admin on the deleted object"),
    description="Also removes the grants on them, the versions of their workflows, their "
    "runs, and the connectors bound to a removed workspace. 409 if it was restored "
    "(delete it again first); 410 if it is gone already. Audited (`<type>.purge`).",
)
def purge_deletion(deletion_id: uuid.UUID, ctx: ContextDep, services: ServicesDep) -> DeletionRead:
    return deletion_read(services.deletions.purge(ctx, deletion_id))
