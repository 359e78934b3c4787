"""Registration, login, token rotation, password reset and API keys.

Every unit of work runs as the application role inside one tenant; the only
cross-tenant reads are the SECURITY DEFINER lookups in ``uzo_api.auth.lookups``.
"""

from __future__ import annotations

import datetime as dt
import hmac
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError

from uzo_api.auth import crypto, lookups
from uzo_api.auth.mail import Mail, MailSender
from uzo_api.auth.principal import Principal
from uzo_api.db.models import (
    ApiKey,
    PasswordResetToken,
    RefreshToken,
    Subscription,
    SubscriptionPlan,
    User,
)
from uzo_api.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from uzo_api.pagination import keyset
from uzo_api.services import audit

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from uzo_api.auth.throttle import Throttle
    from uzo_api.background import BackgroundWork
    from uzo_api.db.session import Database
    from uzo_api.pagination import PageRequest
    from uzo_api.schemas.auth import RegisterRequest
    from uzo_api.settings import Settings

log = structlog.get_logger("uzo.auth")
DEFAULT_PLAN = "standard"
ACTIVE = "active"
DEDICATED = "dedicated"
_BAD_LOGIN = "email or password is incorrect"
_BAD_REFRESH = "refresh token is invalid, expired or revoked"
_BAD_KEY = "API key is invalid, expired or revoked"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _require_live_subscription(s: Session, subscription_id: uuid.UUID) -> None:
    """A suspended, cancelled or deleted subscription's users neither sign in nor use
    their tokens or keys (checked on every request; reactivating lets them back in)."""
    sub = s.get(Subscription, subscription_id)
    _require_live(None if sub is None else sub.status, None if sub is None else sub.deleted_at)


def _require_live(status: str | None, deleted_at: dt.datetime | None) -> None:
    """``status`` None: the subscription row is gone."""
    if status is None or deleted_at is not None or status != ACTIVE:
        state = "deleted" if status is None or deleted_at is not None else status
        raise Unauthorized(f"this subscription is {state}: ask the server's operator")


@dataclass(frozen=True)
class Credential:
    """A bearer as read before the database is asked: the tenant it claims, and either
    a JWT's claims or an API key's row id with the key itself (to compare its digest)."""

    subscription_id: uuid.UUID
    claims: crypto.AccessClaims | None = None
    api_key: tuple[uuid.UUID, str] | None = None


def _dedicated(infrastructure_type: str | None, database: str | None) -> str | None:
    """Where a dedicated subscription's resources are (encrypted); None: the shared database."""
    if infrastructure_type != DEDICATED:
        return None
    # a dedicated subscription without its database is refused, never served from the shared one
    return database or ""


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


@dataclass(frozen=True)
class Account:
    user: User
    subscription: Subscription
    plan_key: str


