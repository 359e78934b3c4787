"""Workspaces and their folders: the top of the object tree.

Levels: creating a workspace needs admin on every workspace of the subscription (its
owner, or a role) and makes the creator the workspace's ``owner`` (a grant, in the same
transaction); reading needs read, changing read_write, deleting and restoring admin.
A folder is created with read_write on where it goes; moving one needs admin on it and
read_write on its new parent. Lists keep, in their own SQL query, what the caller may
read (:meth:`uzo_api.authz.Authorizer.readable_children`).

The tree: ``folders.ancestor_ids`` holds every folder above a folder, its parent last.
It is set on creation, and a move rewrites it for the whole moved subtree in one
UPDATE. Every change to the shape of a workspace's tree (creating, moving, deleting or
restoring a folder, deleting or restoring the workspace) first takes a
transaction-scoped advisory lock on the workspace and then re-reads the rows it
decides on: two concurrent moves cannot build a cycle, and a folder created under a
folder that is being moved gets the ancestors it ends up with.

Deleting and restoring (soft, with cascade, logged in ``deletion_logs``) are
:mod:`uzo_api.services.deletions`, which takes the same tree lock (:func:`lock_tree`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import ColumnElement, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from uzo_api.db.models import Folder, ObjectPermission, Workspace
from uzo_api.errors import InvalidInput, NotFound
from uzo_api.pagination import keyset
from uzo_api.services import audit

if TYPE_CHECKING:
    import uuid

    from sqlalchemy import Select
    from sqlalchemy.orm import InstrumentedAttribute, Session

    from uzo_api.context import RequestContext
    from uzo_api.pagination import Key, PageRequest

log = structlog.get_logger("uzo.workspaces")

# the API's field -> the column it maps to (a resource's own name is `name` in the API)
WORKSPACE_FIELDS = {"name": "workspace_name", "description": "description"}
FOLDER_FIELDS = {"name": "folder_name", "description": "description"}

# one UPDATE for a moved folder and everything under it: the part of each array above
# the moved folder (its first `keep - 1` entries) is replaced by the new ancestors
_MOVE_SUBTREE = text(
    """
    UPDATE folders
    SET ancestor_ids = :new_ancestors || ancestor_ids[CAST(:keep AS int) :],
        parent_folder_id = CASE WHEN id = :folder_id THEN CAST(:parent AS uuid)
                                ELSE parent_folder_id END,
        updated_at = now()
    WHERE id = :folder_id OR ancestor_ids @> ARRAY[CAST(:folder_id AS uuid)]
    """
).bindparams(bindparam("new_ancestors", type_=ARRAY(UUID(as_uuid=True))))


class WorkspaceService:
    """Stateless: every method works in the request's session (``ctx.session``)."""

    # -- workspaces -----------------------------------------------------------------------------

    def create_workspace(
        self, ctx: RequestContext, *, name: str, description: str | None
    ) -> Workspace:
        ctx.authz.require_subscription("admin", "workspace")
        me = ctx.principal
        row = Workspace(
            subscription_id=me.subscription_id,
            workspace_name=name,
            description=description,
            created_by=me.user_id,
        )
        ctx.session.add(row)
        ctx.session.flush()
        ctx.session.add(
            ObjectPermission(
                subscription_id=me.subscription_id,
                object_type="workspace",
                object_id=row.id,
                user_id=me.user_id,
                permission_level="owner",
                granted_by=me.user_id,
            )
        )
        ctx.session.flush()
        ctx.session.refresh(row)
        audit.record(ctx, "workspace.create", "workspace", row.id, after=audit.snapshot(row))
        log.info("workspace created", workspace_id=str(row.id))
        return row

    def page_workspaces(
        self, ctx: RequestContext, page: PageRequest, *, name: str | None, sort: str
    ) -> list[Workspace]:
        """Up to ``page.limit + 1`` live workspaces the caller may read: the owner sees
        all, others those with a grant (own or a group's) or a role on workspaces."""
        query = select(Workspace).where(
            Workspace.deleted_at.is_(None),
            ctx.authz.readable_children("workspace", Workspace.id, None),
        )
        if name:
            query = query.where(_contains(Workspace.workspace_name, name))
        return list(ctx.session.scalars(_sorted(query, page, sort, Workspace)))

    def get_workspace(self, ctx: RequestContext, workspace_id: uuid.UUID) -> Workspace:
        row: Workspace = ctx.authz.require("read", "workspace", workspace_id)
        return row

    def update_workspace(
        self, ctx: RequestContext, workspace_id: uuid.UUID, changes: dict[str, Any]
    ) -> Workspace:
        row: Workspace = ctx.authz.require("read_write", "workspace", workspace_id)
        before = audit.snapshot(row)
        _apply(row, changes, WORKSPACE_FIELDS)
        ctx.session.flush()
        ctx.session.refresh(row)
        audit.record(
            ctx, "workspace.update", "workspace", row.id, {"fields": sorted(changes)},
            before=before, after=audit.snapshot(row),
        )  # fmt: skip
        return row

    # -- folders --------------------------------------------------------------------------------

    def create_folder(
        self,
        ctx: RequestContext,
        workspace_id: uuid.UUID,
        *,
        name: str,
        description: str | None,
        parent_folder_id: uuid.UUID | None,
    ) -> Folder:
        s = ctx.session
        workspace = self._live_locked(ctx, "workspace", workspace_id)
        ancestors: list[uuid.UUID] = []
        if parent_folder_id is None:
            ctx.authz.require_row("read_write", "workspace", workspace)
        else:
            parent = self._parent(ctx, parent_folder_id, workspace.id)
            ctx.authz.require_row("read_write", "folder", parent)
            ancestors = [*parent.ancestor_ids, parent.id]
        row = Folder(
            subscription_id=ctx.principal.subscription_id,
            workspace_id=workspace.id,
            parent_folder_id=parent_folder_id,
            ancestor_ids=ancestors,
            folder_name=name,
            description=description,
            created_by=ctx.principal.user_id,
        )
        s.add(row)
        s.flush()
        s.refresh(row)
        audit.record(
            ctx, "folder.create", "folder", row.id, {"parent_folder_id": _str(parent_folder_id)},
            after=audit.snapshot(row),
        )  # fmt: skip
        return row

    def page_folders(
        self,
        ctx: RequestContext,
        workspace_id: uuid.UUID,
        page: PageRequest,
        *,
        parent_folder_id: uuid.UUID | None,
        name: str | None,
        sort: str,
    ) -> list[Folder]:
        """Up to ``page.limit + 1`` live folders directly in the workspace's top level, or
        in ``parent_folder_id``: all of them where the caller may read the parent, else
        those the caller holds a grant (or a role) on."""
        workspace = ctx.authz.load("workspace", workspace_id)
        if parent_folder_id is None:
            decision = ctx.authz.decide("workspace", workspace)
            where = Folder.parent_folder_id.is_(None)
        else:
            parent = ctx.authz.load("folder", parent_folder_id)
            if parent.workspace_id != workspace.id:
                raise NotFound("no such folder in this workspace")
            decision = ctx.authz.decide("folder", parent)
            where = Folder.parent_folder_id == parent.id
        query = select(Folder).where(
            Folder.workspace_id == workspace.id,
            where,
            Folder.deleted_at.is_(None),
            ctx.authz.readable_children("folder", Folder.id, decision),
        )
        if name:
            query = query.where(_contains(Folder.folder_name, name))
        return list(ctx.session.scalars(_sorted(query, page, sort, Folder)))

    def get_folder(self, ctx: RequestContext, folder_id: uuid.UUID) -> Folder:
        row: Folder = ctx.authz.require("read", "folder", folder_id)
        return row

    def update_folder(
        self, ctx: RequestContext, folder_id: uuid.UUID, changes: dict[str, Any]
    ) -> Folder:
        """Rename or describe (read_write), and/or move (admin, see :meth:`_move`)."""
        s = ctx.session
        if "parent_folder_id" in changes:
            row: Folder = self._live_locked(ctx, "folder", folder_id)
        else:
            row = ctx.authz.load("folder", folder_id)
        target = changes.get("parent_folder_id")
        moving = "parent_folder_id" in changes and target != row.parent_folder_id
        ctx.authz.require_row("admin" if moving else "read_write", "folder", row)
        before = audit.snapshot(row)
        if moving:
            self._move(ctx, row, target)
        _apply(row, changes, FOLDER_FIELDS)
        fields = sorted(k for k in changes if k != "parent_folder_id" or moving)
        s.flush()
        s.refresh(row)
        audit.record(
            ctx, "folder.update", "folder", row.id, {"fields": fields},
            before=before, after=audit.snapshot(row),
        )  # fmt: skip
        return row

    # -- the tree -------------------------------------------------------------------------------

    def _move(self, ctx: RequestContext, row: Folder, target: uuid.UUID | None) -> None:
        """Put ``row`` (locked, re-read) under ``target`` (None: the top level)."""
        if target is None:
            workspace = ctx.authz.load("workspace", row.workspace_id)
            ctx.authz.require_row("read_write", "workspace", workspace)
            ancestors: list[uuid.UUID] = []
        else:
            parent = self._parent(ctx, target, row.workspace_id)
            if parent.id == row.id or row.id in parent.ancestor_ids:
                raise InvalidInput(
                    "a folder cannot move into itself or into one of its own sub-folders",
                    field="parent_folder_id",
                )
            ctx.authz.require_row("read_write", "folder", parent)
            ancestors = [*parent.ancestor_ids, parent.id]
        old_parent = row.parent_folder_id
        ctx.session.execute(
            _MOVE_SUBTREE,
            {
                "new_ancestors": ancestors,
                "keep": len(row.ancestor_ids) + 1,
                "folder_id": row.id,
                "parent": target,
            },
        )
        audit.record(
            ctx,
            "folder.move",
            "folder",
            row.id,
            {"from": _str(old_parent), "to": _str(target)},
        )
        ctx.session.expire_all()
        ctx.session.refresh(row)

    @staticmethod
    def _parent(ctx: RequestContext, folder_id: uuid.UUID, workspace_id: uuid.UUID) -> Folder:
        """The live folder to put something under, re-read, of the same workspace."""
        parent: Folder = ctx.authz.load("folder", folder_id)
        ctx.session.refresh(parent)
        if parent.deleted_at is not None:
            raise NotFound("no such folder")
        if parent.workspace_id != workspace_id:
            raise InvalidInput(
                "that folder is in another workspace: a folder stays in its workspace",
                field="parent_folder_id",
            )
        return parent

    @staticmethod
    def _live_locked(ctx: RequestContext, object_type: str, object_id: uuid.UUID) -> Any:
        """The live row, re-read once its workspace's tree lock is held (404 if gone)."""
        row = ctx.authz.load(object_type, object_id)
        lock_tree(ctx.session, row.id if object_type == "workspace" else row.workspace_id)
        ctx.session.refresh(row)
        if row.deleted_at is not None:
            raise NotFound(f"no such {object_type}")
        return row


