"""The users of a subscription: list, create or invite, change, deactivate, delete.

Managing users needs admin on every user of the subscription (its owner, or a role that
grants ``admin`` on ``user``); every member may read the list. Two rules protect the
subscription itself:

- only an owner may make or unmake owners, or change or delete an owner;
- the last active owner cannot be removed, deactivated or demoted (409). The check runs
  under a transaction-scoped advisory lock per subscription, so two owners demoting each
  other at the same moment cannot both succeed.

A user created without a password is invited: a single-use set-password token (a
:class:`PasswordResetToken`, spent through ``POST /api/auth/reset-password``) is mailed
once the creating transaction has committed. Deleting is soft (``deleted_at``, inactive)
and revokes the user's sessions, API keys and outstanding set-password tokens.

Users and their credentials are identity: they are read and written in the control
database (``ctx.control``), and a dedicated tenant's copy is updated in the same request
(``ctx.mirror``, ADR 0014).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import event, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from uzo_api.auth import crypto
from uzo_api.auth.mail import Mail
from uzo_api.db.models import ApiKey, PasswordResetToken, RefreshToken, User
from uzo_api.errors import Conflict, Forbidden, NotFound
from uzo_api.pagination import keyset
from uzo_api.services import audit

if TYPE_CHECKING:
    import uuid

    from sqlalchemy.orm import Session

    from uzo_api.auth.mail import MailSender
    from uzo_api.background import BackgroundWork
    from uzo_api.context import RequestContext
    from uzo_api.pagination import PageRequest
    from uzo_api.services.limits import LimitsService
    from uzo_api.settings import Settings

log = structlog.get_logger("uzo.users")
#: how long an invitation's set-password link stays valid
INVITATION_TTL = dt.timedelta(hours=72)
LAST_OWNER = (
    "a subscription keeps at least one active owner: make another user an owner before "
    "removing, deactivating or demoting the last one"
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def like_pattern(fragment: str) -> str:
    """A case-insensitive substring pattern with LIKE's wildcards escaped."""
    escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def live_user(s: Session, user_id: uuid.UUID, *, lock: bool = False) -> User:
    """The tenant's user, or 404 (another tenant's is invisible under RLS; deleted: gone)."""
    row = s.get(User, user_id, with_for_update=lock)
    if row is None or row.deleted_at is not None:
        raise NotFound("no such user", field="user_id")
    return row


