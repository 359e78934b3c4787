"""Audit rows, written in the transaction of the change they record.

A change that commits has its row; one that rolls back has none. The row goes to the
acting principal's tenant, with the request id the request-logging middleware bound.

A change may also carry the before and after images of the row it touched
(``before=``/``after=``): they go to ``data_change_history`` in the same transaction,
built by :func:`snapshot` from the row's columns with every secret column left out
(``REDACTED_COLUMNS``: password and token hashes, encrypted credentials, a dedicated
tenant's database address) and, per table, the keys of JSON columns that look secret
(``REDACTED_KEYS``), so no secret ever reaches audit data.

Identity changes (users, API keys, passwords: ``identity=True``) are written to the
control session, the transaction of the change itself, which for a dedicated tenant is
not the tenant's resource database (ADR 0014); the audit queries read both.

:func:`set_writing` switches the writing off process-wide: for the audit benchmark's
"off" rounds only (``UZO_AUDIT_ENABLED=false``); a server never runs so.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import inspect, text
from sqlalchemy.dialects.postgresql import JSONB

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy.orm import Session

    from uzo_api.auth.principal import Principal
    from uzo_api.context import RequestContext

#: columns never copied into an audit image, whatever the table
REDACTED_COLUMNS = frozenset(
    {
        "password_hash",
        "key_hash",
        "token_hash",
        "encrypted_credentials",
        "dedicated_database_url",
    }
)
#: JSON columns whose keys that look secret are left out of an image, by table
REDACTED_KEYS: dict[str, frozenset[str]] = {"connectors": frozenset({"connection_config"})}
_SECRET_WORDS = ("password", "secret", "token", "credential", "private_key", "api_key", "apikey")

_writing = True


def set_writing(enabled: bool) -> None:
    """Audit rows on (the default) or off, for the whole process (benchmark only)."""
    global _writing
    _writing = enabled


def looks_secret(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS) or lowered.endswith("_key")


def without_masked(config: Mapping[str, Any], mask: str | None = None) -> dict[str, Any]:
    """A config with every secret-looking (or ``mask``-ed) entry left out, nested too."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if (mask is not None and value == mask) or looks_secret(str(key)):
            continue
        out[str(key)] = without_masked(value, mask) if isinstance(value, dict) else value
    return out


def request_id() -> str | None:
    """The current request's id (as the audit column holds it), if any."""
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value)[:64] if value else None


def snapshot(row: Any) -> dict[str, Any]:
    """A JSON-safe image of an ORM row's columns, secrets left out (``REDACTED_COLUMNS``)."""
    mapper = inspect(row).mapper
    json_columns = REDACTED_KEYS.get(str(mapper.local_table.name), frozenset())
    image: dict[str, Any] = {}
    for attr in mapper.column_attrs:
        if attr.key in REDACTED_COLUMNS or attr.columns[0].name in REDACTED_COLUMNS:
            continue
        value = getattr(row, attr.key)
        if attr.key in json_columns and isinstance(value, dict):
            value = without_masked(value)
        if isinstance(attr.columns[0].type, JSONB):
            image[attr.key] = value  # JSON already: a workflow's diagram is not walked
        else:
            image[attr.key] = _json_safe(value)
    return image


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return str(value)


def record(
    ctx: RequestContext,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID,
    changes: dict[str, Any] | None = None,
    *,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    table: str | None = None,
    version_number: int | None = None,
    identity: bool = False,
) -> None:
    """Add the audit row of ``action`` on a resource to the request's session.

    ``before``/``after``: images from :func:`snapshot` (take ``before`` ahead of the
    change); with either, a ``data_change_history`` row of ``table`` (the resource
    type's table by default) records them: an insert has only ``after``, a delete
    only ``before``. ``identity``: the change is to identity rows (users, API keys,
    passwords) made in ``ctx.control``, so the rows go there, into its transaction.
    """
    write(
        ctx.control if identity else ctx.session,
        ctx.principal,
        action,
        resource_type,
        resource_id,
        changes,
        before=before,
        after=after,
        table=table,
        version_number=version_number,
    )


def write(
    session: Session,
    principal: Principal,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID,
    changes: dict[str, Any] | None = None,
    *,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    table: str | None = None,
    version_number: int | None = None,
) -> None:
    """:func:`record` for a service that holds a session of its own rather than a
    request context (API keys, password resets): the rows join that session's
    transaction, in the principal's tenant."""
    if not _writing:
        return
    params: dict[str, Any] = {
        "id": uuid.uuid4(),
        "sid": principal.subscription_id,
        "uid": principal.user_id,
        "kid": principal.api_key_id,
        "action": action,
        "rtype": resource_type,
        "rid": resource_id,
        "changes": _dumps(changes),
        "req": request_id(),
    }
    if before is None and after is None:
        session.execute(_AUDIT_ONLY, params)
        return
    params.update(
        hid=uuid.uuid4(),
        table=table or _TABLES.get(resource_type, resource_type),
        op="insert" if before is None else "delete" if after is None else "update",
        old=_redacted(before),
        new=_redacted(after),
        ver=version_number,
    )
    session.execute(_AUDIT_AND_IMAGES, params)


# One statement (one round trip) for the audit row and its images, executed at once in
# the session's transaction: the ORM's unit of work would send two INSERTs at the next
# flush, each with a RETURNING of the server-made created_at it does not need.
_AUDIT_ROW = """
    INSERT INTO audit_logs (id, subscription_id, user_id, api_key_id, action, resource_type,
                            resource_id, changes, request_id, status)
    VALUES (:id, :sid, :uid, :kid, :action, :rtype, :rid, CAST(:changes AS jsonb), :req,
            'success')
"""
_AUDIT_ONLY = text(_AUDIT_ROW)
_AUDIT_AND_IMAGES = text(
    f"""
    WITH audit AS ({_AUDIT_ROW})
    INSERT INTO data_change_history (id, subscription_id, table_name, record_id, operation,
                                     old_data, new_data, version_number, changed_by)
    VALUES (:hid, :sid, :table, :rid, :op, CAST(:old AS jsonb), CAST(:new AS jsonb), :ver,
            :uid)
    """
)


def _redacted(image: Mapping[str, Any] | None) -> str | None:
    """An image as JSON text, minus any secret column a caller left in (belt and braces)."""
    if image is None:
        return None
    return _dumps({k: v for k, v in image.items() if k not in REDACTED_COLUMNS})


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=_json_default)


def _json_default(value: Any) -> Any:
    """What json cannot write itself (ids, times, decimals) as :func:`snapshot` would."""
    safe = _json_safe(value)
    return safe if safe is not value else str(value)


# resource types whose table is not simply their plural
_TABLES = {
    "workspace": "workspaces",
    "folder": "folders",
    "job": "jobs",
    "workflow": "workflows",
    "jobpackage": "jobpackages",
    "connector": "connectors",
    "user": "users",
    "group": "groups",
    "role": "roles",
    "subscription": "subscriptions",
    "api_key": "api_keys",
    "version": "versions",
    "permission": "object_permissions",
}
