"""Making a platform admin: an operator's act, on the owner connection (ADR 0013).

The application role holds no privilege on ``platform_admins``, so no request, however
crafted, can make anyone a platform admin. ``uzo admin create`` runs this with the
database owner's credentials: one transaction creates the admin's own subscription
(on the default plan), the admin as its owner, the ``platform_admins`` row and an
audit row, or nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from uzo_api.auth import crypto
from uzo_api.db.models import AuditLog, PlatformAdmin, Subscription, SubscriptionPlan, User
from uzo_api.errors import Conflict
from uzo_api.services.auth import DEFAULT_PLAN

if TYPE_CHECKING:
    from uzo_api.db.session import Database
    from uzo_api.schemas.auth import RegisterRequest

log = structlog.get_logger("uzo.platform")


@dataclass(frozen=True)
class CreatedAdmin:
    user_id: uuid.UUID
    subscription_id: uuid.UUID
    email: str


def create_platform_admin(db: Database, req: RegisterRequest) -> CreatedAdmin:
    """A new platform admin, or 409 if the email has an account (admin or not)."""
    email = str(req.email)
    password_hash = crypto.hash_password(req.password)
    try:
        with Session(db.owner_engine) as s, s.begin():
            existing = s.execute(
                select(User.id, PlatformAdmin.user_id)
                .outerjoin(PlatformAdmin, PlatformAdmin.user_id == User.id)
                .where(func.lower(User.email) == email.lower())
            ).first()
            if existing is not None:
                what = "a platform admin" if existing[1] is not None else "an account"
                raise Conflict(f"{what} with this email already exists", field="email")
            plan_id = s.scalar(
                select(SubscriptionPlan.id).where(SubscriptionPlan.plan_key == DEFAULT_PLAN)
            )
            if plan_id is None:
                raise RuntimeError(f"plan {DEFAULT_PLAN!r} missing: run `uzo db upgrade`")
            sub = Subscription(id=uuid.uuid4(), plan_id=plan_id, company_name=req.company_name)
            s.add(sub)
            s.flush()
            user = User(
                subscription_id=sub.id,
                username=req.username or email.split("@", 1)[0][:100],
                email=email,
                full_name=req.full_name,
                password_hash=password_hash,
                is_subscription_owner=True,
            )
            s.add(user)
            s.flush()
            s.add(PlatformAdmin(user_id=user.id, subscription_id=sub.id))
            s.add(
                AuditLog(
                    subscription_id=sub.id,
                    action="platform_admin.create",
                    resource_type="user",
                    resource_id=user.id,
                    ip_address="cli",
                )
            )
            created = CreatedAdmin(user_id=user.id, subscription_id=sub.id, email=email)
    except IntegrityError as exc:  # the same email, created meanwhile
        if "email" in str(exc.orig):
            raise Conflict("an account with this email already exists", field="email") from exc
        raise
    log.info("platform admin created", user_id=str(created.user_id))
    return created
