"""Soft delete with cascade, restore, hard delete, and the deletion log they write.

A soft delete of a workspace, folder, job, workflow or job package stamps
``deleted_at``/``deleted_by`` (one timestamp) on the object and on every *live* object
under it: a workspace's folders, their jobs and the jobs' workflows; a folder's
sub-folders at every depth with theirs; a job's workflows. It writes one
``deletion_logs`` row naming the object, the exact ids it stamped per resource type
(``cascaded_ids``, their counts in ``cascaded_counts``) and ``restore_deadline`` (now
+ ``UZO_HISTORY_RESTORE_DAYS``), plus the audit row, all in the request's transaction.

A restore brings back the log's ids that still carry its timestamp, and nothing else:
what was deleted on its own before stays deleted (it has its own log). It is refused,
before anything changes, when the window has closed or the rows were purged (410),
when the log was restored already (409), when the object's parent is deleted (409
naming it: restore that first), when a live object of the same parent took the name
meanwhile (409 naming it), or when the plan has no room for the workflows it brings
back (403 ``plan-limit``). The partial unique indexes on live names stand behind the
name check, so a race ends in a 409 and a rollback: nothing is ever half-restored.

A hard delete (:meth:`DeletionService.purge`) removes a soft-deleted object and
everything under it for real, with their grants and workflow versions (and the
connectors bound to a purged workspace); ``uzo db purge`` does the same for every
deletion older than the window (:func:`remove_rows`). Levels: deleting, restoring and
purging need admin on the object (the subscription's owner holds it everywhere).

Who reads the log (:meth:`DeletionService.page`): the subscription's owner all of it;
a member the deletions they made, and those of the types on which a role gives them
admin on every object; a platform admin every tenant's, with ``all_tenants``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import and_, any_, delete, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from uzo_api.db.models import (
    Connector,
    DeletionLog,
    Folder,
    Job,
    JobPackage,
    ObjectPermission,
    Version,
    Workflow,
    Workspace,
)
from uzo_api.errors import Conflict, Gone, NotFound
from uzo_api.pagination import keyset
from uzo_api.services import audit
from uzo_api.services.workspaces import lock_tree

if TYPE_CHECKING:
    import uuid
    from collections.abc import Callable

    from sqlalchemy import ColumnElement
    from sqlalchemy.orm import Session

    from uzo_api.context import RequestContext
    from uzo_api.pagination import PageRequest
    from uzo_api.services.limits import LimitsService

Action = Literal["soft", "restored", "hard"]
Status = Literal["restorable", "expired", "restored", "purged"]


@dataclass(frozen=True)
class Kind:
    model: Any
    plural: str
    name_column: str


KINDS: dict[str, Kind] = {
    "workspace": Kind(Workspace, "workspaces", "workspace_name"),
    "folder": Kind(Folder, "folders", "folder_name"),
    "job": Kind(Job, "jobs", "job_name"),
    "workflow": Kind(Workflow, "workflows", "workflow_name"),
    "jobpackage": Kind(JobPackage, "jobpackages", "package_name"),
}
MODELS_BY_PLURAL: dict[str, Any] = {k.plural: k.model for k in KINDS.values()}
#: the order rows are removed for real: children before what holds them
PURGE_ORDER = ("workflows", "jobs", "jobpackages", "folders", "workspaces")


@dataclass(frozen=True)
class DeletionFilters:
    user_id: uuid.UUID | None = None
    resource_type: str | None = None
    resource_id: uuid.UUID | None = None
    action: Action | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def status_of(log: DeletionLog, now: dt.datetime) -> Status:
    """``restorable``, ``expired`` (window closed, not purged yet), ``restored``, or
    ``purged`` (its rows are gone for good)."""
    if log.purged_at is not None or not log.is_soft_delete:
        return "purged"
    if log.restored_at is not None:
        return "restored"
    if log.restore_deadline is not None and log.restore_deadline <= now:
        return "expired"
    return "restorable"


class DeletionService:
    """Stateless but for its settings: every method works in ``ctx.session``."""

    def __init__(self, limits: LimitsService, restore_days: int) -> None:
        self.limits = limits
        self.window = dt.timedelta(days=restore_days)

    # -- soft delete ----------------------------------------------------------------------------

    def delete(self, ctx: RequestContext, resource_type: str, object_id: uuid.UUID) -> DeletionLog:
        """Soft-delete the object and every live object under it; their log."""
        kind = KINDS[resource_type]
        s, me = ctx.session, ctx.principal.user_id
        row = ctx.authz.load(resource_type, object_id)
        _lock(s, resource_type, row)
        row = s.get(kind.model, object_id, with_for_update=True, populate_existing=True)
        if row is None or row.deleted_at is not None:  # deleted meanwhile
            raise NotFound(f"no such {resource_type}")
        ctx.authz.require_row("admin", resource_type, row)
        before = audit.snapshot(row)
        now = dt.datetime.now(dt.UTC)
        gone = {"deleted_at": now, "deleted_by": me}
        _stamp(s, kind.model, kind.model.id == row.id, gone)
        cascaded = _cascade(s, resource_type, row.id, gone)
        log = DeletionLog(
            subscription_id=ctx.principal.subscription_id,
            resource_type=resource_type,
            resource_id=row.id,
            resource_name=str(getattr(row, kind.name_column))[:300],
            cascaded_counts={plural: len(ids) for plural, ids in cascaded.items()},
            cascaded_ids={plural: [str(i) for i in ids] for plural, ids in cascaded.items()},
            is_soft_delete=True,
            deleted_by=me,
            deleted_at=now,
            restore_deadline=now + self.window,
        )
        s.add(log)
        s.flush()
        s.refresh(row)
        audit.record(
            ctx,
            f"{resource_type}.delete",
            resource_type,
            row.id,
            {"deletion_id": str(log.id), "cascaded": dict(log.cascaded_counts)},
            before=before,
            after=audit.snapshot(row),
        )
        return log

    # -- restore --------------------------------------------------------------------------------

    def restore(self, ctx: RequestContext, deletion_id: uuid.UUID) -> DeletionLog:
        """Bring back exactly what the deletion took (see the module's docstring)."""
        log = ctx.session.get(DeletionLog, deletion_id)
        if log is None:
            raise NotFound("no such deletion")
        self._restore(ctx, log)
        return log

    def restore_object(self, ctx: RequestContext, resource_type: str, object_id: uuid.UUID) -> Any:
        """Restore the latest deletion of this object itself; the object, restored."""
        s = ctx.session
        kind = KINDS[resource_type]
        log = s.scalar(
            _open_logs()
            .where(DeletionLog.resource_type == resource_type, DeletionLog.resource_id == object_id)
            .order_by(DeletionLog.deleted_at.desc())
            .limit(1)
        )
        if log is None:
            row = s.get(kind.model, object_id)
            if row is None or row.deleted_at is None:
                raise NotFound(f"no such deleted {resource_type}")
            ctx.authz.require_row("admin", resource_type, row)
            holder = s.scalar(
                _open_logs()
                .where(DeletionLog.cascaded_ids.contains({kind.plural: [str(object_id)]}))
                .order_by(DeletionLog.deleted_at.desc())
                .limit(1)
            )
            if holder is None:
                raise NotFound(f"no restorable deletion of this {resource_type}")
            raise Conflict(
                f"this {resource_type} was deleted with {holder.resource_type} "
                f"{holder.resource_name!r} ({holder.resource_id}): restore that one "
                f"(POST /api/deletions/{holder.id}/restore)"
            )
        return self._restore(ctx, log)

    def _restore(self, ctx: RequestContext, log: DeletionLog) -> Any:
        s, me = ctx.session, ctx.principal.user_id
        kind = KINDS.get(log.resource_type)
        row = None if kind is None else s.get(kind.model, log.resource_id)
        if kind is None or row is None:
            raise Gone(f"the deleted {log.resource_type} no longer exists: it was purged")
        ctx.authz.require_row("admin", log.resource_type, row)
        _lock(s, log.resource_type, row)
        s.refresh(log, with_for_update=True)
        s.refresh(row)
        now = dt.datetime.now(dt.UTC)
        state = status_of(log, now)
        if state == "purged":
            raise Gone(f"this deletion was purged at {log.purged_at}: nothing is left to restore")
        if state == "restored":
            raise Conflict(f"this deletion was restored already, at {log.restored_at}")
        if state == "expired":
            raise Gone(f"the restore window of this deletion closed at {log.restore_deadline}")
        if row.deleted_at != log.deleted_at:
            raise Conflict(f"the {log.resource_type} is no longer deleted by this deletion")
        _require_live_parent(s, log.resource_type, row)
        _require_free_name(s, log.resource_type, row)
        ids = {plural: list(values) for plural, values in (log.cascaded_ids or {}).items()}
        workflows = len(ids.get("workflows", [])) + (log.resource_type == "workflow")
        if workflows:
            self.limits.reserve(s, ctx.principal.subscription_id, "workflows", workflows)
        before = audit.snapshot(row)
        back = {"deleted_at": None, "deleted_by": None}
        _stamp(s, kind.model, _stamped(kind.model, [row.id], log.deleted_at), back)
        restored = {
            plural: len(
                _stamp(
                    s,
                    MODELS_BY_PLURAL[plural],
                    _stamped(MODELS_BY_PLURAL[plural], values, log.deleted_at),
                    back,
                )
            )
            for plural, values in ids.items()
            if plural in MODELS_BY_PLURAL
        }
        done = s.execute(
            update(DeletionLog)
            .where(
                DeletionLog.id == log.id,
                DeletionLog.restored_at.is_(None),
                DeletionLog.purged_at.is_(None),
            )
            .values(restored_at=now, restored_by=me),
            execution_options={"synchronize_session": False},
        )
        if getattr(done, "rowcount", 0) != 1:  # a guarded update, checked for its one row
            raise Conflict("this deletion was restored or purged meanwhile")
        s.flush()
        s.expire_all()
        s.refresh(row)
        audit.record(
            ctx,
            f"{log.resource_type}.restore",
            log.resource_type,
            row.id,
            {"deletion_id": str(log.id), "restored": restored},
            before=before,
            after=audit.snapshot(row),
        )
        return row

    # -- hard delete ----------------------------------------------------------------------------

    def purge(self, ctx: RequestContext, deletion_id: uuid.UUID) -> DeletionLog:
        """Remove a soft-deleted object and everything under it for real (admin on it)."""
        s, me = ctx.session, ctx.principal.user_id
        log = s.get(DeletionLog, deletion_id)
        if log is None:
            raise NotFound("no such deletion")
        kind = KINDS.get(log.resource_type)
        row = None if kind is None else s.get(kind.model, log.resource_id)
        if kind is None or row is None:
            raise Gone(f"the deleted {log.resource_type} no longer exists: it was purged")
        ctx.authz.require_row("admin", log.resource_type, row)
        _lock(s, log.resource_type, row)
        s.refresh(log, with_for_update=True)
        s.refresh(row)
        if log.purged_at is not None or not log.is_soft_delete:
            raise Gone(f"this deletion was purged already, at {log.purged_at}")
        if log.restored_at is not None or row.deleted_at is None:
            raise Conflict(
                f"the {log.resource_type} was restored: delete it again to purge it (a hard "
                "delete only removes what is soft-deleted)"
            )
        before = audit.snapshot(row)
        removed = remove_rows(s, _subtree(log.resource_type, row.id), by=me)
        s.expire_all()
        s.refresh(log)
        audit.record(
            ctx,
            f"{log.resource_type}.purge",
            log.resource_type,
            log.resource_id,
            {"deletion_id": str(log.id), "removed": removed},
            before=before,
        )
        return log

    # -- the log --------------------------------------------------------------------------------

    def page(
        self,
        ctx: RequestContext,
        page: PageRequest,
        filters: DeletionFilters,
        *,
        all_tenants: bool = False,
    ) -> list[DeletionLog]:
        """Up to ``page.limit + 1`` deletions, newest first (then by id)."""
        query = select(DeletionLog).where(*_filters(filters))
        across = all_tenants and ctx.authz.is_platform_admin()
        if filters.resource_id is not None and not across:
            _require_known(ctx.session, filters.resource_id)
        if all_tenants:  # refused (403) for anyone but a platform admin
            with ctx.authz.platform_scope():
                return self._run_page(ctx.session, query, page)
        readable = ctx.authz.subscription_wide("admin", KINDS)
        if readable != set(KINDS):
            query = query.where(
                or_(
                    DeletionLog.deleted_by == ctx.principal.user_id,
                    DeletionLog.resource_type.in_(sorted(readable)),
                )
            )
        return self._run_page(ctx.session, query, page)

    @staticmethod
    def _run_page(s: Session, query: Any, page: PageRequest) -> list[DeletionLog]:
        ordered = keyset(query, page, DeletionLog.deleted_at, DeletionLog.id, descending=True)
        return list(s.scalars(ordered))


# -- removing rows for real (the API's hard delete and `uzo db purge`) -------------------------


def remove_rows(
    s: Session,
    which: Callable[[Any], ColumnElement[bool] | None],
    *,
    by: uuid.UUID | None,
) -> dict[str, int]:
    """Delete, children first, the soft-deleted rows of each type that ``which(model)``
    selects (None: none of that type), with the grants on them, the versions of the
    workflows, and the connectors bound to a removed workspace; mark the open deletion
    logs of removed objects purged. The count removed per type."""
    counts: dict[str, int] = {}
    removed: list[uuid.UUID] = []
    for plural in PURGE_ORDER:
        model = MODELS_BY_PLURAL[plural]
        where = which(model)
        if where is None:
            continue
        where = and_(where, model.deleted_at.is_not(None))
        if model is Workspace:
            bound = _removed(
                s,
                delete(Connector)
                .where(Connector.workspace_id.in_(select(Workspace.id).where(where)))
                .returning(Connector.id),
            )
            removed += bound
            counts["connectors"] = len(bound)
        ids = _removed(s, delete(model).where(where).returning(model.id))
        counts[plural] = len(ids)
        removed += ids
        if model is Workflow and ids:
            s.execute(
                delete(Version).where(
                    Version.resource_type == "workflow", Version.resource_id == any_(_array(ids))
                ),
                execution_options={"synchronize_session": False},
            )
    if removed:
        s.execute(
            delete(ObjectPermission).where(ObjectPermission.object_id == any_(_array(removed))),
            execution_options={"synchronize_session": False},
        )
        s.execute(
            update(DeletionLog)
            .where(
                DeletionLog.resource_id == any_(_array(removed)),
                DeletionLog.purged_at.is_(None),
                DeletionLog.restored_at.is_(None),
            )
            .values(purged_at=func.now(), purged_by=by),
            execution_options={"synchronize_session": False},
        )
    return counts


def _require_known(s: Session, resource_id: uuid.UUID) -> None:
    """404 for a resource the tenant never had (or another tenant's: RLS hides both),
    as every filter naming an object answers; one with no deletion is an empty page."""
    known = [select(DeletionLog.id).where(DeletionLog.resource_id == resource_id).exists()]
    known += [select(k.model.id).where(k.model.id == resource_id).exists() for k in KINDS.values()]
    if not s.scalar(select(or_(*known))):
        raise NotFound("no such resource", field="query.resource_id")


def older_than(cutoff: dt.datetime) -> Callable[[Any], ColumnElement[bool]]:
    """``which`` for :func:`remove_rows`: everything deleted before ``cutoff``."""
    return lambda model: model.deleted_at < cutoff


# -- helpers ------------------------------------------------------------------------------------


def _open_logs() -> Any:
    return select(DeletionLog).where(
        DeletionLog.is_soft_delete.is_(True),
        DeletionLog.restored_at.is_(None),
        DeletionLog.purged_at.is_(None),
    )


def _filters(f: DeletionFilters) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if f.user_id is not None:
        where.append(DeletionLog.deleted_by == f.user_id)
    if f.resource_type is not None:
        where.append(DeletionLog.resource_type == f.resource_type)
    if f.resource_id is not None:
        where.append(DeletionLog.resource_id == f.resource_id)
    if f.since is not None:
        where.append(DeletionLog.deleted_at >= f.since)
    if f.until is not None:
        where.append(DeletionLog.deleted_at < f.until)
    if f.action == "restored":
        where.append(DeletionLog.restored_at.is_not(None))
    elif f.action == "hard":
        where.append(or_(DeletionLog.purged_at.is_not(None), DeletionLog.is_soft_delete.is_(False)))
    elif f.action == "soft":
        where += [
            DeletionLog.is_soft_delete.is_(True),
            DeletionLog.restored_at.is_(None),
            DeletionLog.purged_at.is_(None),
        ]
    return where


def _array(ids: list[Any]) -> Any:
    return literal([str(i) for i in ids], type_=ARRAY(UUID(as_uuid=False)))


def _stamped(model: Any, ids: list[Any], when: dt.datetime | None) -> ColumnElement[bool]:
    """Those of ``ids`` that still carry the deletion's timestamp."""
    return and_(model.id == any_(_array(ids)), model.deleted_at == when)


def _stamp(s: Session, model: Any, where: ColumnElement[bool], values: dict[str, Any]) -> list[Any]:
    """Set ``values`` on the rows matched that are live (a delete) or deleted (a restore);
    their ids, in a stable order."""
    deleting = values.get("deleted_at") is not None
    state = model.deleted_at.is_(None) if deleting else model.deleted_at.is_not(None)
    ids = s.scalars(
        update(model).where(where, state).values(values).returning(model.id),
        execution_options={"synchronize_session": False},
    )
    return sorted(ids, key=str)


def _removed(s: Session, statement: Any) -> list[uuid.UUID]:
    return list(s.scalars(statement, execution_options={"synchronize_session": False}))


def _cascade(
    s: Session, resource_type: str, root: uuid.UUID, gone: dict[str, Any]
) -> dict[str, list[uuid.UUID]]:
    """Stamp the live objects under ``root``; their ids per resource type."""
    out: dict[str, list[uuid.UUID]] = {}
    jobs = [root]
    if resource_type in ("workspace", "folder"):
        if resource_type == "workspace":
            out["folders"] = _stamp(s, Folder, Folder.workspace_id == root, gone)
            folders = out["folders"]
        else:
            out["folders"] = _stamp(s, Folder, Folder.ancestor_ids.contains([root]), gone)
            folders = [root, *out["folders"]]
        out["jobs"] = jobs = _stamp(s, Job, Job.folder_id == any_(_array(folders)), gone)
    if resource_type in ("workspace", "folder", "job"):
        out["workflows"] = _stamp(s, Workflow, Workflow.job_id == any_(_array(jobs)), gone)
    return out


def _subtree(resource_type: str, root: uuid.UUID) -> Callable[[Any], ColumnElement[bool] | None]:
    """``which`` for :func:`remove_rows`: the object and everything under it (all of it
    deleted: nothing live is ever under a deleted object)."""
    model = KINDS[resource_type].model
    conditions: dict[Any, ColumnElement[bool]] = {model: model.id == root}
    jobs = select(Job.id).where(Job.id == root)
    if resource_type in ("workspace", "folder"):
        folders = select(Folder.id).where(
            Folder.workspace_id == root
            if resource_type == "workspace"
            else or_(Folder.id == root, Folder.ancestor_ids.contains([root]))
        )
        jobs = select(Job.id).where(Job.folder_id.in_(folders))
        conditions[Folder] = Folder.id.in_(folders)
        conditions[Job] = Job.folder_id.in_(folders)
    if resource_type in ("workspace", "folder", "job"):
        conditions[Workflow] = Workflow.job_id.in_(jobs)
    return conditions.get


def _lock(s: Session, resource_type: str, row: Any) -> None:
    """The workspace's tree lock, for a change to the shape of its tree."""
    if resource_type == "workspace":
        lock_tree(s, row.id)
    elif resource_type == "folder":
        lock_tree(s, row.workspace_id)


def _require_live_parent(s: Session, resource_type: str, row: Any) -> None:
    """409 naming the parent when it is deleted: it must come back first."""
    parents: list[tuple[str, Any, Any]] = []
    if resource_type == "folder":
        parents.append(("workspace", Workspace, row.workspace_id))
        if row.parent_folder_id is not None:
            parents.append(("folder", Folder, row.parent_folder_id))
    elif resource_type == "job":
        parents.append(("folder", Folder, row.folder_id))
    elif resource_type == "workflow":
        parents.append(("job", Job, row.job_id))
    for what, model, parent_id in parents:
        parent = s.get(model, parent_id)
        if parent is None:
            raise Gone(f"its {what} ({parent_id}) was purged: this cannot come back")
        if parent.deleted_at is not None:
            name = getattr(parent, KINDS[what].name_column)
            raise Conflict(
                f"its {what} {name!r} ({parent.id}) is deleted: restore the {what} first"
            )


def _require_free_name(s: Session, resource_type: str, row: Any) -> None:
    """409 naming the live object of the same parent that took the name meanwhile."""
    kind = KINDS[resource_type]
    model = kind.model
    column = getattr(model, kind.name_column)
    name = getattr(row, kind.name_column)
    scope: ColumnElement[bool]
    if model is Folder:
        parent = row.parent_folder_id or row.workspace_id
        scope = func.coalesce(Folder.parent_folder_id, Folder.workspace_id) == parent
    elif model is Job:
        scope = Job.folder_id == row.folder_id
    elif model is Workflow:
        scope = Workflow.job_id == row.job_id
    else:
        scope = model.subscription_id == row.subscription_id
    taken = s.scalar(
        select(model.id)
        .where(scope, column == name, model.deleted_at.is_(None), model.id != row.id)
        .limit(1)
    )
    if taken is not None:
        raise Conflict(
            f"a {resource_type} named {name!r} ({taken}) was created in its place meanwhile: "
            f"rename that one, then restore",
            field="name",
        )
