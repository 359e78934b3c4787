"""Subscriptions for platform admins: list, create with an owner, change, delete.

Every subscription but the caller's own is reached inside
:meth:`uzo_api.authz.Authorizer.platform_scope` (ADR 0013), which refuses anyone who
is not a platform admin; a member reads their own subscription under ordinary RLS and
another tenant's id is a 404 to them.

Status is a state machine, changed by a guarded UPDATE (``WHERE status = :expected``,
one row or 409)::

    active <-> suspended
    active | suspended -> cancelled   (final)

A subscription that is not active, or is deleted (soft: ``deleted_at``), locks its users
out on their next request (:mod:`uzo_api.services.auth` checks it on every sign-in,
token and key). A platform admin cannot suspend, cancel or delete their own
subscription: that would lock out the last way back in.

Audit rows go to the acting admin's tenant, in the transaction of the change, naming
the subscription as the resource.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, cast

import structlog
from sqlalchemy import ColumnElement, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from uzo_api.auth import crypto
from uzo_api.db import platform
from uzo_api.db.models import Subscription, SubscriptionPlan, User
from uzo_api.errors import Conflict, InvalidInput, NotFound
from uzo_api.pagination import keyset
from uzo_api.services import audit

if TYPE_CHECKING:
    import uuid

    from sqlalchemy import Select
    from sqlalchemy.orm import Session

    from uzo_api.context import RequestContext
    from uzo_api.pagination import Key, PageRequest
    from uzo_api.schemas.subscriptions import SubscriptionCreate

log = structlog.get_logger("uzo.subscriptions")

#: status -> the statuses it may move to
TRANSITIONS: dict[str, frozenset[str]] = {
    "active": frozenset({"suspended", "cancelled"}),
    "suspended": frozenset({"active", "cancelled"}),
    "cancelled": frozenset(),
}
FIELDS = ("company_name", "status", "plan_key", "infrastructure_type")


def sort_key(row: Subscription, sort: str) -> Key:
    if sort.lstrip("-") == "created_at":
        return row.created_at, row.id
    return row.company_name, row.id


class SubscriptionService:
    """Stateless: every method works in the request's session (``ctx.session``)."""

    # -- reading -------------------------------------------------------------------------------

    def page(
        self,
        ctx: RequestContext,
        page: PageRequest,
        *,
        name: str | None,
        status: str | None,
        sort: str,
    ) -> list[tuple[Subscription, str]]:
        """Up to ``page.limit + 1`` live subscriptions of every tenant, with plan keys."""
        query = cast(
            "Select[Any]",
            select(Subscription, SubscriptionPlan.plan_key)
            .join(SubscriptionPlan, SubscriptionPlan.id == Subscription.plan_id)
            .where(Subscription.deleted_at.is_(None)),
        )
        if name:
            query = query.where(_contains(Subscription.company_name, name))
        if status:
            query = query.where(Subscription.status == status)
        column = Subscription.created_at if "created_at" in sort else Subscription.company_name
        query = keyset(query, page, column, Subscription.id, descending=sort.startswith("-"))
        with ctx.authz.platform_scope():
            return [(row, str(plan)) for row, plan in ctx.session.execute(query).all()]

    def get(self, ctx: RequestContext, subscription_id: uuid.UUID) -> tuple[Subscription, str]:
        """Any subscription to a platform admin; their own to everyone else (else 404)."""
        if subscription_id == ctx.principal.subscription_id or not ctx.authz.is_platform_admin():
            return _live(ctx.session, subscription_id)
        with ctx.authz.platform_scope():
            return _live(ctx.session, subscription_id)

    # -- changing ------------------------------------------------------------------------------

    def create(self, ctx: RequestContext, body: SubscriptionCreate) -> tuple[Subscription, str]:
        """A subscription and its owner, in the request's transaction."""
        s = ctx.session
        _infrastructure_unchanged("shared", body.infrastructure_type)
        plan = _plan(s, body.plan_key)
        owner = body.owner
        email = str(owner.email)
        password_hash = crypto.hash_password(owner.password)
        with ctx.authz.platform_scope():
            row = Subscription(
                plan_id=plan.id,
                company_name=body.company_name,
                infrastructure_type=body.infrastructure_type,
            )
            s.add(row)
            s.flush()
        try:
            with platform.acting_in(s, row.id):
                user = User(
                    subscription_id=row.id,
                    username=owner.username or email.split("@", 1)[0][:100],
                    email=email,
                    full_name=owner.full_name,
                    password_hash=password_hash,
                    is_subscription_owner=True,
                )
                s.add(user)
        except IntegrityError as exc:
            raise Conflict(
                "an account with this email already exists", field="owner.email"
            ) from exc
        with ctx.authz.platform_scope():
            s.refresh(row)
            after = audit.snapshot(row)
        _audit(
            ctx,
            "subscription.create",
            row.id,
            {"plan_key": plan.plan_key, "owner": str(user.id)},
            after=after,
        )
        log.info("subscription created", subscription_id=str(row.id))
        return row, plan.plan_key

    def update(
        self, ctx: RequestContext, subscription_id: uuid.UUID, changes: dict[str, Any]
    ) -> tuple[Subscription, str]:
        s = ctx.session
        _foreign_is_not_found(ctx, subscription_id)
        with ctx.authz.platform_scope():
            row, plan_key = _live(s, subscription_id, lock=True)
            before = audit.snapshot(row)
            if "status" in changes and changes["status"] != row.status:
                self._own_stays_active(ctx, subscription_id)
                self._move(s, row, changes["status"])
            if "plan_key" in changes and changes["plan_key"] != plan_key:
                plan = _plan(s, changes["plan_key"])
                row.plan_id, plan_key = plan.id, plan.plan_key
            if "infrastructure_type" in changes:
                _infrastructure_unchanged(row.infrastructure_type, changes["infrastructure_type"])
            if "company_name" in changes:
                row.company_name = changes["company_name"]
            s.flush()
            s.refresh(row)
            after = audit.snapshot(row)
        _audit(ctx, "subscription.update", row.id, {"fields": sorted(changes)}, before, after)
        return row, plan_key

    def delete(self, ctx: RequestContext, subscription_id: uuid.UUID) -> None:
        """Soft delete: the tenant's rows stay, its users are locked out."""
        s = ctx.session
        _foreign_is_not_found(ctx, subscription_id)
        with ctx.authz.platform_scope():
            row, _ = _live(s, subscription_id, lock=True)
            self._own_stays_active(ctx, subscription_id)
            before = audit.snapshot(row)
            row.deleted_at = dt.datetime.now(dt.UTC)
            row.deleted_by = ctx.principal.user_id
            s.flush()
            after = audit.snapshot(row)
        _audit(ctx, "subscription.delete", subscription_id, None, before, after)
        log.info("subscription deleted", subscription_id=str(subscription_id))

    # -- rules ---------------------------------------------------------------------------------

    @staticmethod
    def _own_stays_active(ctx: RequestContext, subscription_id: uuid.UUID) -> None:
        if subscription_id == ctx.principal.subscription_id:
            raise Conflict(
                "a platform admin cannot suspend, cancel or delete their own subscription: "
                "it would lock them out"
            )

    @staticmethod
    def _move(s: Session, row: Subscription, new: str) -> None:
        """The guarded transition: one row changes, or the state machine refuses (409)."""
        old = row.status
        if new not in TRANSITIONS.get(old, frozenset()):
            raise Conflict(f"a {old} subscription cannot become {new}", field="status")
        result = s.execute(
            update(Subscription)
            .where(Subscription.id == row.id, Subscription.status == old)
            .values(status=new),
            execution_options={"synchronize_session": False},
        )
        if getattr(result, "rowcount", 0) != 1:
            raise Conflict("the subscription's status changed meanwhile: retry", field="status")
        set_committed_value(row, "status", new)


