"""Feature flags and editions: what a subscription's plan (or an override) turns on.

A feature's state for a subscription is decided in priority order: a live override for
that subscription (``subscription_feature_overrides``, unless expired), else the plan's
``plan_features`` row, else the feature's default. Usage limits (connectors, workflows,
users) are the plan's columns, counted by :mod:`uzo_api.services.limits`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from sqlalchemy import select

from uzo_api.db.models import (
    Feature,
    PlanFeature,
    Subscription,
    SubscriptionFeatureOverride,
    SubscriptionPlan,
)
from uzo_api.errors import Forbidden, InvalidInput, NotFound
from uzo_api.services import audit
from uzo_api.services.limits import LIMITS

if TYPE_CHECKING:
    from uzo_api.context import RequestContext
    from uzo_api.services.limits import LimitsService, Usage


@dataclass(frozen=True)
class FeatureState:
    key: str
    name: str
    enabled: bool
    source: Literal["override", "plan", "default"]
    limit_value: int | None


class FeatureService:
    def __init__(self, limits: LimitsService) -> None:
        self.limits = limits

    def states(self, ctx: RequestContext) -> list[FeatureState]:
        """Every feature's state for the caller's subscription, by key (three queries)."""
        s, sid = ctx.control, ctx.principal.subscription_id
        plan_id = s.scalar(select(Subscription.plan_id).where(Subscription.id == sid))
        now = dt.datetime.now(dt.UTC)
        plan = {
            row.feature_id: row
            for row in s.scalars(select(PlanFeature).where(PlanFeature.plan_id == plan_id))
        }
        overrides = {
            row.feature_id: row
            for row in s.scalars(select(SubscriptionFeatureOverride))
            if row.expires_at is None or row.expires_at > now
        }
        out = []
        for f in s.scalars(select(Feature).order_by(Feature.feature_key)):
            if f.id in overrides:
                o = overrides[f.id]
                state = FeatureState(
                    f.feature_key, f.feature_name, o.is_enabled, "override", o.limit_value
                )
            elif f.id in plan:
                p = plan[f.id]
                state = FeatureState(
                    f.feature_key, f.feature_name, p.is_enabled, "plan", p.limit_value
                )
            else:
                state = FeatureState(
                    f.feature_key, f.feature_name, f.default_enabled, "default", None
                )
            out.append(state)
        return out

    def check(self, ctx: RequestContext, key: str) -> FeatureState:
        for state in self.states(ctx):
            if state.key == key:
                return state
        raise NotFound(f"no feature {key!r}")

    def require(self, ctx: RequestContext, key: str) -> None:
        """Refuse a request for a feature the subscription's edition does not include."""
        state = self.check(ctx, key)
        if not state.enabled:
            raise Forbidden(f"the {state.name} feature ({key}) is not part of your plan")

    def usage(self, ctx: RequestContext, kind: str) -> Usage:
        if kind not in LIMITS:
            raise NotFound(f"no usage {kind!r}: one of {', '.join(sorted(LIMITS))}")
        # users are identity (control database); connectors and workflows are resources
        s = ctx.control if kind == "users" else ctx.session
        return self.limits.usage(s, ctx.principal.subscription_id, kind)

    def upgrade(self, ctx: RequestContext, plan_key: str) -> SubscriptionPlan:
        """Move the subscription to another plan; its limits and features apply at once."""
        if not ctx.principal.is_owner:
            raise Forbidden("only the subscription's owner may change its plan")
        s = ctx.control
        plan = s.scalar(
            select(SubscriptionPlan).where(
                SubscriptionPlan.plan_key == plan_key, SubscriptionPlan.is_active.is_(True)
            )
        )
        if plan is None:
            raise InvalidInput(f"no plan {plan_key!r}", field="plan_key")
        sub = s.get(Subscription, ctx.principal.subscription_id, with_for_update=True)
        if sub is None:
            raise NotFound("no such subscription")
        if sub.plan_id == plan.id:
            raise InvalidInput(f"the subscription is on {plan_key!r} already", field="plan_key")
        before = audit.snapshot(sub)
        sub.plan_id = plan.id
        s.flush()
        ctx.mirror(sub)
        audit.record(
            ctx,
            "subscription.upgrade",
            "subscription",
            sub.id,
            {"plan_key": plan_key},
            before=before,
            after=audit.snapshot(sub),
            identity=True,
        )
        return plan
