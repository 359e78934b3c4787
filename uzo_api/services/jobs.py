"""Jobs (a folder's units that hold workflows) and job packages (ordered sets of jobs).

Every method takes the request's context and works in its tenant session: the
authorization and the change share the request's transaction. Deleting and restoring
are :mod:`uzo_api.services.deletions`.

Versions: an object's entity tag is its ``updated_at`` (set from the database's clock at
each change, so two changes never share it). A change with ``If-Match`` locks the row
first, then compares, so two clients that read the same version cannot both write it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, true

from uzo_api.db.models import Folder, Job, JobPackage, JobPackageJob
from uzo_api.errors import FieldError, Forbidden, InvalidInput, NotFound, PreconditionFailed
from uzo_api.pagination import keyset
from uzo_api.services import audit

if TYPE_CHECKING:
    import uuid

    from sqlalchemy import ColumnElement
    from sqlalchemy.orm import InstrumentedAttribute, Session

    from uzo_api.context import RequestContext
    from uzo_api.pagination import PageRequest

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# -- versions and filters: shared by jobs, job packages and workflows -------------------


def entity_tag(updated_at: dt.datetime) -> str:
    """The version of a row as an HTTP entity tag (strong: the row's representation is a
    function of its stored version, and ``If-Match`` compares tags strongly)."""
    micros = (updated_at - _EPOCH) // dt.timedelta(microseconds=1)
    return f'"{micros:x}"'


def check_if_match(if_match: str | None, current: str, what: str) -> None:
    """Nothing when ``If-Match`` is absent, ``*`` or lists the current tag; else 412.

    A tag weakened on the way (``W/"..."``, as a compressing proxy does) still names the
    version it was given for, so it is compared by its opaque part.
    """
    if if_match is None or if_match.strip() == "*":
        return
    offered = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if current not in offered:
        raise PreconditionFailed(
            f"the {what} changed since you read it (it is now at {current}): read it again "
            "and reapply your change",
            headers={"ETag": current},
        )


def name_filter(column: InstrumentedAttribute[str], name: str | None) -> ColumnElement[bool]:
    """Case-insensitive substring match; ``%``, ``_`` and the escape character are literal."""
    return column.icontains(name, autoescape=True) if name else true()


def lock(s: Session, model: Any, object_id: uuid.UUID, what: str) -> Any:
    """The row again, locked until the transaction ends, with its current values."""
    row = s.get(model, object_id, with_for_update=True, populate_existing=True)
    if row is None or row.deleted_at is not None:  # deleted meanwhile
        raise NotFound(f"no such {what}")
    return row


def touch(s: Session, row: Any) -> None:
    """Record a change: a new ``updated_at`` (the clock's, not the transaction's start)."""
    row.updated_at = func.clock_timestamp()
    s.flush()
    s.refresh(row)


def apply_changes(row: Any, changes: dict[str, Any], columns: dict[str, str]) -> bool:
    """Set the given API fields on their columns; whether anything changed."""
    changed = False
    for field, value in changes.items():
        column = columns[field]
        if getattr(row, column) != value:
            setattr(row, column, value)
            changed = True
    return changed


JOB_COLUMNS = {"name": "job_name", "description": "description"}
PACKAGE_COLUMNS = {"name": "package_name", "description": "description"}


class JobService:
    def create(
        self, ctx: RequestContext, folder_id: uuid.UUID, *, name: str, description: str | None
    ) -> Job:
        """A job in a folder: needs read_write on the folder."""
        folder = ctx.authz.require("read_write", "folder", folder_id)
        # a share lock on the folder until commit: a delete of the folder waits for this
        # job and then takes it along, or it went first and the job is refused (404)
        ctx.session.refresh(folder, with_for_update={"read": True})
        if folder.deleted_at is not None:
            raise NotFound("no such folder")
        row = Job(
            subscription_id=ctx.principal.subscription_id,
            folder_id=folder.id,
            job_name=name,
            description=description,
            created_by=ctx.principal.user_id,
        )
        ctx.session.add(row)
        ctx.session.flush()
        ctx.session.refresh(row)
        audit.record(ctx, "job.create", "job", row.id, after=audit.snapshot(row))
        return row

    def page(
        self, ctx: RequestContext, folder_id: uuid.UUID, page: PageRequest, name: str | None
    ) -> list[Job]:
        """Up to ``page.limit + 1`` of the folder's jobs the caller may read, by name then
        id: all of them with read on the folder, else those granted one by one."""
        folder = ctx.authz.load("folder", folder_id)
        parent = ctx.authz.decide("folder", folder)
        query = select(Job).where(
            Job.folder_id == folder.id,
            Job.deleted_at.is_(None),
            name_filter(Job.job_name, name),
            ctx.authz.readable_children("job", Job.id, parent),
        )
        return list(ctx.session.scalars(keyset(query, page, Job.job_name, Job.id)))

    def get(self, ctx: RequestContext, job_id: uuid.UUID) -> Job:
        row: Job = ctx.authz.require("read", "job", job_id)
        return row

    def update(
        self,
        ctx: RequestContext,
        job_id: uuid.UUID,
        changes: dict[str, Any],
        *,
        if_match: str | None = None,
    ) -> Job:
        ctx.authz.require("read_write", "job", job_id)
        row: Job = lock(ctx.session, Job, job_id, "job")
        check_if_match(if_match, entity_tag(row.updated_at), "job")
        before = audit.snapshot(row)
        if apply_changes(row, changes, JOB_COLUMNS):
            touch(ctx.session, row)
            audit.record(
                ctx, "job.update", "job", row.id, {"fields": sorted(changes)},
                before=before, after=audit.snapshot(row),
            )  # fmt: skip
        return row


@dataclass(frozen=True)
class PackageView:
    row: JobPackage
    job_ids: list[uuid.UUID]


class JobPackageService:
    """Job packages belong to the subscription (no folder): creating one needs read_write
    on every job package (the owner, or a role); each package has its own grants."""

    def create(self, ctx: RequestContext, *, name: str, description: str | None) -> PackageView:
        ctx.authz.require_subscription("read_write", "jobpackage")
        row = JobPackage(
            subscription_id=ctx.principal.subscription_id,
            package_name=name,
            description=description,
            created_by=ctx.principal.user_id,
        )
        ctx.session.add(row)
        ctx.session.flush()
        ctx.session.refresh(row)
        audit.record(ctx, "jobpackage.create", "jobpackage", row.id, after=audit.snapshot(row))
        return PackageView(row, [])

    def page(self, ctx: RequestContext, page: PageRequest, name: str | None) -> list[PackageView]:
        query = select(JobPackage).where(
            JobPackage.deleted_at.is_(None),
            name_filter(JobPackage.package_name, name),
            ctx.authz.readable_children("jobpackage", JobPackage.id, None),
        )
        rows = list(
            ctx.session.scalars(keyset(query, page, JobPackage.package_name, JobPackage.id))
        )
        members = self._members(ctx.session, [r.id for r in rows])
        return [PackageView(r, members.get(r.id, [])) for r in rows]

    def get(self, ctx: RequestContext, package_id: uuid.UUID) -> PackageView:
        row = ctx.authz.require("read", "jobpackage", package_id)
        return PackageView(row, self._members(ctx.session, [row.id]).get(row.id, []))

    def update(
        self,
        ctx: RequestContext,
        package_id: uuid.UUID,
        changes: dict[str, Any],
        *,
        if_match: str | None = None,
    ) -> PackageView:
        ctx.authz.require("read_write", "jobpackage", package_id)
        row: JobPackage = lock(ctx.session, JobPackage, package_id, "job package")
        check_if_match(if_match, entity_tag(row.updated_at), "job package")
        before = audit.snapshot(row)
        if apply_changes(row, changes, PACKAGE_COLUMNS):
            touch(ctx.session, row)
            audit.record(
                ctx, "jobpackage.update", "jobpackage", row.id, {"fields": sorted(changes)},
                before=before, after=audit.snapshot(row),
            )  # fmt: skip
        return PackageView(row, self._members(ctx.session, [row.id]).get(row.id, []))

    def set_jobs(
        self,
        ctx: RequestContext,
        package_id: uuid.UUID,
        job_ids: list[uuid.UUID],
        *,
        if_match: str | None = None,
    ) -> PackageView:
        """Replace the package's jobs by ``job_ids``, in that order. Each must be a live job
        of the subscription (422 naming its position otherwise) that the caller may read."""
        ctx.authz.require("read_write", "jobpackage", package_id)
        s = ctx.session
        row: JobPackage = lock(s, JobPackage, package_id, "job package")
        check_if_match(if_match, entity_tag(row.updated_at), "job package")
        self._require_readable_jobs(ctx, job_ids)
        before = self._members(s, [row.id]).get(row.id, [])
        audit.record(
            ctx, "jobpackage.set_jobs", "jobpackage", row.id,
            {"before": [str(j) for j in before], "after": [str(j) for j in job_ids]},
        )  # fmt: skip
        s.execute(delete(JobPackageJob).where(JobPackageJob.jobpackage_id == row.id))
        s.add_all(
            JobPackageJob(
                subscription_id=ctx.principal.subscription_id,
                jobpackage_id=row.id,
                job_id=job_id,
                position=position,
            )
            for position, job_id in enumerate(job_ids)
        )
        touch(s, row)
        return PackageView(row, list(job_ids))

    # -- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _members(s: Session, package_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        """Each package's live jobs in order (one query for a whole page)."""
        if not package_ids:
            return {}
        rows = s.execute(
            select(JobPackageJob.jobpackage_id, JobPackageJob.job_id)
            .join(Job, Job.id == JobPackageJob.job_id)
            .where(JobPackageJob.jobpackage_id.in_(package_ids), Job.deleted_at.is_(None))
            .order_by(JobPackageJob.jobpackage_id, JobPackageJob.position)
        ).all()
        out: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
        for package_id, job_id in rows:
            out[package_id].append(job_id)
        return out

    @staticmethod
    def _require_readable_jobs(ctx: RequestContext, job_ids: list[uuid.UUID]) -> None:
        """Every job exists (in this tenant, not deleted) and the caller may read it.

        One decision per distinct folder: read on a folder covers its jobs; in the other
        folders the jobs must be readable by their own grants (checked in one query each).
        """
        errors: list[FieldError] = []
        seen: dict[uuid.UUID, int] = {}
        for i, job_id in enumerate(job_ids):
            if job_id in seen:
                errors.append(
                    FieldError(
                        field=f"body.job_ids.{i}",
                        message=f"job {job_id} is listed twice (also at {seen[job_id]})",
                        code="duplicate",
                    )
                )
            seen.setdefault(job_id, i)
        s = ctx.session
        folders = dict(
            s.execute(
                select(Job.id, Job.folder_id).where(Job.id.in_(seen), Job.deleted_at.is_(None))
            ).all()
        )
        for job_id, i in seen.items():
            if job_id not in folders:  # another tenant's, deleted, or never existed
                errors.append(
                    FieldError(field=f"body.job_ids.{i}", message="no such job", code="not_found")
                )
        if errors:
            raise InvalidInput(
                f"{errors[0].field}: {errors[0].message}"
                + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
                field=errors[0].field,
                errors=errors,
            )
        if ctx.principal.is_owner:
            return
        by_folder: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
        for job_id, folder_id in folders.items():
            by_folder[folder_id].append(job_id)
        for folder_id, jobs in by_folder.items():
            folder = s.get(Folder, folder_id)
            parent = ctx.authz.decide("folder", folder) if folder is not None else None
            readable = set(
                s.scalars(
                    select(Job.id).where(
                        Job.id.in_(jobs), ctx.authz.readable_children("job", Job.id, parent)
                    )
                )
            )
            hidden = set(jobs) - readable
            refused = [j for j in job_ids if j in hidden]
            if refused:
                raise Forbidden(
                    f"this needs read on every job of the package; you have no access to "
                    f"job {refused[0]}",
                    field=f"body.job_ids.{job_ids.index(refused[0])}",
                )
