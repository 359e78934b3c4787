"""/api/features and /api/subscriptions/upgrade: the edition of the caller's subscription."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from sqlalchemy import select

from uzo_api.authz import permission
from uzo_api.db.models import Subscription, SubscriptionPlan
from uzo_api.deps import ContextDep, ServicesDep, refuse_unknown_query
from uzo_api.errors import problem_responses
from uzo_api.schemas.features import (
    EnabledFeaturesResult,
    FeatureRead,
    UpgradeRequest,
    UpgradeResult,
    UsageResult,
)

router = APIRouter(tags=["features"], dependencies=[Depends(refuse_unknown_query)])
FeatureKey = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,79}$")]


@router.get(
    "/api/features/check/{feature_key}",
    responses=problem_responses(404),
    summary="Whether a feature is enabled for your subscription, and what decided it",
    openapi_extra=permission("authenticated"),
)
def check_feature(feature_key: FeatureKey, ctx: ContextDep, services: ServicesDep) -> FeatureRead:
    state = services.features.check(ctx, feature_key)
    return FeatureRead(
        feature_key=state.key,
        name=state.name,
        enabled=state.enabled,
        source=state.source,
        limit_value=state.limit_value,
    )


@router.get(
    "/api/features/enabled",
    summary="The features enabled for your subscription",
    openapi_extra=permission("authenticated"),
)
def list_enabled_features(ctx: ContextDep, services: ServicesDep) -> EnabledFeaturesResult:
    plan_key = ctx.control.scalar(
        select(SubscriptionPlan.plan_key)
        .join(Subscription, Subscription.plan_id == SubscriptionPlan.id)
        .where(Subscription.id == ctx.principal.subscription_id)
    )
    enabled = [s.key for s in services.features.states(ctx) if s.enabled]
    return EnabledFeaturesResult(plan_key=plan_key or "", features=enabled)


@router.get(
    "/api/features/usage/{usage_type}",
    responses=problem_responses(404),
    summary="How much of a plan limit is used (connectors, workflows, users)",
    openapi_extra=permission("authenticated"),
)
def get_usage(
    usage_type: Annotated[str, Path(pattern=r"^[a-z_]{1,40}$")],
    ctx: ContextDep,
    services: ServicesDep,
) -> UsageResult:
    usage = services.features.usage(ctx, usage_type)
    return UsageResult(name=usage.name, allowed=usage.allowed, used=usage.used, plan_key=usage.plan)


@router.post(
    "/api/subscriptions/upgrade",
    responses=problem_responses(403),
    summary="Move your subscription to another plan (its limits apply at once)",
    openapi_extra=permission("subscription owner"),
)
def upgrade_subscription(
    body: UpgradeRequest, ctx: ContextDep, services: ServicesDep
) -> UpgradeResult:
    plan = services.features.upgrade(ctx, body.plan_key)
    return UpgradeResult(
        plan_key=plan.plan_key,
        max_workflows=plan.max_workflows,
        max_connectors=plan.max_connectors,
        max_executions_per_month=plan.max_executions_per_month,
        max_users=plan.max_users,
    )
