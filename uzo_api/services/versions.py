"""Workflow versions: history, check-out/check-in, publish, rollback, diff, comments.

A version (``versions``, ``resource_type='workflow'``) is a numbered snapshot of a
workflow's diagram. ``version_data`` holds ``{"diagram", "is_draft", "digest", "source",
"comment", "rolled_back_from"}``; ``digest`` is the SHA-256 of the canonical JSON of
(diagram, is_draft), so "the same as the latest version" is one comparison.

- **Numbers** run from 1 per workflow without gaps. Every method that adds a version
  first locks the workflow row (``SELECT ... FOR UPDATE``), so two concurrent saves take
  numbers one after the other; the unique constraint on (resource_type, resource_id,
  version_number) is the backstop. ``workflows.current_version`` is the latest number.
- **Saves.** Every save that changes the diagram (or its draft state) adds a version
  (``source='save'``) unless the latest version holds the same digest. A layout-only
  change changes the stored document, so it is a version too; the diff says it is
  layout-only. Explicit creation, check-in and rollback always add one.
- **Status** is ``draft`` (a diagram saved with ``?draft=true``: it cannot be published
  or run), ``checked_in`` or ``published``; at most one version of a workflow is
  published (changed under the workflow's lock).
- **Check-out** locks the workflow for one user for ``checkout_ttl``: anybody else's
  save, creation, check-in or rollback is a 409 naming the holder and since when. An
  expired check-out binds nobody. The holder releases it by checking in (a new version
  with a comment) or with ``DELETE /api/workflows/{id}/checkout``; someone else's live
  check-out takes ``admin`` to break. Every check-out change is audited.
- **What runs** (:meth:`VersionService.runnable`): the version named, else the
  published one, else the latest non-draft version; a workflow without any version (a
  row older than versioning) runs its stored diagram unless it is a draft.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, func, or_, select, update

from uzo_api.db.models import User, Version, VersionComment, Workflow
from uzo_api.errors import Conflict, InvalidInput, NotFound
from uzo_api.pagination import keyset
from uzo_api.services import audit
from uzo_api.services.jobs import lock, touch
from uzo_api.services.version_diff import DiagramDiff, diff_documents

if TYPE_CHECKING:
    import uuid

    from uzo_api.authz import Level
    from uzo_api.context import RequestContext
    from uzo_api.pagination import PageRequest

RESOURCE = "workflow"


def digest(diagram: Any, is_draft: bool) -> str:
    """SHA-256 of the canonical JSON of a diagram and its draft state (keys sorted)."""
    canonical = json.dumps(
        {"diagram": diagram, "is_draft": is_draft},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def diagram_of(version: Version) -> dict[str, Any]:
    diagram = version.version_data.get("diagram")
    return dict(diagram) if isinstance(diagram, dict) else {}


@dataclass(frozen=True)
class CheckoutState:
    """Who holds a workflow's check-out, since when and until when (holder None: free)."""

    workflow_id: uuid.UUID
    holder: User | None
    holder_id: uuid.UUID | None
    since: dt.datetime | None
    expires_at: dt.datetime | None
    expired: bool
    version_id: uuid.UUID | None


