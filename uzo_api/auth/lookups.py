"""Cross-tenant lookups that must find a tenant before it is known.

Each is a SECURITY DEFINER function created by the migrations: it returns only
ids, and the caller then works inside that tenant under Row-Level Security.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import text

if TYPE_CHECKING:
    import uuid

    from sqlalchemy.orm import Session


def _pair(session: Session, sql: str, value: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    row = session.execute(text(sql), {"v": value}).first()
    return (row[0], row[1]) if row is not None else None


def user_by_email(session: Session, email: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(user_id, subscription_id) of an active user with that email."""
    return _pair(session, "SELECT * FROM uzo_lookup_login(:v)", email)


def api_key_by_prefix(session: Session, prefix: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    return _pair(session, "SELECT * FROM uzo_lookup_api_key(:v)", prefix)


def refresh_token_by_hash(session: Session, token_hash: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    return _pair(session, "SELECT * FROM uzo_lookup_refresh_token(:v)", token_hash)


def reset_token_by_hash(session: Session, token_hash: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    return _pair(session, "SELECT * FROM uzo_lookup_reset_token(:v)", token_hash)
