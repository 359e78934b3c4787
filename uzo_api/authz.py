"""Who may do what to which object: levels, inheritance, and the one seam that decides.

Levels rank ``read < execute < read_write < admin < owner``. Grants
(``object_permissions``) go to a user or a group on a workspace, folder, job,
workflow, job package or connector, and inherit downwards: workspace -> folder ->
sub-folder -> job -> workflow (a connector bound to a workspace inherits from it).
For one caller and one object the decision is, in this order:

1. the subscription's owner holds ``owner`` on everything;
2. the caller's own grants on the object;
3. the grants of the caller's groups on the object;
4. grants (own or group) on an object above it;
5. role permissions: a role held by the caller or one of their groups grants a level
   on every object of a type (``permissions.resource_type``, ``*`` for all).

The effective level is the highest of these; :class:`Decision` says which rule gave
it. Every route that touches an object calls :meth:`Authorizer.require` (through its
service), which answers 404 for an object the tenant session cannot see (another
tenant's, or deleted) and 403 naming the level needed for a visible one. Lists are
filtered in the same SQL query that reads them (:meth:`Authorizer.readable_children`).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from sqlalchemy import and_, bindparam, exists, or_, select, text, true
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import defer

from uzo_api.db import platform
from uzo_api.db.models import (
    Connector,
    Folder,
    Job,
    JobPackage,
    ObjectPermission,
    UserGroup,
    Workflow,
    Workspace,
)
from uzo_api.errors import Forbidden, NotFound

if TYPE_CHECKING:
    import uuid
    from collections.abc import Iterable, Iterator

    from sqlalchemy import ColumnElement
    from sqlalchemy.orm import InstrumentedAttribute, Session

    from uzo_api.auth.principal import Principal

Level = Literal["read", "execute", "read_write", "admin", "owner"]
ObjectType = Literal["workspace", "folder", "job", "workflow", "jobpackage", "connector"]
LEVELS: tuple[Level, ...] = ("read", "execute", "read_write", "admin", "owner")
RANK: dict[str, int] = {level: rank for rank, level in enumerate(LEVELS, start=1)}
MODELS: dict[str, Any] = {
    "workspace": Workspace,
    "folder": Folder,
    "job": Job,
    "workflow": Workflow,
    "jobpackage": JobPackage,
    "connector": Connector,
}
#: columns a decision never reads, left out of a ``light`` load
_HEAVY: dict[str, tuple[Any, ...]] = {"workflow": (Workflow.workflow_diagram,)}
Source = Literal["owner", "direct", "group", "inherited", "role", "member", "none"]


def at_least(level: str) -> list[str]:
    """The levels that satisfy ``level`` (``read_write`` -> read_write, admin, owner)."""
    return [lv for lv in LEVELS if RANK[lv] >= RANK[level]]


@dataclass(frozen=True)
class Decision:
    """The caller's effective level on one object, and the rule that gave it."""

    level: Level | None
    source: Source

    def allows(self, needed: str) -> bool:
        return self.level is not None and RANK[self.level] >= RANK[needed]


_ROLE_LEVELS = text(
    """
    SELECT p.action FROM permissions p
    WHERE p.resource_type IN (:object_type, '*')
      AND p.role_id IN (
        SELECT ur.role_id FROM user_roles ur WHERE ur.user_id = :user_id
        UNION
        SELECT gr.role_id FROM group_roles gr
        JOIN user_groups ug ON ug.group_id = gr.group_id
        WHERE ug.user_id = :user_id
      )
    """
)

# What is above an object, read by the decision's query itself (so a decision is one
# round trip): the job of a workflow, then the job's folder, the folders above it and the
# workspace; an object above that the tenant session cannot see ends the chain there.
_ABOVE = {
    "workflow": """
        SELECT ARRAY[j.id] || CASE WHEN f.id IS NULL THEN CAST('{}' AS uuid[])
                                   ELSE ARRAY[f.id] || f.ancestor_ids || f.workspace_id END
        FROM jobs j LEFT JOIN folders f ON f.id = j.folder_id WHERE j.id = :above_id
    """,
    "job": """
        SELECT ARRAY[f.id] || f.ancestor_ids || f.workspace_id
        FROM folders f WHERE f.id = :above_id
    """,
}

