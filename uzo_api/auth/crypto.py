"""Password hashing, JWT access tokens and opaque secrets. No I/O here."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

ALGORITHM = "HS256"  # fixed: the algorithm is never taken from the token header
API_KEY_PREFIX = "uzo_"

_hasher = PasswordHash((Argon2Hasher(),))
# A valid hash of a random password: verified against when no user matches,
# so that a login for an unknown email costs the same time as a wrong password.
_DUMMY_HASH: str | None = None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    global _DUMMY_HASH
    if password_hash is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
        _hasher.verify(password, _DUMMY_HASH)
        return False
    try:
        return _hasher.verify(password, password_hash)
    except Exception:  # a malformed stored hash never authenticates
        return False


def digest(secret: str) -> str:
    """SHA-256 of a high-entropy secret (refresh, reset and API-key secrets)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def digest_matches(secret: str, expected_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), expected_digest)


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


@dataclass(frozen=True)
class NewApiKey:
    token: str  # shown once
    prefix: str
    key_hash: str


def new_api_key() -> NewApiKey:
    prefix = secrets.token_hex(6)
    token = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    return NewApiKey(token=token, prefix=prefix, key_hash=digest(token))


def api_key_prefix(token: str) -> str | None:
    """The lookup prefix of a well-formed API key, or None."""
    if not token.startswith(API_KEY_PREFIX):
        return None
    prefix, sep, rest = token[len(API_KEY_PREFIX) :].partition("_")
    if not sep or len(prefix) != 12 or not rest:
        return None
    return prefix


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    subscription_id: uuid.UUID
    family_id: uuid.UUID
    issued_at: dt.datetime


class InvalidToken(Exception):
    """The access token is malformed, tampered, expired or of the wrong kind."""


def encode_access_token(
    *,
    secret: str,
    issuer: str,
    user_id: uuid.UUID,
    subscription_id: uuid.UUID,
    family_id: uuid.UUID,
    ttl_seconds: int,
    now: dt.datetime | None = None,
) -> str:
    now = now or dt.datetime.now(dt.UTC)
    payload: dict[str, Any] = {
        "iss": issuer,
        "sub": str(user_id),
        "sid": str(subscription_id),
        "fam": str(family_id),
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def decode_access_token(token: str, *, secret: str, issuer: str) -> AccessClaims:
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=issuer,
            options={"require": ["exp", "iat", "sub", "sid", "fam", "typ", "iss"]},
        )
        if payload["typ"] != "access":
            raise InvalidToken("not an access token")
        for claim in ("sub", "sid", "fam"):
            if not isinstance(payload[claim], str):  # a list or object is no id
                raise InvalidToken(f"claim {claim!r} is not a string")
        if not isinstance(payload["iat"], int | float) or isinstance(payload["iat"], bool):
            raise InvalidToken("claim 'iat' is not a number")
        return AccessClaims(
            user_id=uuid.UUID(payload["sub"]),
            subscription_id=uuid.UUID(payload["sid"]),
            family_id=uuid.UUID(payload["fam"]),
            issued_at=dt.datetime.fromtimestamp(int(payload["iat"]), dt.UTC),
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    except (KeyError, ValueError, TypeError, AttributeError, OverflowError) as exc:
        raise InvalidToken("malformed claims") from exc
