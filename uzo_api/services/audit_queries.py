"""Reading the audit trail: audit rows, request logs and change history (docs/audit.md).

Who may read: the subscription's owner, or a user holding ``read`` on ``audit`` through a
role (``require_subscription("read", "audit")``), on a plan with the ``audit_logs``
feature. Rows are the tenant's own by RLS. A platform admin may ask for every tenant's
(``all_tenants``); the scope check is ``ctx.authz.platform_scope()`` (403 for anyone
else), and the rows are read on a read-only transaction of the owner role, because the
log tables carry no ``platform_admin`` policy yet (that needs a migration: see
docs/audit.md), so a platform scope in the request session would still see one tenant.

Lists are newest first, in the total order (created_at, id) descending, with keyset
cursors. The time range is a plain comparison on ``created_at``, the partition key, so
PostgreSQL prunes the monthly partitions outside it.

A dedicated tenant's resource changes are audited in its own database and its identity
changes (users, API keys, plan) in the control database (ADR 0014): its lists read both
and merge them; its request logs are in the control database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from uzo_api.db.models import AuditLog, DataChangeHistory, ServerLog
from uzo_api.errors import InvalidInput
from uzo_api.pagination import keyset

if TYPE_CHECKING:
    import datetime as dt
    import uuid

    from sqlalchemy import ColumnElement, Select

    from uzo_api.context import RequestContext
    from uzo_api.db.session import Database
    from uzo_api.pagination import PageRequest
    from uzo_api.services.features import FeatureService

READ_RULE = "read on audit (the owner, or a role); all_tenants: a platform admin"


@dataclass(frozen=True)
class TimeRange:
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def check(self) -> None:
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise InvalidInput("`from` must be before `to`", field="query.from")

    def where(self, column: Any) -> list[ColumnElement[bool]]:
        out = []
        if self.start is not None:
            out.append(column >= self.start)
        if self.end is not None:
            out.append(column < self.end)
        return out


def _equal(pairs: dict[Any, Any]) -> list[ColumnElement[bool]]:
    return [column == value for column, value in pairs.items() if value is not None]


class AuditQueryService:
    def __init__(self, control: Database, features: FeatureService) -> None:
        self.control = control
        self.features = features

    # -- the lists -------------------------------------------------------------------------

    def logs(
        self,
        ctx: RequestContext,
        page: PageRequest,
        *,
        when: TimeRange,
        user_id: uuid.UUID | None = None,
        resource_type: str | None = None,
        resource_id: uuid.UUID | None = None,
        action: str | None = None,
        subscription_id: uuid.UUID | None = None,
        all_tenants: bool = False,
    ) -> list[AuditLog]:
        """Up to ``page.limit + 1`` audit rows, newest first."""
        filters = _equal(
            {
                AuditLog.user_id: user_id,
                AuditLog.resource_type: resource_type,
                AuditLog.resource_id: resource_id,
                AuditLog.action: action,
                AuditLog.subscription_id: subscription_id,
            }
        )
        query = select_where(AuditLog, [*filters, *when.where(AuditLog.created_at)])
        query = keyset(query, page, AuditLog.created_at, AuditLog.id, descending=True)
        return self._run(ctx, query, page, all_tenants=all_tenants, when=when, both=True)

    def server(
        self,
        ctx: RequestContext,
        page: PageRequest,
        *,
        when: TimeRange,
        status: int | None = None,
        method: str | None = None,
        route: str | None = None,
        user_id: uuid.UUID | None = None,
        subscription_id: uuid.UUID | None = None,
        all_tenants: bool = False,
    ) -> list[ServerLog]:
        """Up to ``page.limit + 1`` request logs, newest first (control database)."""
        filters = _equal(
            {
                ServerLog.response_status: status,
                ServerLog.method: method.upper() if method else None,
                ServerLog.endpoint: route,
                ServerLog.user_id: user_id,
                ServerLog.subscription_id: subscription_id,
            }
        )
        query = select_where(ServerLog, [*filters, *when.where(ServerLog.created_at)])
        query = keyset(query, page, ServerLog.created_at, ServerLog.id, descending=True)
        return self._run(ctx, query, page, all_tenants=all_tenants, when=when, control=True)

    def changes(
        self,
        ctx: RequestContext,
        page: PageRequest,
        *,
        when: TimeRange,
        table: str | None = None,
        record_id: uuid.UUID | None = None,
        changed_by: uuid.UUID | None = None,
        subscription_id: uuid.UUID | None = None,
        all_tenants: bool = False,
    ) -> list[DataChangeHistory]:
        """Up to ``page.limit + 1`` before/after images, newest first."""
        model = DataChangeHistory
        filters = _equal(
            {
                model.table_name: table,
                model.record_id: record_id,
                model.changed_by: changed_by,
                model.subscription_id: subscription_id,
            }
        )
        query = select_where(model, [*filters, *when.where(model.created_at)])
        query = keyset(query, page, model.created_at, model.id, descending=True)
        return self._run(ctx, query, page, all_tenants=all_tenants, when=when, both=True)

    # -- where the rows are read -------------------------------------------------------------

    def _run(
        self,
        ctx: RequestContext,
        query: Select[Any],
        page: PageRequest,
        *,
        all_tenants: bool,
        when: TimeRange,
        both: bool = False,
        control: bool = False,
    ) -> list[Any]:
        when.check()
        if all_tenants:
            with ctx.authz.platform_scope():  # 403 unless a platform admin
                return self._every_tenant(query)
        self._may_read(ctx)
        if control or not ctx.dedicated:
            return list((ctx.control if control else ctx.session).scalars(query))
        rows = [*ctx.session.scalars(query), *(ctx.control.scalars(query) if both else [])]
        rows.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return rows[: page.limit + 1]

    def _may_read(self, ctx: RequestContext) -> None:
        ctx.authz.require_subscription("read", "audit")
        self.features.require(ctx, "audit_logs")

    def _every_tenant(self, query: Select[Any]) -> list[Any]:
        """Every tenant's rows of the shared database, read-only, as the owner role."""
        with Session(self.control.owner_engine, expire_on_commit=False) as s, s.begin():
            s.execute(text("SET TRANSACTION READ ONLY"))
            rows = list(s.scalars(query))
            s.expunge_all()
        return rows


def select_where(model: Any, where: list[ColumnElement[bool]]) -> Select[Any]:
    return select(model).where(*where)
