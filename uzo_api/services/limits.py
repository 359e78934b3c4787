"""Plan limits, enforced at the moment of creation and free of races.

Counting and then inserting lets two concurrent creations both take the last free
slot. :meth:`LimitsService.reserve` first takes a transaction-scoped advisory lock
on (subscription, limit), then counts, inside the transaction that will insert: a
second creation waits for the first to commit or roll back and then counts its row.
The lock is released with the transaction; other subscriptions and other limits never
wait. Executions per month go through the same service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, text

from uzo_api.db.models import Connector, Subscription, SubscriptionPlan, User, Workflow
from uzo_api.errors import LimitDetail, PlanLimitReached

if TYPE_CHECKING:
    import uuid

    from sqlalchemy.orm import Session

# limit name -> (plan column, model counted, what the message calls it)
LIMITS: dict[str, tuple[str, Any, str]] = {
    "connectors": ("max_connectors", Connector, "connectors"),
    "workflows": ("max_workflows", Workflow, "workflows"),
    "users": ("max_users", User, "users"),
}


@dataclass(frozen=True)
class Usage:
    name: str
    allowed: int | None  # None: unlimited
    used: int
    plan: str


class LimitsService:
    def usage(self, s: Session, subscription_id: uuid.UUID, kind: str) -> Usage:
        column, model, _ = LIMITS[kind]
        row = s.execute(
            select(getattr(SubscriptionPlan, column), SubscriptionPlan.plan_key)
            .join(Subscription, Subscription.plan_id == SubscriptionPlan.id)
            .where(Subscription.id == subscription_id)
        ).one()
        count = select(func.count()).select_from(model)
        if hasattr(model, "deleted_at"):
            count = count.where(model.deleted_at.is_(None))
        used = s.scalar(count) or 0
        return Usage(name=column, allowed=row[0], used=used, plan=row[1])

    def reserve(self, s: Session, subscription_id: uuid.UUID, kind: str, count: int = 1) -> None:
        """Refuse the creation of ``count`` more ``kind`` (one by default, more for a
        restore that brings several back) if the plan's limit would be passed.

        Call inside the transaction that creates the row; the lock it takes lasts until
        that transaction ends.
        """
        s.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"uzo:limit:{subscription_id}:{kind}"},
        )
        usage = self.usage(s, subscription_id, kind)
        if usage.allowed is None or usage.used + count <= usage.allowed:
            return
        lifts = self._upgrade(s, LIMITS[kind][0], usage.allowed)
        noun = LIMITS[kind][2]
        hint = f"upgrade to {lifts}" if lifts else "delete one first"
        adding = f" (and {count} more would come back)" if count > 1 else ""
        raise PlanLimitReached(
            f"the {usage.plan} plan allows {usage.allowed} {noun} and this subscription has "
            f"{usage.used}{adding}: {hint}",
            limit=LimitDetail(
                name=usage.name,
                allowed=usage.allowed,
                used=usage.used,
                plan=usage.plan,
                upgrade_to=lifts,
            ),
        )

    @staticmethod
    def _upgrade(s: Session, column: str, current: int) -> str | None:
        """The plan with the smallest limit above ``current`` (an unlimited one last)."""
        limit = getattr(SubscriptionPlan, column)
        return s.scalar(
            select(SubscriptionPlan.plan_key)
            .where(
                SubscriptionPlan.is_active.is_(True),
                (limit > current) | limit.is_(None),
            )
            .order_by(limit.asc().nulls_last())
            .limit(1)
        )