def sort_key(row: Workspace | Folder, sort: str) -> Key:
    """The cursor key of ``row`` in a list sorted by ``sort``."""
    if sort.lstrip("-") == "created_at":
        return row.created_at, row.id
    return (row.workspace_name if isinstance(row, Workspace) else row.folder_name), row.id


# -- helpers ------------------------------------------------------------------------------------


def _sorted(query: Select[Any], page: PageRequest, sort: str, model: Any) -> Select[Any]:
    column = sort.lstrip("-")
    if column == "name":
        column = "workspace_name" if model is Workspace else "folder_name"
    return keyset(query, page, getattr(model, column), model.id, descending=sort.startswith("-"))


def _contains(column: InstrumentedAttribute[str], needle: str) -> ColumnElement[bool]:
    """Case-insensitive substring match; ``%``, ``_`` and ``\\`` match only themselves."""
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


def lock_tree(s: Session, workspace_id: uuid.UUID) -> None:
    """Until the transaction ends, no other change to the shape of this workspace's tree."""
    s.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"uzo:tree:{workspace_id}"},
    )


def _apply(row: Any, changes: dict[str, Any], columns: dict[str, str]) -> None:
    for field, column in columns.items():
        if field in changes:
            setattr(row, column, changes[field])


def _str(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)