def _live(
    s: Session, subscription_id: uuid.UUID, *, lock: bool = False
) -> tuple[Subscription, str]:
    query = (
        select(Subscription, SubscriptionPlan.plan_key)
        .join(SubscriptionPlan, SubscriptionPlan.id == Subscription.plan_id)
        .where(Subscription.id == subscription_id, Subscription.deleted_at.is_(None))
    )
    if lock:
        query = query.with_for_update(of=Subscription)
    found = s.execute(query).first()
    if found is None:
        raise NotFound("no such subscription", field="subscription_id")
    return found[0], str(found[1])


def _plan(s: Session, plan_key: str) -> SubscriptionPlan:
    plan = s.scalar(
        select(SubscriptionPlan).where(
            SubscriptionPlan.plan_key == plan_key, SubscriptionPlan.is_active.is_(True)
        )
    )
    if plan is None:
        raise InvalidInput(f"no plan {plan_key!r}", field="plan_key")
    return plan


def _contains(column: Any, needle: str) -> ColumnElement[bool]:
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    result: ColumnElement[bool] = column.ilike(f"%{escaped}%", escape="\\")
    return result


def _audit(
    ctx: RequestContext,
    action: str,
    subscription_id: uuid.UUID,
    changes: dict[str, Any] | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """An audit row in the acting admin's tenant, in the transaction of the change."""
    audit.record(ctx, action, "subscription", subscription_id, changes, before=before, after=after)


def _infrastructure_unchanged(current: str, wanted: str | None) -> None:
    """Shared and dedicated differ in where the tenant's rows live: only ``uzo tenant
    provision`` (which creates, migrates and registers the database) moves a tenant."""
    if wanted is not None and wanted != current:
        raise InvalidInput(
            f"infrastructure_type stays {current!r} here: `uzo tenant provision "
            "--subscription ID` creates a dedicated tenant's database and switches it",
            field="infrastructure_type",
        )


def _foreign_is_not_found(ctx: RequestContext, subscription_id: uuid.UUID) -> None:
    """Another tenant's subscription does not exist for anyone but a platform admin: 404,
    as for every foreign object (the caller's own one is a 403 below, naming the need)."""
    if subscription_id != ctx.principal.subscription_id and not ctx.authz.is_platform_admin():
        raise NotFound("no such subscription")
