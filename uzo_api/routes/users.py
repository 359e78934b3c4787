"""/api/users: the people of the caller's subscription."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from uzo_api.authz import permission
from uzo_api.deps import ContextDep, ServicesDep, refuse_unknown_query
from uzo_api.errors import problem_responses
from uzo_api.pagination import PageParams
from uzo_api.schemas.auth import UserRead
from uzo_api.schemas.users import UserCreate, UserCreateResult, UserPage, UserUpdate
from uzo_api.services.users import UserService

if TYPE_CHECKING:
    from uzo_api.services.container import Services

router = APIRouter(tags=["users"], dependencies=[Depends(refuse_unknown_query)])
MANAGE = "admin on every user (the owner, or a role)"


def users(services: Services) -> UserService:
    """Built from the container's shared parts (limits, mailer, settings, background)."""
    auth = services.auth
    return UserService(services.limits, auth.mailer, auth.settings, services.background)


@router.get(
    "/api/users",
    summary="The subscription's users, by username",
    openapi_extra=permission("authenticated (every member)"),
)
def list_users(
    ctx: ContextDep,
    services: ServicesDep,
    page: PageParams,
    name: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="Part of the username or full name."),
    ] = None,
    email: Annotated[
        str | None, Query(min_length=1, max_length=320, description="Part of the email.")
    ] = None,
) -> UserPage:
    rows = users(services).page(ctx, page, name=name, email=email)
    cursor, link = page.finish([(u.username, u.id) for u in rows])
    return UserPage(
        items=[UserRead.model_validate(u) for u in rows[: page.limit]],
        next_cursor=cursor,
        next=link,
    )


@router.post(
    "/api/users",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 409),
    summary="Create a user, or invite one (no password: a set-password link is mailed)",
    description="Counts against the plan's user limit (403 `plan-limit` when reached). "
    "Without `password` the user is invited: a single-use link, valid 72 hours, is mailed "
    "to them and spent with POST /api/auth/reset-password.",
    openapi_extra=permission(MANAGE),
)
def create_user(body: UserCreate, ctx: ContextDep, services: ServicesDep) -> UserCreateResult:
    row = users(services).create(
        ctx,
        email=str(body.email),
        username=body.username,
        full_name=body.full_name,
        password=body.password,
    )
    return UserCreateResult(
        **UserRead.model_validate(row).model_dump(), invitation_sent=body.password is None
    )


@router.get(
    "/api/users/{user_id}",
    responses=problem_responses(404),
    summary="One user",
    openapi_extra=permission("authenticated (every member)"),
)
def get_user(user_id: uuid.UUID, ctx: ContextDep, services: ServicesDep) -> UserRead:
    return UserRead.model_validate(users(services).get(ctx, user_id))


@router.patch(
    "/api/users/{user_id}",
    responses=problem_responses(403, 404, 409),
    summary="Change a user's name, username, activity or ownership",
    description="Only an owner may change `is_subscription_owner` or change an owner. The "
    "last active owner cannot be deactivated or demoted (409).",
    openapi_extra=permission(MANAGE),
)
def update_user(
    user_id: uuid.UUID, body: UserUpdate, ctx: ContextDep, services: ServicesDep
) -> UserRead:
    return UserRead.model_validate(users(services).update(ctx, user_id, body.changes()))


@router.delete(
    "/api/users/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404, 409),
    summary="Delete a user (their sessions and API keys are revoked)",
    description="Soft delete: the user can no longer sign in and no longer counts against "
    "the plan. The last active owner cannot be deleted (409).",
    openapi_extra=permission(MANAGE),
)
def delete_user(user_id: uuid.UUID, ctx: ContextDep, services: ServicesDep) -> Response:
    users(services).delete(ctx, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
