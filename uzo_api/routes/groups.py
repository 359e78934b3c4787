"""/api/groups (and their members) and /api/roles (their permissions and assignments)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Response, status

from uzo_api.authz import permission
from uzo_api.deps import ContextDep, refuse_unknown_query
from uzo_api.errors import problem_responses
from uzo_api.pagination import PageParams
from uzo_api.schemas.permissions import (
    RoleAssignmentCreate,
    RoleAssignmentPage,
    RoleAssignmentRead,
    RoleCreate,
    RolePage,
    RolePermissionRead,
    RolePermissionsUpdate,
    RoleRead,
    RoleUpdate,
)
from uzo_api.schemas.users import (
    GroupCreate,
    GroupMemberCreate,
    GroupMemberPage,
    GroupMemberRead,
    GroupPage,
    GroupRead,
    GroupUpdate,
)
from uzo_api.services.groups import (
    Assignment,
    GroupService,
    Member,
    RoleService,
    RoleView,
)

if TYPE_CHECKING:
    from uzo_api.db.models import Group

router = APIRouter(dependencies=[Depends(refuse_unknown_query)])
MEMBER = "authenticated (every member)"
GROUPS = "admin on every group (the owner, or a role)"
ROLES = "admin on every role (the owner, or a role)"
groups, roles = GroupService(), RoleService()


def _group(row: Group) -> GroupRead:
    return GroupRead(
        id=row.id,
        name=row.group_name,
        description=row.description,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _member(m: Member) -> GroupMemberRead:
    return GroupMemberRead(
        group_id=m.membership.group_id,
        user_id=m.user.id,
        username=m.user.username,
        email=m.user.email,
        full_name=m.user.full_name,
        added_by=m.membership.added_by,
        added_at=m.membership.created_at,
    )


def _role(view: RoleView) -> RoleRead:
    row = view.row
    return RoleRead(
        id=row.id,
        name=row.role_name,
        description=row.description,
        is_system=row.is_system,
        permissions=[RolePermissionRead(resource_type=t, level=lv) for t, lv in view.permissions],
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _assignment(a: Assignment) -> RoleAssignmentRead:
    return RoleAssignmentRead(
        id=a.id,
        role_id=a.role_id,
        user_id=a.user_id,
        group_id=a.group_id,
        granted_by=a.granted_by,
        created_at=a.created_at,
    )


# -- groups ------------------------------------------------------------------------------------


@router.get(
    "/api/groups",
    tags=["groups"],
    summary="The subscription's groups, by name",
    openapi_extra=permission(MEMBER),
)
def list_groups(ctx: ContextDep, page: PageParams) -> GroupPage:
    rows = groups.page(ctx, page)
    cursor, link = page.finish([(g.group_name, g.id) for g in rows])
    return GroupPage(items=[_group(g) for g in rows[: page.limit]], next_cursor=cursor, next=link)


@router.post(
    "/api/groups",
    tags=["groups"],
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 409),
    summary="Create a group",
    openapi_extra=permission(GROUPS),
)
def create_group(body: GroupCreate, ctx: ContextDep) -> GroupRead:
    return _group(groups.create(ctx, name=body.name, description=body.description))


@router.get(
    "/api/groups/{group_id}",
    tags=["groups"],
    responses=problem_responses(404),
    summary="One group",
    openapi_extra=permission(MEMBER),
)
def get_group(group_id: uuid.UUID, ctx: ContextDep) -> GroupRead:
    return _group(groups.get(ctx, group_id))


@router.patch(
    "/api/groups/{group_id}",
    tags=["groups"],
    responses=problem_responses(403, 404, 409),
    summary="Rename a group or change its description",
    openapi_extra=permission(GROUPS),
)
def update_group(group_id: uuid.UUID, body: GroupUpdate, ctx: ContextDep) -> GroupRead:
    return _group(groups.update(ctx, group_id, body.changes()))


@router.delete(
    "/api/groups/{group_id}",
    tags=["groups"],
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404),
    summary="Delete a group (its memberships, roles and grants go with it)",
    openapi_extra=permission(GROUPS),
)
def delete_group(group_id: uuid.UUID, ctx: ContextDep) -> Response:
    groups.delete(ctx, group_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/api/groups/{group_id}/members",
    tags=["groups"],
    responses=problem_responses(404),
    summary="The group's members, by username",
    openapi_extra=permission(MEMBER),
)
def list_group_members(group_id: uuid.UUID, ctx: ContextDep, page: PageParams) -> GroupMemberPage:
    rows = groups.members(ctx, group_id, page)
    cursor, link = page.finish([(m.user.username, m.user.id) for m in rows])
    return GroupMemberPage(
        items=[_member(m) for m in rows[: page.limit]], next_cursor=cursor, next=link
    )


@router.post(
    "/api/groups/{group_id}/members",
    tags=["groups"],
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 404, 409),
    summary="Add a user to the group",
    description="A caller who is not the owner may add members only to a group whose roles "
    "grant levels they hold themselves (403 otherwise).",
    openapi_extra=permission(GROUPS),
)
def add_group_member(
    group_id: uuid.UUID, body: GroupMemberCreate, ctx: ContextDep
) -> GroupMemberRead:
    return _member(groups.add_member(ctx, group_id, body.user_id))


@router.delete(
    "/api/groups/{group_id}/members/{user_id}",
    tags=["groups"],
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404),
    summary="Remove a user from the group",
    openapi_extra=permission(GROUPS),
)
def remove_group_member(group_id: uuid.UUID, user_id: uuid.UUID, ctx: ContextDep) -> Response:
    groups.remove_member(ctx, group_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- roles -------------------------------------------------------------------------------------


@router.get(
    "/api/roles",
    tags=["permissions"],
    summary="The subscription's roles, by name",
    openapi_extra=permission(MEMBER),
)
def list_roles(ctx: ContextDep, page: PageParams) -> RolePage:
    views = roles.page(ctx, page)
    cursor, link = page.finish([(v.row.role_name, v.row.id) for v in views])
    return RolePage(items=[_role(v) for v in views[: page.limit]], next_cursor=cursor, next=link)


@router.post(
    "/api/roles",
    tags=["permissions"],
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 409),
    summary="Create a role, optionally with its permissions",
    description="A caller who is not the owner may only put into a role levels they hold "
    "themselves through their roles (403 otherwise).",
    openapi_extra=permission(ROLES),
)
def create_role(body: RoleCreate, ctx: ContextDep) -> RoleRead:
    return _role(
        roles.create(
            ctx,
            name=body.name,
            description=body.description,
            permissions=[(p.resource_type, p.level) for p in body.permissions],
        )
    )


@router.get(
    "/api/roles/{role_id}",
    tags=["permissions"],
    responses=problem_responses(404),
    summary="One role, with its permissions",
    openapi_extra=permission(MEMBER),
)
def get_role(role_id: uuid.UUID, ctx: ContextDep) -> RoleRead:
    return _role(roles.get(ctx, role_id))


@router.patch(
    "/api/roles/{role_id}",
    tags=["permissions"],
    responses=problem_responses(403, 404, 409),
    summary="Rename a role or change its description",
    openapi_extra=permission(ROLES),
)
def update_role(role_id: uuid.UUID, body: RoleUpdate, ctx: ContextDep) -> RoleRead:
    return _role(roles.update(ctx, role_id, body.changes()))


@router.delete(
    "/api/roles/{role_id}",
    tags=["permissions"],
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404, 409),
    summary="Delete a role (its permissions and assignments go with it)",
    openapi_extra=permission(ROLES),
)
def delete_role(role_id: uuid.UUID, ctx: ContextDep) -> Response:
    roles.delete(ctx, role_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(
    "/api/roles/{role_id}/permissions",
    tags=["permissions"],
    responses=problem_responses(403, 404, 409),
    summary="Replace the role's permissions (a level per resource type)",
    openapi_extra=permission(ROLES),
)
def set_role_permissions(
    role_id: uuid.UUID, body: RolePermissionsUpdate, ctx: ContextDep
) -> RoleRead:
    wanted = [(p.resource_type, p.level) for p in body.permissions]
    return _role(roles.set_permissions(ctx, role_id, wanted))


@router.get(
    "/api/roles/{role_id}/assignments",
    tags=["permissions"],
    responses=problem_responses(404),
    summary="Who holds the role (users and groups), oldest first",
    openapi_extra=permission(MEMBER),
)
def list_role_assignments(
    role_id: uuid.UUID, ctx: ContextDep, page: PageParams
) -> RoleAssignmentPage:
    rows = roles.assignments(ctx, role_id, page)
    cursor, link = page.finish([(a.created_at, a.id) for a in rows])
    return RoleAssignmentPage(
        items=[_assignment(a) for a in rows[: page.limit]], next_cursor=cursor, next=link
    )


@router.post(
    "/api/roles/{role_id}/assignments",
    tags=["permissions"],
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 404, 409),
    summary="Give the role to a user or a group",
    description="A caller who is not the owner may only assign a role whose levels they "
    "hold themselves (403 otherwise).",
    openapi_extra=permission(ROLES),
)
def create_role_assignment(
    role_id: uuid.UUID, body: RoleAssignmentCreate, ctx: ContextDep
) -> RoleAssignmentRead:
    return _assignment(roles.assign(ctx, role_id, user_id=body.user_id, group_id=body.group_id))


@router.delete(
    "/api/roles/{role_id}/assignments/{assignment_id}",
    tags=["permissions"],
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404),
    summary="Take the role back from a user or a group",
    openapi_extra=permission(ROLES),
)
def delete_role_assignment(
    role_id: uuid.UUID, assignment_id: uuid.UUID, ctx: ContextDep
) -> Response:
    roles.unassign(ctx, role_id, assignment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