# A decision's one query: the grants (own or a group's) on the object and on everything
# above it, then the levels the caller's roles give on the type (object_id NULL).
_GRANTS_AND_ROLE_LEVELS = """
    SELECT op.object_id, op.user_id IS NOT NULL AS by_user, op.permission_level AS level
    FROM object_permissions op
    WHERE op.object_id = ANY({ids})
      AND (op.user_id = :user_id
           OR op.group_id IN (SELECT ug.group_id FROM user_groups ug WHERE ug.user_id = :user_id))
    UNION ALL
    SELECT NULL, NULL, p.action FROM permissions p
    WHERE p.resource_type IN (:object_type, '*')
      AND p.role_id IN (
        SELECT ur.role_id FROM user_roles ur WHERE ur.user_id = :user_id
        UNION
        SELECT gr.role_id FROM group_roles gr
        JOIN user_groups ug ON ug.group_id = gr.group_id
        WHERE ug.user_id = :user_id
      )
"""
_IDS = bindparam("ids", type_=ARRAY(UUID(as_uuid=True)))
_DECISION = {
    object_type: text(
        _GRANTS_AND_ROLE_LEVELS.format(
            ids=f"CAST(:ids AS uuid[]) || COALESCE(({above}), CAST('{{}}' AS uuid[]))"
        )
    ).bindparams(_IDS, bindparam("above_id", type_=UUID(as_uuid=True)))
    for object_type, above in _ABOVE.items()
}
_DECISION_ON_KNOWN = text(_GRANTS_AND_ROLE_LEVELS.format(ids=":ids")).bindparams(_IDS)


