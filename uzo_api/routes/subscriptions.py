"""/api/subscriptions: every tenant, for platform admins (ADR 0013).

``POST /api/subscriptions/upgrade`` (a subscription owner changing their own plan) is
in :mod:`uzo_api.routes.features`.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from uzo_api.authz import permission
from uzo_api.deps import ContextDep, ServicesDep, refuse_unknown_query
from uzo_api.errors import problem_responses
from uzo_api.pagination import PageParams
from uzo_api.schemas.subscriptions import (
    Sort,
    Status,
    SubscriptionCreate,
    SubscriptionPage,
    SubscriptionRead,
    SubscriptionUpdate,
)
from uzo_api.services.subscriptions import sort_key

if TYPE_CHECKING:
    from uzo_api.db.models import Subscription

router = APIRouter(tags=["subscriptions"], dependencies=[Depends(refuse_unknown_query)])
ADMIN = "platform admin"


def _read(row: Subscription, plan_key: str) -> SubscriptionRead:
    return SubscriptionRead(
        id=row.id,
        company_name=row.company_name,
        status=row.status,
        plan_key=plan_key,
        infrastructure_type=row.infrastructure_type,
        created_at=row.created_at,
    )


@router.get(
    "/api/subscriptions",
    responses=problem_responses(403),
    summary="Every subscription of the server",
    openapi_extra=permission(ADMIN),
)
def list_subscriptions(
    ctx: ContextDep,
    services: ServicesDep,
    page: PageParams,
    name: Annotated[
        str | None,
        Query(max_length=200, description="Only company names containing this text."),
    ] = None,
    status: Annotated[
        Status | None, Query(description="Only subscriptions in this status.")
    ] = None,
    sort: Annotated[
        Sort, Query(description="Sort key; `-` for descending. Ties are broken by id.")
    ] = "company_name",
) -> SubscriptionPage:
    rows = services.subscriptions.page(ctx, page, name=name, status=status, sort=sort)
    cursor, link = page.finish([sort_key(r, sort) for r, _ in rows])
    return SubscriptionPage(
        items=[_read(r, plan) for r, plan in rows[: page.limit]], next_cursor=cursor, next=link
    )


@router.post(
    "/api/subscriptions",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 409),
    summary="Create a subscription and its owner",
    description="Whatever `UZO_AUTH_REGISTRATION` says. 409 if the owner's email already "
    "has an account.",
    openapi_extra=permission(ADMIN),
)
def create_subscription(
    body: SubscriptionCreate, ctx: ContextDep, services: ServicesDep
) -> SubscriptionRead:
    return _read(*services.subscriptions.create(ctx, body))


@router.get(
    "/api/subscriptions/{subscription_id}",
    responses=problem_responses(404),
    summary="One subscription",
    openapi_extra=permission("platform admin; every member for their own subscription"),
)
def get_subscription(
    subscription_id: uuid.UUID, ctx: ContextDep, services: ServicesDep
) -> SubscriptionRead:
    return _read(*services.subscriptions.get(ctx, subscription_id))


@router.patch(
    "/api/subscriptions/{subscription_id}",
    responses=problem_responses(403, 404, 409),
    summary="Rename a subscription, change its plan or infrastructure, suspend or cancel it",
    description="Status: active <-> suspended, either -> cancelled (final; 409 otherwise). "
    "A subscription that is not active locks its users out at once. A platform admin "
    "cannot change the status of their own subscription (409).",
    openapi_extra=permission(ADMIN),
)
def update_subscription(
    subscription_id: uuid.UUID, body: SubscriptionUpdate, ctx: ContextDep, services: ServicesDep
) -> SubscriptionRead:
    return _read(*services.subscriptions.update(ctx, subscription_id, body.changes()))


@router.delete(
    "/api/subscriptions/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404, 409),
    summary="Delete a subscription (soft: its data stays, its users are locked out)",
    description="A platform admin cannot delete their own subscription (409).",
    openapi_extra=permission(ADMIN),
)
def delete_subscription(
    subscription_id: uuid.UUID, ctx: ContextDep, services: ServicesDep
) -> Response:
    services.subscriptions.delete(ctx, subscription_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