class AuthService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        throttle: Throttle,
        mailer: MailSender,
        background: BackgroundWork,
    ) -> None:
        self.db = db
        self.settings = settings
        self.throttle = throttle
        self.mailer = mailer
        self.background = background
        self._jwt_secret: str | None = None

    def jwt_secret(self) -> str:
        """The signing key, read once: a generated one lives in a file in UZO_HOME, which
        every request would otherwise open and read again (seen in the API benchmark)."""
        if self._jwt_secret is None:
            self._jwt_secret = self.settings.jwt_secret()
        return self._jwt_secret

    # -- registration -------------------------------------------------------------------------

    def register(self, req: RegisterRequest, ip: str, *, enforce_policy: bool = True) -> Account:
        """A new subscription on the default plan, with its owner.

        Throttled per client address: the answer says whether an email is taken, so an
        unthrottled register would let anyone test a list of addresses. The registration
        setting (open, invite, closed) applies unless ``enforce_policy`` is false, as for
        ``uzo admin create-subscription`` run by whoever operates the server.
        """
        if enforce_policy:
            self._check_registration_policy(req.invite_token)
            self._throttle_ip("register", self.settings.auth.register_limit_per_ip, ip)
        subscription_id = uuid.uuid4()
        email = str(req.email)
        username = req.username or email.split("@", 1)[0][:100]
        try:
            with self.db.tenant(subscription_id) as s:
                plan = s.scalar(
                    select(SubscriptionPlan).where(SubscriptionPlan.plan_key == DEFAULT_PLAN)
                )
                if plan is None:
                    raise RuntimeError(f"plan {DEFAULT_PLAN!r} missing: run `uzo db upgrade`")
                sub = Subscription(
                    id=subscription_id, plan_id=plan.id, company_name=req.company_name
                )
                s.add(sub)
                s.flush()
                user = User(
                    subscription_id=subscription_id,
                    username=username,
                    email=email,
                    full_name=req.full_name,
                    password_hash=crypto.hash_password(req.password),
                    is_subscription_owner=True,
                )
                s.add(user)
                s.flush()
                s.refresh(sub)
                s.refresh(user)
        except IntegrityError as exc:
            if "email" in str(exc.orig):
                raise Conflict("an account with this email already exists", field="email") from exc
            raise
        log.info("subscription registered", subscription_id=str(subscription_id))
        return Account(user=user, subscription=sub, plan_key=plan.plan_key)

    def _check_registration_policy(self, invite_token: str | None) -> None:
        policy = self.settings.auth.registration
        if policy == "closed":
            raise Forbidden(
                "registration is closed on this server: ask its operator for an account"
            )
        if policy == "invite":
            offered = (invite_token or "").encode()
            valid = any(
                hmac.compare_digest(offered, token.get_secret_value().encode())
                for token in self.settings.auth.invite_tokens
            )
            if not invite_token or not valid:
                raise Forbidden(
                    "registration needs a valid invitation token on this server",
                    field="invite_token",
                )

    # -- login and tokens ---------------------------------------------------------------------

    def login(self, email: str, password: str, ip: str, user_agent: str | None) -> IssuedTokens:
        self._throttle("login", email.lower(), ip)
        with self.db.session() as s:
            found = lookups.user_by_email(s, email)
        if found is None:
            crypto.verify_password(password, None)  # same cost as a wrong password
            raise Unauthorized(_BAD_LOGIN)
        user_id, subscription_id = found
        with self.db.tenant(subscription_id) as s:
            user = s.get(User, user_id)
            if user is None or not crypto.verify_password(password, user.password_hash):
                raise Unauthorized(_BAD_LOGIN)
            if not user.is_active:
                raise Unauthorized("this account is disabled")
            _require_live_subscription(s, subscription_id)
            user.last_login_at = _now()
            return self._issue(s, user, uuid.uuid4(), ip, user_agent)

    def refresh(self, refresh_token: str, ip: str, user_agent: str | None) -> IssuedTokens:
        """Rotate: the presented token is spent; presenting a spent one revokes the family."""
        token_hash = crypto.digest(refresh_token)
        with self.db.session() as s:
            found = lookups.refresh_token_by_hash(s, token_hash)
        if found is None:
            raise Unauthorized(_BAD_REFRESH)
        token_id, subscription_id = found
        reused = False
        with self.db.tenant(subscription_id) as s:
            token = s.get(RefreshToken, token_id, with_for_update=True)
            if token is None or token.revoked_at is not None:
                raise Unauthorized(_BAD_REFRESH)
            if token.rotated_at is not None:
                self._revoke_family(s, token.family_id)
                reused = True
            elif token.expires_at <= _now():
                raise Unauthorized(_BAD_REFRESH)
            else:
                user = s.get(User, token.user_id)
                if user is None or not user.is_active or user.deleted_at is not None:
                    raise Unauthorized(_BAD_REFRESH)
                _require_live_subscription(s, subscription_id)
                token.rotated_at = _now()
                return self._issue(s, user, token.family_id, ip, user_agent)
        if reused:  # committed above: the family stays revoked
            log.warning("refresh token reuse: session revoked", family_id=str(token.family_id))
        raise Unauthorized(_BAD_REFRESH)

    def logout(self, principal: Principal) -> None:
        if principal.family_id is None:
            raise InvalidInput(
                "API keys have no session: revoke them with DELETE /api/auth/api-keys/{id}"
            )
        with self.db.tenant(principal.subscription_id) as s:
            self._revoke_family(s, principal.family_id)

    def _issue(
        self, s: Session, user: User, family_id: uuid.UUID, ip: str, user_agent: str | None
    ) -> IssuedTokens:
        auth = self.settings.auth
        refresh = crypto.new_secret(48)
        s.add(
            RefreshToken(
                subscription_id=user.subscription_id,
                user_id=user.id,
                family_id=family_id,
                token_hash=crypto.digest(refresh),
                expires_at=_now() + dt.timedelta(seconds=auth.refresh_ttl_seconds),
                ip_address=ip[:64],
                user_agent=(user_agent or "")[:400] or None,
            )
        )
        access = crypto.encode_access_token(
            secret=self.jwt_secret(),
            issuer=auth.jwt_issuer,
            user_id=user.id,
            subscription_id=user.subscription_id,
            family_id=family_id,
            ttl_seconds=auth.access_ttl_seconds,
        )
        return IssuedTokens(access, auth.access_ttl_seconds, refresh, auth.refresh_ttl_seconds)

    @staticmethod
    def _revoke_family(s: Session, family_id: uuid.UUID) -> None:
        s.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=_now())
        )

    # -- password reset -----------------------------------------------------------------------

    def forgot_password(self, email: str, ip: str) -> None:
        """Queue a single-use reset link. Says nothing about whether the email exists.

        The request only checks the throttle and queues the work: the lookup, the token and
        the mail happen off the request path, so known and unknown addresses take the same
        time to answer.
        """
        self._throttle("forgot", email.lower(), ip)
        self.background.submit("password-reset mail", self._send_reset_link, email)

    def _send_reset_link(self, email: str) -> None:
        with self.db.session() as s:
            found = lookups.user_by_email(s, email)
        if found is None:
            return
        user_id, subscription_id = found
        token = crypto.new_secret(32)
        ttl = self.settings.auth.reset_ttl_seconds
        with self.db.tenant(subscription_id) as s:
            user = s.get(User, user_id)
            if user is None or not user.is_active:
                return
            s.add(
                PasswordResetToken(
                    subscription_id=subscription_id,
                    user_id=user_id,
                    token_hash=crypto.digest(token),
                    expires_at=_now() + dt.timedelta(seconds=ttl),
                )
            )
            address = user.email
        base = (self.settings.server.public_url or "").rstrip("/")
        link = f"{base}/reset-password?token={token}" if base else f"token: {token}"
        self.mailer.send(
            Mail(
                to=address,
                subject="Reset your UZO password",
                body=(
                    "Someone asked to reset the password of your UZO account.\n"
                    f"Use this within {ttl // 60} minutes, once:\n\n{link}\n\n"
                    "If it was not you, ignore this mail; your password is unchanged."
                ),
            )
        )

    def reset_password(self, token: str, new_password: str, revoke_api_keys: bool = False) -> None:
        """Set a new password. Every session ends and every outstanding reset token of the
        user is spent; API keys keep working unless ``revoke_api_keys``."""
        token_hash = crypto.digest(token)
        with self.db.session() as s:
            found = lookups.reset_token_by_hash(s, token_hash)
        invalid = InvalidInput("reset token is invalid, expired or already used", field="token")
        if found is None:
            raise invalid
        token_id, subscription_id = found
        with self.db.tenant(subscription_id) as s:
            row = s.get(PasswordResetToken, token_id, with_for_update=True)
            if row is None or row.used_at is not None or row.expires_at <= _now():
                raise invalid
            user = s.get(User, row.user_id)
            if user is None or not user.is_active:
                raise invalid
            now = _now()
            before = audit.snapshot(user)
            user.password_hash = crypto.hash_password(new_password)
            user.password_changed_at = now
            s.flush()
            # the actor is the holder of the reset token: the user themself
            actor = Principal(user_id=user.id, subscription_id=subscription_id, method="jwt")
            audit.write(
                s,
                actor,
                "user.password_reset",
                "user",
                user.id,
                {"api_keys_revoked": revoke_api_keys},
                before=before,
                after=audit.snapshot(user),
            )
            s.execute(  # this token and any older one mailed before it
                update(PasswordResetToken)
                .where(PasswordResetToken.user_id == user.id, PasswordResetToken.used_at.is_(None))
                .values(used_at=now)
            )
            s.execute(
                update(RefreshToken)
                .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            if revoke_api_keys:
                s.execute(
                    update(ApiKey)
                    .where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
                    .values(revoked_at=now)
                )
        log.info("password reset", user_id=str(user.id), api_keys_revoked=revoke_api_keys)

    # -- authenticating requests --------------------------------------------------------------

    def authenticate(self, bearer: str) -> Principal:
        """The caller of ``bearer``, verified in a short transaction of its own (for routes
        that hold no request transaction, such as a connector test's slow remote call)."""
        credential = self.credential(bearer)
        with self.db.tenant(credential.subscription_id) as s:
            return self.verify(s, credential)

    def credential(self, bearer: str) -> Credential:
        """What a bearer claims, read before any tenant is known: a JWT's claims (no
        database), or an API key's row id and tenant (one lookup by its public prefix)."""
        prefix = crypto.api_key_prefix(bearer)
        if prefix is not None:
            with self.db.session() as s:
                found = lookups.api_key_by_prefix(s, prefix)
            if found is None:
                raise Unauthorized(_BAD_KEY)
            key_id, subscription_id = found
            return Credential(subscription_id, api_key=(key_id, bearer))
        try:
            claims = crypto.decode_access_token(
                bearer, secret=self.jwt_secret(), issuer=self.settings.auth.jwt_issuer
            )
        except crypto.InvalidToken as exc:
            raise Unauthorized("access token is invalid or expired") from exc
        return Credential(claims.subscription_id, claims=claims)

    def verify(self, s: Session, credential: Credential) -> Principal:
        """The principal, checked in ``s``, a session of the credential's tenant (a request
        verifies its caller in its own transaction: one statement for a JWT, one for a key)."""
        if credential.api_key is not None:
            return self._verify_api_key(s, credential.subscription_id, *credential.api_key)
        claims = credential.claims
        assert claims is not None
        # the session lives while its family holds a token that is not revoked: a logout
        # or a reset revokes them all, and a family whose rows are gone has ended too
        alive = exists().where(
            RefreshToken.family_id == claims.family_id,
            RefreshToken.user_id == User.id,
            RefreshToken.revoked_at.is_(None),
        )
        row = s.execute(
            select(
                User.is_subscription_owner,
                User.password_changed_at,
                Subscription.status,
                Subscription.deleted_at,
                Subscription.infrastructure_type,
                Subscription.dedicated_database_url,
                alive.label("alive"),
            )
            .outerjoin(Subscription, Subscription.id == User.subscription_id)
            .where(User.id == claims.user_id, User.is_active, User.deleted_at.is_(None))
        ).first()
        if row is None:
            raise Unauthorized("access token is invalid or expired")
        _require_live(row.status, row.deleted_at)
        if claims.issued_at < row.password_changed_at.replace(microsecond=0):
            raise Unauthorized("password changed since this token was issued")
        if not row.alive:
            raise Unauthorized("this session has ended")
        return Principal(
            user_id=claims.user_id,
            subscription_id=claims.subscription_id,
            method="jwt",
            family_id=claims.family_id,
            is_owner=row.is_subscription_owner,
            dedicated_database=_dedicated(row.infrastructure_type, row.dedicated_database_url),
        )

    def _verify_api_key(
        self, s: Session, subscription_id: uuid.UUID, key_id: uuid.UUID, token: str
    ) -> Principal:
        bad = Unauthorized(_BAD_KEY)
        found = s.execute(
            select(
                ApiKey,
                User.is_active,
                User.deleted_at,
                User.is_subscription_owner,
                Subscription.status,
                Subscription.deleted_at.label("subscription_deleted_at"),
                Subscription.infrastructure_type,
                Subscription.dedicated_database_url,
            )
            .join(User, User.id == ApiKey.user_id)
            .outerjoin(Subscription, Subscription.id == ApiKey.subscription_id)
            .where(ApiKey.id == key_id)
        ).first()
        if found is None or not crypto.digest_matches(token, found.ApiKey.key_hash):
            raise bad
        key: ApiKey = found.ApiKey
        now = _now()
        if key.revoked_at is not None or (key.expires_at and key.expires_at <= now):
            raise bad
        if not found.is_active or found.deleted_at is not None:
            raise bad
        _require_live(found.status, found.subscription_deleted_at)
        if key.last_used_at is None or now - key.last_used_at > dt.timedelta(minutes=1):
            key.last_used_at = now
        return Principal(
            user_id=key.user_id,
            subscription_id=subscription_id,
            method="api_key",
            api_key_id=key_id,
            is_owner=found.is_subscription_owner,
            dedicated_database=_dedicated(found.infrastructure_type, found.dedicated_database_url),
        )

    def account(self, principal: Principal) -> Account:
        with self.db.tenant(principal.subscription_id) as s:
            user = s.get(User, principal.user_id)
            sub = s.get(Subscription, principal.subscription_id)
            if user is None or sub is None:
                raise Unauthorized()
            plan_key = s.scalar(
                select(SubscriptionPlan.plan_key).where(SubscriptionPlan.id == sub.plan_id)
            )
        return Account(user=user, subscription=sub, plan_key=plan_key or "")

    # -- API keys -----------------------------------------------------------------------------

    def create_api_key(
        self, principal: Principal, name: str, expires_in_days: int | None
    ) -> tuple[ApiKey, str]:
        new = crypto.new_api_key()
        expires = _now() + dt.timedelta(days=expires_in_days) if expires_in_days else None
        with self.db.tenant(principal.subscription_id) as s:
            key = ApiKey(
                subscription_id=principal.subscription_id,
                user_id=principal.user_id,
                name=name,
                prefix=new.prefix,
                key_hash=new.key_hash,
                expires_at=expires,
            )
            s.add(key)
            s.flush()
            s.refresh(key)
            audit.write(
                s, principal, "api_key.create", "api_key", key.id, after=audit.snapshot(key)
            )
        log.info("api key created", api_key_id=str(key.id), prefix=new.prefix)
        return key, new.token

    def list_api_keys(self, principal: Principal, page: PageRequest) -> list[ApiKey]:
        """Up to ``page.limit + 1`` of the caller's keys, oldest first, after the cursor."""
        query = select(ApiKey).where(ApiKey.user_id == principal.user_id)
        with self.db.tenant(principal.subscription_id) as s:
            return list(s.scalars(keyset(query, page, ApiKey.created_at, ApiKey.id)))

    def revoke_api_key(self, principal: Principal, key_id: uuid.UUID) -> None:
        with self.db.tenant(principal.subscription_id) as s:
            key = s.get(ApiKey, key_id)
            if key is None or key.user_id != principal.user_id:
                raise NotFound("no such API key")
            if key.revoked_at is None:
                before = audit.snapshot(key)
                key.revoked_at = _now()
                s.flush()
                audit.write(
                    s,
                    principal,
                    "api_key.revoke",
                    "api_key",
                    key.id,
                    before=before,
                    after=audit.snapshot(key),
                )

    # -- helpers ------------------------------------------------------------------------------

    def _throttle_ip(self, action: str, limit: str, ip: str) -> None:
        retry_after = self.throttle.hit(limit, f"{action}:ip:{ip}")
        if retry_after is not None:
            raise TooManyRequests(
                f"too many attempts; retry in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )

    def _throttle(self, action: str, account: str, ip: str) -> None:
        auth = self.settings.auth
        for limit, key in (
            (auth.login_limit_per_account, f"{action}:account:{account}"),
            (auth.login_limit_per_ip, f"{action}:ip:{ip}"),
        ):
            retry_after = self.throttle.hit(limit, key)
            if retry_after is not None:
                raise TooManyRequests(
                    f"too many attempts; retry in {retry_after} s",
                    headers={"Retry-After": str(retry_after)},
                )