class VersionService:
    def __init__(self, checkout_ttl: dt.timedelta) -> None:
        self.checkout_ttl = checkout_ttl

    # -- the save path (WorkflowService calls these with the workflow row locked) ---------------

    def check_editable(self, ctx: RequestContext, workflow: Workflow) -> None:
        """409 if someone other than the caller holds a live check-out of ``workflow``."""
        state = self._state(ctx, workflow)
        if state.holder_id is None or state.expired or state.holder_id == ctx.principal.user_id:
            return
        raise Conflict(self._held_message(state))

    def record_save(self, ctx: RequestContext, workflow: Workflow) -> Version | None:
        """A version of the workflow's diagram as saved, unless the latest is the same."""
        is_draft = bool(workflow.is_draft)
        latest = ctx.session.execute(
            select(Version.version_data.op("->>", return_type=String)("digest"))
            .where(*self._of(workflow.id))
            .order_by(Version.version_number.desc())
            .limit(1)
        ).scalar_one_or_none()
        if latest == digest(workflow.workflow_diagram, is_draft):
            return None
        return self._add(ctx, workflow, source="save")

    # -- reading ---------------------------------------------------------------------------------

    def page(self, ctx: RequestContext, workflow_id: uuid.UUID, page: PageRequest) -> list[Version]:
        """Up to ``page.limit + 1`` versions of the workflow, newest first."""
        workflow = ctx.authz.require("read", RESOURCE, workflow_id)
        query = select(Version).where(*self._of(workflow.id))
        if page.after is not None:
            number = _cursor_number(page.after[0])
            query = query.where(Version.version_number < number)
        query = query.order_by(Version.version_number.desc()).limit(page.limit + 1)
        return list(ctx.session.scalars(query))

    def get(self, ctx: RequestContext, version_id: uuid.UUID) -> Version:
        version, _ = self._authorized(ctx, version_id, "read")
        return version

    def by_number(self, ctx: RequestContext, workflow_id: uuid.UUID, number: int) -> Version:
        workflow = ctx.authz.require("read", RESOURCE, workflow_id)
        return self._numbered(ctx, workflow, number)

    def diff(
        self, ctx: RequestContext, workflow_id: uuid.UUID, old: int, new: int | None
    ) -> tuple[Version, Version, DiagramDiff]:
        """What changed from version ``old`` to version ``new`` (the latest if None)."""
        workflow = ctx.authz.require("read", RESOURCE, workflow_id)
        before = self._numbered(ctx, workflow, old)
        after = self._numbered(
            ctx, workflow, new if new is not None else self._latest(ctx, workflow)
        )
        return before, after, diff_documents(diagram_of(before), diagram_of(after))

    def checkout_state(self, ctx: RequestContext, workflow_id: uuid.UUID) -> CheckoutState:
        workflow: Workflow = ctx.authz.require("read", RESOURCE, workflow_id)
        return self._state(ctx, workflow)

    # -- changing --------------------------------------------------------------------------------

    def create(
        self,
        ctx: RequestContext,
        workflow_id: uuid.UUID,
        *,
        comment: str | None,
        tag: str | None,
    ) -> Version:
        """A version of the workflow's current diagram, always (an explicit snapshot)."""
        ctx.authz.require("read_write", RESOURCE, workflow_id)
        workflow = self._lock(ctx, workflow_id)
        self.check_editable(ctx, workflow)
        version = self._add(ctx, workflow, source="create", tag=tag, comment=comment)
        touch(ctx.session, workflow)  # current_version is part of the workflow
        return version

    def checkout(self, ctx: RequestContext, version_id: uuid.UUID) -> CheckoutState:
        """Lock the workflow for the caller, starting from ``version_id`` (the latest)."""
        version, workflow = self._authorized(ctx, version_id, "read_write")
        workflow = self._lock(ctx, workflow.id)
        self.check_editable(ctx, workflow)
        if version.version_number != workflow.current_version:
            raise Conflict(
                f"version {version.version_number} is not the latest version of the workflow "
                f"({workflow.current_version}): check out the latest, or roll back to version "
                f"{version.version_number} first"
            )
        before = _lock_image(workflow)
        now = dt.datetime.now(dt.UTC)
        me = ctx.principal.user_id
        workflow.is_checked_out, workflow.checked_out_by, workflow.checked_out_at = True, me, now
        self._clear_markers(ctx, workflow.id)
        version.checked_out_by, version.checked_out_at = me, now
        ctx.session.flush()
        audit.record(
            ctx,
            "workflow.checkout",
            RESOURCE,
            workflow.id,
            {
                "version_id": str(version.id),
                "version_number": version.version_number,
                "previous_holder": before["checked_out_by"],
            },
            before=before,
            after=_lock_image(workflow),
        )
        return self._state(ctx, workflow)

    def checkin(
        self, ctx: RequestContext, version_id: uuid.UUID, *, comment: str, tag: str | None
    ) -> Version:
        """A version of the workflow's current diagram with ``comment``; the caller's
        check-out (of any version of the workflow) is released."""
        _, workflow = self._authorized(ctx, version_id, "read_write")
        workflow = self._lock(ctx, workflow.id)
        state = self._state(ctx, workflow)
        if state.holder_id != ctx.principal.user_id:
            if state.holder_id is not None:
                raise Conflict(self._held_message(state))
            raise Conflict(
                "the workflow is not checked out: check it out first "
                "(POST /api/versions/{id}/checkout), or create a version without checking in "
                f"(POST /api/workflows/{workflow.id}/versions)"
            )
        created = self._add(ctx, workflow, source="checkin", tag=tag, comment=comment)
        self._release(ctx, workflow, "workflow.checkin", {"version_id": str(created.id)})
        touch(ctx.session, workflow)
        return created

    def release(self, ctx: RequestContext, workflow_id: uuid.UUID) -> bool:
        """End the check-out: one's own with read_write, someone else's live one with admin.
        Whether a check-out was ended."""
        ctx.authz.require("read_write", RESOURCE, workflow_id)
        workflow = self._lock(ctx, workflow_id)
        state = self._state(ctx, workflow)
        if state.holder_id is None:
            return False
        mine = state.holder_id == ctx.principal.user_id
        if not mine and not state.expired:
            ctx.authz.require("admin", RESOURCE, workflow_id)
        action = "workflow.release_checkout" if mine else "workflow.break_checkout"
        self._release(ctx, workflow, action, {"holder": str(state.holder_id)})
        return True

    def publish(self, ctx: RequestContext, version_id: uuid.UUID) -> Version:
        """Make ``version_id`` the version that runs by default (one per workflow)."""
        version, workflow = self._authorized(ctx, version_id, "admin")
        workflow = self._lock(ctx, workflow.id)
        ctx.session.refresh(version)
        if version.status == "draft":
            raise Conflict(
                f"version {version.version_number} is a draft (saved with `draft=true`) and "
                "cannot be published: publish a version whose diagram validates"
            )
        if version.status == "published":
            return version
        previous = ctx.session.scalars(
            select(Version).where(*self._of(workflow.id), Version.status == "published")
        ).all()
        for old in previous:
            before = _publish_image(old)
            old.status = "checked_in"
            audit.record(
                ctx,
                "version.unpublish",
                "version",
                old.id,
                before=before,
                after=_publish_image(old),
            )
        before = _publish_image(version)
        version.status, version.published_at = "published", dt.datetime.now(dt.UTC)
        ctx.session.flush()
        audit.record(
            ctx,
            "version.publish",
            "version",
            version.id,
            {
                "workflow_id": str(workflow.id),
                "version_number": version.version_number,
                "previous": [old.version_number for old in previous],
            },
            before=before,
            after=_publish_image(version),
            version_number=version.version_number,
        )
        return version

    def rollback(self, ctx: RequestContext, version_id: uuid.UUID) -> Version:
        """The diagram of ``version_id`` becomes the workflow's, as a new version."""
        version, workflow = self._authorized(ctx, version_id, "read_write")
        workflow = self._lock(ctx, workflow.id)
        self.check_editable(ctx, workflow)
        before = audit.snapshot(workflow)
        workflow.workflow_diagram = copy.deepcopy(diagram_of(version))
        workflow.is_draft = bool(version.version_data.get("is_draft", False))
        created = self._add(
            ctx, workflow, source="rollback", rolled_back_from=version.version_number
        )
        touch(ctx.session, workflow)
        audit.record(
            ctx,
            "workflow.rollback",
            RESOURCE,
            workflow.id,
            {"to_version": version.version_number, "new_version": created.version_number},
            before=before,
            after=audit.snapshot(workflow),
            version_number=created.version_number,
        )
        return created

    # -- comments --------------------------------------------------------------------------------

    def comments(
        self, ctx: RequestContext, version_id: uuid.UUID, page: PageRequest
    ) -> list[VersionComment]:
        """Up to ``page.limit + 1`` comments of the version, oldest first."""
        version, _ = self._authorized(ctx, version_id, "read")
        query = select(VersionComment).where(VersionComment.version_id == version.id)
        return list(
            ctx.session.scalars(keyset(query, page, VersionComment.created_at, VersionComment.id))
        )

    def add_comment(self, ctx: RequestContext, version_id: uuid.UUID, text: str) -> VersionComment:
        version, _ = self._authorized(ctx, version_id, "read_write")
        return self._comment(ctx, version, text)

    # -- what runs -------------------------------------------------------------------------------

    def runnable(
        self, ctx: RequestContext, workflow: Workflow, number: int | None = None
    ) -> dict[str, Any]:
        """The diagram to run: version ``number``, else the published version, else the
        latest non-draft version; a draft is refused (409)."""
        if number is not None:
            version = self._numbered(ctx, workflow, number)
            if version.status == "draft":
                raise Conflict(f"version {number} is a draft: it cannot run")
            return diagram_of(version)
        found = ctx.session.scalars(
            select(Version)
            .where(*self._of(workflow.id), Version.status != "draft")
            .order_by((Version.status == "published").desc(), Version.version_number.desc())
            .limit(1)
        ).first()
        if found is not None:
            return diagram_of(found)
        has_versions = self._latest(ctx, workflow, required=False) is not None
        if workflow.is_draft or has_versions:
            raise Conflict(
                "this workflow is a draft: save its diagram without `draft=true` (it must "
                "validate) before running it"
            )
        return dict(workflow.workflow_diagram)

    # -- internals -------------------------------------------------------------------------------

    @staticmethod
    def _of(workflow_id: uuid.UUID) -> tuple[Any, ...]:
        return (Version.resource_type == RESOURCE, Version.resource_id == workflow_id)

    def _authorized(
        self, ctx: RequestContext, version_id: uuid.UUID, level: Level
    ) -> tuple[Version, Workflow]:
        """The version (404 if the tenant session cannot see it) and its workflow, with
        ``level`` on that workflow."""
        version = ctx.session.get(Version, version_id)
        if version is None or version.resource_type != RESOURCE:
            raise NotFound("no such version")
        workflow: Workflow = ctx.authz.require(level, RESOURCE, version.resource_id)
        return version, workflow

    @staticmethod
    def _lock(ctx: RequestContext, workflow_id: uuid.UUID) -> Workflow:
        row: Workflow = lock(ctx.session, Workflow, workflow_id, RESOURCE)
        return row

    def _latest(self, ctx: RequestContext, workflow: Workflow, *, required: bool = True) -> Any:
        number = ctx.session.scalar(
            select(func.max(Version.version_number)).where(*self._of(workflow.id))
        )
        if number is None and required:
            raise NotFound("the workflow has no versions yet")
        return number

    def _numbered(self, ctx: RequestContext, workflow: Workflow, number: int) -> Version:
        version = ctx.session.scalars(
            select(Version).where(*self._of(workflow.id), Version.version_number == number)
        ).first()
        if version is None:
            raise NotFound(f"the workflow has no version {number}")
        return version

    def _add(
        self,
        ctx: RequestContext,
        workflow: Workflow,
        *,
        source: str,
        tag: str | None = None,
        comment: str | None = None,
        rolled_back_from: int | None = None,
    ) -> Version:
        """The next version of ``workflow`` (locked by the caller) from its diagram."""
        s = ctx.session
        if tag is not None:
            taken = s.scalar(
                select(Version.version_number).where(*self._of(workflow.id), Version.tag == tag)
            )
            if taken is not None:
                raise Conflict(f"tag {tag!r} already names version {taken} of this workflow")
        number = (self._latest(ctx, workflow, required=False) or 0) + 1
        is_draft = bool(workflow.is_draft)
        data: dict[str, Any] = {
            "diagram": copy.deepcopy(workflow.workflow_diagram),
            "is_draft": is_draft,
            "digest": digest(workflow.workflow_diagram, is_draft),
            "source": source,
            "comment": comment,
            "rolled_back_from": rolled_back_from,
        }
        version = Version(
            subscription_id=ctx.principal.subscription_id,
            resource_type=RESOURCE,
            resource_id=workflow.id,
            version_number=number,
            version_data=data,
            tag=tag,
            status="draft" if is_draft else "checked_in",
            created_by=ctx.principal.user_id,
        )
        s.add(version)
        workflow.current_version = number
        s.flush()
        audit.record(
            ctx,
            "version.create",
            "version",
            version.id,
            {"workflow_id": str(workflow.id), "version_number": number, "source": source},
            after=_version_image(version),
            version_number=number,
        )
        if comment:
            self._comment(ctx, version, comment)
        return version

    @staticmethod
    def _comment(ctx: RequestContext, version: Version, text: str) -> VersionComment:
        row = VersionComment(
            subscription_id=ctx.principal.subscription_id,
            version_id=version.id,
            comment_text=text,
            commented_by=ctx.principal.user_id,
        )
        ctx.session.add(row)
        ctx.session.flush()
        ctx.session.refresh(row)
        audit.record(
            ctx,
            "version_comment.create",
            "version_comment",
            row.id,
            {"version_id": str(version.id)},
            after=audit.snapshot(row),
            table="version_comments",
        )
        return row

    def _state(self, ctx: RequestContext, workflow: Workflow) -> CheckoutState:
        if not workflow.is_checked_out or workflow.checked_out_by is None:
            return CheckoutState(workflow.id, None, None, None, None, False, None)
        since = workflow.checked_out_at or dt.datetime.now(dt.UTC)
        expires = since + self.checkout_ttl
        holder = ctx.session.get(User, workflow.checked_out_by)
        version_id = ctx.session.scalar(
            select(Version.id).where(
                *self._of(workflow.id), Version.checked_out_by == workflow.checked_out_by
            )
        )
        return CheckoutState(
            workflow_id=workflow.id,
            holder=holder,
            holder_id=workflow.checked_out_by,
            since=since,
            expires_at=expires,
            expired=expires <= dt.datetime.now(dt.UTC),
            version_id=version_id,
        )

    @staticmethod
    def _held_message(state: CheckoutState) -> str:
        who = f"user {state.holder_id}"
        if state.holder is not None:
            name = state.holder.full_name or state.holder.username
            who = f"{name} <{state.holder.email}> ({who})"
        since = state.since.astimezone(dt.UTC).isoformat() if state.since else "?"
        until = state.expires_at.astimezone(dt.UTC).isoformat() if state.expires_at else "?"
        return (
            f"the workflow is checked out by {who} since {since} (until {until}): ask them to "
            "check it in, or an admin to break the check-out "
            f"(DELETE /api/workflows/{state.workflow_id}/checkout)"
        )

    def _clear_markers(self, ctx: RequestContext, workflow_id: uuid.UUID) -> None:
        ctx.session.execute(
            update(Version)
            .where(
                *self._of(workflow_id),
                or_(Version.checked_out_by.is_not(None), Version.checked_out_at.is_not(None)),
            )
            .values(checked_out_by=None, checked_out_at=None)
            .execution_options(synchronize_session="fetch")
        )

    def _release(
        self, ctx: RequestContext, workflow: Workflow, action: str, changes: dict[str, Any]
    ) -> None:
        before = _lock_image(workflow)
        workflow.is_checked_out, workflow.checked_out_by, workflow.checked_out_at = (
            False,
            None,
            None,
        )
        self._clear_markers(ctx, workflow.id)
        ctx.session.flush()
        audit.record(
            ctx,
            action,
            RESOURCE,
            workflow.id,
            changes,
            before=before,
            after=_lock_image(workflow),
        )


def _lock_image(workflow: Workflow) -> dict[str, Any]:
    return {
        "is_checked_out": bool(workflow.is_checked_out),
        "checked_out_by": str(workflow.checked_out_by) if workflow.checked_out_by else None,
        "checked_out_at": workflow.checked_out_at.isoformat() if workflow.checked_out_at else None,
    }


def _version_image(version: Version) -> dict[str, Any]:
    """A new version's audit image, its diagram left out: the version row keeps it, never
    changed, and its digest in the image names it (a copy per save would double the
    bytes every save writes)."""
    image = audit.snapshot(version)
    data = image.get("version_data")
    if isinstance(data, dict):
        image["version_data"] = {k: v for k, v in data.items() if k != "diagram"}
    return image


def _publish_image(version: Version) -> dict[str, Any]:
    return {
        "status": version.status,
        "published_at": version.published_at.isoformat() if version.published_at else None,
        "version_number": version.version_number,
    }


def _cursor_number(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInput("cursor does not fit this list", field="query.cursor") from None
