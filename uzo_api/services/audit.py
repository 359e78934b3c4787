"""Audit rows, written in the transaction of the change they record.

A change that commits has its row; one that rolls back has none. The row goes to the
acting principal's tenant, with the request id the request-logging middleware bound.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from uzo_api.db.models import AuditLog

if TYPE_CHECKING:
    import uuid

    from uzo_api.context import RequestContext


def request_id() -> str | None:
    """The current request's id (as the audit column holds it), if any."""
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value)[:64] if value else None


def record(
    ctx: RequestContext,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID,
    changes: dict[str, Any] | None = None,
) -> None:
    """Add the audit row of ``action`` on a resource to the request's session."""
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