class UserService:
    def __init__(
        self,
        limits: LimitsService,
        mailer: MailSender,
        settings: Settings,
        background: BackgroundWork,
    ) -> None:
        self.limits = limits
        self.mailer = mailer
        self.settings = settings
        self.background = background

    # -- reading ---------------------------------------------------------------------------

    @staticmethod
    def page(
        ctx: RequestContext, page: PageRequest, *, name: str | None, email: str | None
    ) -> list[User]:
        """Up to ``page.limit + 1`` live users by username then id; ``name`` matches the
        username or the full name, ``email`` the address (both substrings, any case)."""
        query = select(User).where(User.deleted_at.is_(None))
        if name:
            pattern = like_pattern(name)
            query = query.where(
                or_(
                    User.username.ilike(pattern, escape="\\"),
                    User.full_name.ilike(pattern, escape="\\"),
                )
            )
        if email:
            query = query.where(User.email.ilike(like_pattern(email), escape="\\"))
        return list(ctx.control.scalars(keyset(query, page, User.username, User.id)))

    @staticmethod
    def get(ctx: RequestContext, user_id: uuid.UUID) -> User:
        return live_user(ctx.control, user_id)

    # -- creating --------------------------------------------------------------------------

    def create(
        self,
        ctx: RequestContext,
        *,
        email: str,
        username: str | None,
        full_name: str | None,
        password: str | None,
    ) -> User:
        """A user of the caller's subscription; without a password, an invited one."""
        ctx.authz.require_subscription("admin", "user")
        principal, s = ctx.principal, ctx.control
        # hashed before the limit's lock is taken: the lock is held until the commit
        password_hash = crypto.hash_password(password or crypto.new_secret(32))
        self.limits.reserve(s, principal.subscription_id, "users")
        row = User(
            subscription_id=principal.subscription_id,
            username=username or email.split("@", 1)[0][:100],
            email=email,
            full_name=full_name,
            password_hash=password_hash,
            is_subscription_owner=False,
        )
        s.add(row)
        try:
            s.flush()
        except IntegrityError as exc:
            if "email" in str(exc.orig):
                raise Conflict("an account with this email already exists", field="email") from exc
            raise Conflict(
                f"a user named {row.username!r} already exists in this subscription: "
                "choose another `username`",
                field="username",
            ) from exc
        s.refresh(row)
        ctx.mirror(row)
        if password is None:
            self._invite(s, row)
        audit.record(
            ctx,
            "user.invite" if password is None else "user.create",
            "user",
            row.id,
            after=audit.snapshot(row),
            identity=True,
        )
        log.info("user created", user_id=str(row.id), invited=password is None)
        return row

    def _invite(self, s: Session, user: User) -> None:
        token = crypto.new_secret(32)
        s.add(
            PasswordResetToken(
                subscription_id=user.subscription_id,
                user_id=user.id,
                token_hash=crypto.digest(token),
                expires_at=_now() + INVITATION_TTL,
            )
        )
        base = (self.settings.server.public_url or "").rstrip("/")
        link = f"{base}/reset-password?token={token}" if base else f"token: {token}"
        hours = int(INVITATION_TTL.total_seconds() // 3600)
        mail = Mail(
            to=user.email,
            subject="You are invited to UZO",
            body=(
                "An administrator created a UZO account for you.\n"
                f"Choose your password within {hours} hours, once:\n\n{link}\n\n"
                "If you did not expect this, ignore this mail."
            ),
        )

        # mailed only once the user and the token are committed (never for a rolled-back
        # creation), off the request path like the password-reset mail
        def send(_: Session) -> None:
            self.background.submit("invitation mail", self.mailer.send, mail)

        event.listen(s, "after_commit", send, once=True)

    # -- changing --------------------------------------------------------------------------

    def update(self, ctx: RequestContext, user_id: uuid.UUID, changes: dict[str, Any]) -> User:
        """Apply ``changes`` (username, full_name, is_active, is_subscription_owner)."""
        ctx.authz.require_subscription("admin", "user")
        principal, s = ctx.principal, ctx.control
        row = live_user(s, user_id, lock=True)
        before = audit.snapshot(row)
        if "is_subscription_owner" in changes and not principal.is_owner:
            raise Forbidden(
                "only an owner may make or unmake owners", field="is_subscription_owner"
            )
        self._only_owners_touch_owners(ctx, row)
        demoted = changes.get("is_subscription_owner") is False
        deactivated = changes.get("is_active") is False
        if row.is_subscription_owner and row.is_active and (demoted or deactivated):
            self._keep_an_owner(s, row)
        if deactivated and row.is_active:
            _revoke_sessions(s, row.id, _now())
        for name in ("username", "full_name", "is_active", "is_subscription_owner"):
            if name in changes:
                setattr(row, name, changes[name])
        try:
            s.flush()
        except IntegrityError as exc:
            raise Conflict(
                f"a user named {changes.get('username')!r} already exists in this subscription",
                field="username",
            ) from exc
        s.refresh(row)
        ctx.mirror(row)
        audit.record(
            ctx,
            _update_action(before, changes),
            "user",
            row.id,
            {"fields": sorted(changes)},
            before=before,
            after=audit.snapshot(row),
            identity=True,
        )
        return row

    def delete(self, ctx: RequestContext, user_id: uuid.UUID) -> None:
        """Soft delete: the row stays (audit, history) but can no longer sign in."""
        ctx.authz.require_subscription("admin", "user")
        principal, s = ctx.principal, ctx.control
        row = live_user(s, user_id, lock=True)
        self._only_owners_touch_owners(ctx, row)
        if row.is_subscription_owner and row.is_active:
            self._keep_an_owner(s, row)
        before = audit.snapshot(row)
        now = _now()
        row.deleted_at = now
        row.deleted_by = principal.user_id
        row.is_active = False
        _revoke_sessions(s, row.id, now)
        s.execute(
            update(ApiKey)
            .where(ApiKey.user_id == row.id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        ctx.mirror(row)
        audit.record(
            ctx,
            "user.delete",
            "user",
            row.id,
            before=before,
            after=audit.snapshot(row),
            identity=True,
        )
        log.info("user deleted", user_id=str(row.id))

    # -- rules -----------------------------------------------------------------------------

    @staticmethod
    def _only_owners_touch_owners(ctx: RequestContext, row: User) -> None:
        if row.is_subscription_owner and not ctx.principal.is_owner:
            raise Forbidden("only an owner may change or delete an owner")

    @staticmethod
    def _keep_an_owner(s: Session, row: User) -> None:
        """409 unless another active owner remains; serialised per subscription."""
        s.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"uzo:owners:{row.subscription_id}"},
        )
        others = s.scalar(
            select(func.count())
            .select_from(User)
            .where(
                User.is_subscription_owner.is_(True),
                User.is_active.is_(True),
                User.deleted_at.is_(None),
                User.id != row.id,
            )
        )
        if not others:
            raise Conflict(LAST_OWNER)


def _update_action(before: dict[str, Any], changes: dict[str, Any]) -> str:
    """The most telling name of a user change: an ownership or activation change is
    named as such (they are what an audit reader looks for), anything else an update."""
    owner = changes.get("is_subscription_owner")
    if owner is not None and owner != before.get("is_subscription_owner"):
        return "user.owner_grant" if owner else "user.owner_revoke"
    active = changes.get("is_active")
    if active is not None and active != before.get("is_active"):
        return "user.activate" if active else "user.deactivate"
    return "user.update"


def _revoke_sessions(s: Session, user_id: uuid.UUID, now: dt.datetime) -> None:
    """End every session (refresh-token family) and spend every set-password token."""
    s.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    s.execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.user_id == user_id, PasswordResetToken.used_at.is_(None))
        .values(used_at=now)
    )
