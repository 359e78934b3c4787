"""Audit rows, written in the transaction of the change they record.

A change that commits has its row; one that rolls back has none. The row goes to the
acting principal's tenant, with the request id the request-logging middleware bound.

A change may also carry the before and after images of the row it touched
(``before=``/``after=``): they go to ``data_change_history`` in the same transaction,
built by :func:`snapshot` from the row's columns with every secret column left out
(``REDACTED_COLUMNS``: password and token hashes, encrypted credentials, a dedicated
tenant's database address), so no secret ever reaches audit data.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import inspect

from uzo_api.db.models import AuditLog, DataChangeHistory

if TYPE_CHECKING:
    from collections.abc import Mapping

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


def request_id() -> str | None:
    """The current request's id (as the audit column holds it), if any."""
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value)[:64] if value else None


def snapshot(row: Any) -> dict[str, Any]:
    """A JSON-safe image of an ORM row's columns, secrets left out (``REDACTED_COLUMNS``)."""
    mapper = inspect(row).mapper
    image: dict[str, Any] = {}
    for attr in mapper.column_attrs:
        if attr.key in REDACTED_COLUMNS or attr.columns[0].name in REDACTED_COLUMNS:
            continue
        image[attr.key] = _json_safe(getattr(row, attr.key))
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
) -> None:
    """Add the audit row of ``action`` on a resource to the request's session.

    ``before``/``after``: images from :func:`snapshot` (take ``before`` ahead of the
    change); with either, a ``data_change_history`` row of ``table`` (the resource
    type's table by default) records them: an insert has only ``after``, a delete
    only ``before``.
    """
    ctx.session.add(
        AuditLog(
            subscription_id=ctx.principal.subscription_id,
            user_id=ctx.principal.user_id,
            api_key_id=ctx.principal.api_key_id,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            changes=changes,
            request_id=request_id(),
        )
    )
    if before is None and after is None:
        return
    operation = "insert" if before is None else "delete" if after is None else "update"
    ctx.session.add(
        DataChangeHistory(
            subscription_id=ctx.principal.subscription_id,
            table_name=table or _TABLES.get(resource_type, resource_type),
            record_id=resource_id,
            operation=operation,
            old_data=_redacted(before),
            new_data=_redacted(after),
            version_number=version_number,
            changed_by=ctx.principal.user_id,
        )
    )


def _redacted(image: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An image as given, minus any secret column a caller left in (belt and braces)."""
    if image is None:
        return None
    return {k: _json_safe(v) for k, v in image.items() if k not in REDACTED_COLUMNS}


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
