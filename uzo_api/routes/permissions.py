"""/api/permissions: grants on one object, and the check of who may do what on it."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from uzo_api.authz import Level, ObjectType, permission
from uzo_api.deps import ContextDep, refuse_unknown_query
from uzo_api.errors import problem_responses
from uzo_api.pagination import PageParams
from uzo_api.schemas.permissions import (
    PermissionCheckResult,
    PermissionCreate,
    PermissionPage,
    PermissionRead,
)
from uzo_api.services.permissions import PermissionService

if TYPE_CHECKING:
    from uzo_api.db.models import ObjectPermission

router = APIRouter(tags=["permissions"], dependencies=[Depends(refuse_unknown_query)])
service = PermissionService()
ObjectTypeQuery = Annotated[ObjectType, Query(description="The type of the object.")]
ObjectIdQuery = Annotated[uuid.UUID, Query(description="The object's id.")]


def _out(grant: ObjectPermission) -> PermissionRead:
    return PermissionRead(
        id=grant.id,
        object_type=grant.object_type,
        object_id=grant.object_id,
        user_id=grant.user_id,
        group_id=grant.group_id,
        level=grant.permission_level,
        granted_by=grant.granted_by,
        created_at=grant.created_at,
        updated_at=grant.updated_at,
    )


@router.post(
    "/api/permissions",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": PermissionRead, "description": "An existing grant's level was changed"},
        **problem_responses(403, 404),
    },
    summary="Grant a level on an object to a user or a group (again: change the level)",
    description="Needs admin on the object; granting `owner`, or changing an owner grant, "
    "needs owner on it. A grant to the same user or group on the same object is updated "
    "(200) rather than added (201). The object, user and group must be of your "
    "subscription (404 otherwise).",
    openapi_extra=permission("admin on the object (owner to grant owner)"),
)
def grant_permission(body: PermissionCreate, ctx: ContextDep, response: Response) -> PermissionRead:
    grant, created = service.grant(
        ctx,
        object_type=body.object_type,
        object_id=body.object_id,
        user_id=body.user_id,
        group_id=body.group_id,
        level=body.level,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return _out(grant)


@router.get(
    "/api/permissions",
    responses=problem_responses(403, 404),
    summary="The grants on one object, oldest first",
    description="Only the object's own grants; inherited access comes from the grants of "
    "the objects above it, and roles.",
    openapi_extra=permission("admin on the object"),
)
def list_permissions(
    object_type: ObjectTypeQuery, object_id: ObjectIdQuery, ctx: ContextDep, page: PageParams
) -> PermissionPage:
    rows = service.page(ctx, object_type, object_id, page)
    cursor, link = page.finish([(g.created_at, g.id) for g in rows])
    return PermissionPage(
        items=[_out(g) for g in rows[: page.limit]], next_cursor=cursor, next=link
    )


@router.get(
    "/api/permissions/check",
    responses=problem_responses(403, 404),
    summary="Your effective level on an object (or a user's), and the rule that gave it",
    description="Answers with the same decision every route uses. Checking another user "
    "(`user_id`) needs admin on the object.",
    openapi_extra=permission("authenticated (admin on the object for another user)"),
)
def check_permission(
    object_type: ObjectTypeQuery,
    object_id: ObjectIdQuery,
    ctx: ContextDep,
    level: Annotated[Level, Query(description="The level asked about.")] = "read",
    user_id: Annotated[uuid.UUID | None, Query(description="Whose access; default: yours.")] = None,
) -> PermissionCheckResult:
    result = service.check(ctx, object_type, object_id, user_id)
    decision = result.decision
    return PermissionCheckResult(
        user_id=result.user_id,
        object_type=object_type,
        object_id=object_id,
        needed=level,
        allowed=decision.allows(level),
        level=decision.level,
        source=decision.source,
    )


@router.delete(
    "/api/permissions/{permission_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404),
    summary="Revoke a grant",
    openapi_extra=permission("admin on the object (owner to revoke owner)"),
)
def revoke_permission(permission_id: uuid.UUID, ctx: ContextDep) -> Response:
    service.revoke(ctx, permission_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