class Authorizer:
    """Decisions for one request's principal, inside its tenant session."""

    def __init__(self, session: Session, principal: Principal) -> None:
        self.s = session
        self.principal = principal
        self._platform_admin: bool | None = None

    # -- loading objects and their ancestry ----------------------------------------------------

    def load(self, object_type: str, object_id: uuid.UUID, *, light: bool = False) -> Any:
        """The live row, or 404: RLS hides other tenants' rows, deleted ones count as gone.

        ``light``: for a decision only, without the large columns (a workflow's diagram);
        they load on first access if a caller reads them after all.
        """
        model = MODELS[object_type]
        heavy = _HEAVY.get(object_type, ()) if light else ()
        row = self.s.get(model, object_id, options=[defer(column) for column in heavy])
        if row is None or getattr(row, "deleted_at", None) is not None:
            raise NotFound(f"no such {object_type}")
        if object_type == "connector" and row.workspace_id is not None:
            # a connector of a deleted workspace is gone with it (until it is restored)
            workspace = self.s.get(Workspace, row.workspace_id)
            if workspace is None or workspace.deleted_at is not None:
                raise NotFound(f"no such {object_type}")
        return row

    @staticmethod
    def chain(object_type: str, row: Any) -> tuple[list[uuid.UUID], uuid.UUID | None]:
        """The object's id and what is known above it from its row; and, for a workflow or
        a job, the row above it whose ancestry the decision's query reads (``_ABOVE``)."""
        if object_type == "folder":
            return [row.id, *reversed(row.ancestor_ids or []), row.workspace_id], None
        if object_type == "job":
            return [row.id], row.folder_id
        if object_type == "workflow":
            return [row.id], row.job_id
        if object_type == "connector":
            return ([row.id, row.workspace_id] if row.workspace_id else [row.id]), None
        return [row.id], None  # a workspace, a job package

    # -- deciding ------------------------------------------------------------------------------

    def decide(self, object_type: str, row: Any) -> Decision:
        if self.principal.is_owner:
            return Decision("owner", "owner")
        ids, above_id = self.chain(object_type, row)
        params = {"ids": ids, "user_id": self.principal.user_id, "object_type": object_type}
        if above_id is None:
            found = self.s.execute(_DECISION_ON_KNOWN, params).all()
        else:
            found = self.s.execute(_DECISION[object_type], {**params, "above_id": above_id}).all()
        best: Decision = Decision(None, "none")
        for object_id, by_user, level in found:
            if level not in RANK:  # a role permission that is not a level
                continue
            source: Source
            if object_id is None:
                source = "role"
            elif object_id == row.id:
                source = "direct" if by_user else "group"
            else:
                source = "inherited"
            best = _higher(best, Decision(cast("Level", level), source))
        if best.level is None and object_type == "connector" and row.workspace_id is None:
            # a subscription-wide connector may be used by every member of the subscription
            best = Decision("read", "member")
        return best

    def require(self, level: str, object_type: str, object_id: uuid.UUID) -> Any:
        """The object's row if the caller holds ``level`` on it; 404 or 403 otherwise."""
        row = self.load(object_type, object_id)
        self.require_row(level, object_type, row)
        return row

    def require_row(self, level: str, object_type: str, row: Any) -> Decision:
        decision = self.decide(object_type, row)
        if not decision.allows(level):
            have = decision.level or "no access"
            raise Forbidden(f"this needs {level} on the {object_type}; you have {have}")
        return decision

    def require_subscription(self, level: str, object_type: str) -> None:
        """A level granted subscription-wide (owner, or a role), e.g. to create workspaces."""
        if self.principal.is_owner:
            return
        if not self._role_allows(object_type, level):
            raise Forbidden(
                f"this needs {level} on every {object_type} of the subscription "
                "(its owner, or a role that grants it)"
            )

    # -- the platform: every subscription (ADR 0013) -------------------------------------------

    def is_platform_admin(self) -> bool:
        if self._platform_admin is None:
            self._platform_admin = platform.is_platform_admin(self.s, self.principal.user_id)
        return self._platform_admin

    def require_platform_admin(self) -> None:
        if not self.is_platform_admin():
            raise Forbidden("this needs a platform admin (`uzo admin create`)")

    @contextmanager
    def platform_scope(self) -> Iterator[None]:
        """Inside, the platform tables of every tenant are visible: for platform admins
        only (403 otherwise), and only for the statements of the block."""
        self.require_platform_admin()
        with platform.platform_scope(self.s, self.principal.user_id):
            yield

    # -- filtering lists in SQL ----------------------------------------------------------------

    def readable_children(
        self,
        object_type: str,
        child_id: InstrumentedAttribute[Any],
        parent: Decision | None,
        level: str = "read",
    ) -> ColumnElement[bool]:
        """A WHERE clause keeping the children the caller may see at ``level``.

        Grants inherit downwards, so when the caller holds ``level`` on the parent every
        child qualifies; otherwise a child qualifies by its own grants (own or group) or
        a role on its type. One EXISTS in the list query: no per-row lookups.
        """
        if self.principal.is_owner or (parent is not None and parent.allows(level)):
            return true()
        if self._role_allows(object_type, level):
            return true()
        me = self.principal.user_id
        groups = select(UserGroup.group_id).where(UserGroup.user_id == me)
        return exists().where(
            and_(
                ObjectPermission.object_id == child_id,
                ObjectPermission.permission_level.in_(
                    bindparam("levels", at_least(level), expanding=True)
                ),
                or_(ObjectPermission.user_id == me, ObjectPermission.group_id.in_(groups)),
            )
        )

    def subscription_wide(self, level: str, object_types: Iterable[str]) -> set[str]:
        """The types among ``object_types`` on which the caller holds ``level`` on every
        object of the subscription (its owner: all of them; others: by a role)."""
        if self.principal.is_owner:
            return set(object_types)
        return {t for t in object_types if self._role_allows(t, level)}

    @staticmethod
    def live_workspace(workspace_id: InstrumentedAttribute[Any]) -> ColumnElement[bool]:
        """A WHERE clause: the workspace ``workspace_id`` names is not deleted."""
        return exists().where(Workspace.id == workspace_id, Workspace.deleted_at.is_(None))

    def _role_allows(self, object_type: str, level: str) -> bool:
        roles = self.s.execute(
            _ROLE_LEVELS, {"object_type": object_type, "user_id": self.principal.user_id}
        ).scalars()
        return any(lv in RANK and RANK[lv] >= RANK[level] for lv in roles)


def _higher(a: Decision, b: Decision) -> Decision:
    if a.level is None:
        return b
    if b.level is None:
        return a
    return b if RANK[b.level] > RANK[a.level] else a


def permission(rule: str) -> dict[str, Any]:
    """``openapi_extra`` declaring what a route requires, e.g. ``"read_write on workflow"``,
    ``"authenticated"`` or ``"public"``; a test fails for a route that declares nothing."""
    return {"x-permission": rule}
