"""Groups of users, and roles: named sets of levels on every object of a type.

Every member may read groups, members and roles (an object's administrator needs them
to grant access). Managing groups needs admin on every group (``require_subscription(
"admin", "group")``), managing roles admin on every role; the subscription's owner holds
both.

No escalation through roles: a caller who is not the owner may only put into a role,
hand out by assigning a role, or hand out by adding a member to a group that holds
roles, levels they hold themselves subscription-wide (through their own roles). Object
grants held by a group are not re-checked when a member is added: adding members is
itself an administrative power (admin on every group).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import and_, delete, literal, null, or_, select, union_all
from sqlalchemy.exc import IntegrityError

from uzo_api.authz import RANK
from uzo_api.db.models import Group, GroupRole, Permission, Role, User, UserGroup, UserRole
from uzo_api.errors import Conflict, Forbidden, InvalidInput, NotFound
from uzo_api.pagination import keyset
from uzo_api.services import audit
from uzo_api.services.users import live_user

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Iterable, Sequence

    from sqlalchemy import Select
    from sqlalchemy.orm import Session

    from uzo_api.context import RequestContext
    from uzo_api.pagination import PageRequest


@dataclass(frozen=True)
class Member:
    membership: UserGroup
    user: User


@dataclass(frozen=True)
class RoleView:
    row: Role
    permissions: Sequence[tuple[str, str]]  # (resource_type, level), sorted


@dataclass(frozen=True)
class Assignment:
    id: uuid.UUID
    role_id: uuid.UUID
    user_id: uuid.UUID | None
    group_id: uuid.UUID | None
    granted_by: uuid.UUID | None
    created_at: dt.datetime


def _group(s: Session, group_id: uuid.UUID, *, lock: bool = False) -> Group:
    row = s.get(Group, group_id, with_for_update=lock)
    if row is None:  # another tenant's group is invisible under RLS: also a 404
        raise NotFound("no such group", field="group_id")
    return row


def _role(s: Session, role_id: uuid.UUID, *, lock: bool = False) -> Role:
    row = s.get(Role, role_id, with_for_update=lock)
    if row is None:
        raise NotFound("no such role")
    return row


def _held_levels(ctx: RequestContext) -> dict[str, int]:
    """The caller's highest level per resource type through their roles (own or group)."""
    me = ctx.principal.user_id
    role_ids = union_all(
        select(UserRole.role_id).where(UserRole.user_id == me),
        select(GroupRole.role_id)
        .join(UserGroup, UserGroup.group_id == GroupRole.group_id)
        .where(UserGroup.user_id == me),
    )
    held: dict[str, int] = {}
    rows = ctx.session.execute(
        select(Permission.resource_type, Permission.action).where(Permission.role_id.in_(role_ids))
    )
    for resource_type, level in rows:
        held[resource_type] = max(held.get(resource_type, 0), RANK.get(level, 0))
    return held


def ensure_no_escalation(ctx: RequestContext, wanted: Iterable[tuple[str, str]]) -> None:
    """403 if a caller who is not the owner would hand out a level they do not hold."""
    if ctx.principal.is_owner:
        return
    wanted = list(wanted)
    if not wanted:
        return
    held = _held_levels(ctx)
    for resource_type, level in wanted:
        have = held.get("*", 0)
        if resource_type != "*":
            have = max(have, held.get(resource_type, 0))
        if have < RANK[level]:
            what = "every type" if resource_type == "*" else f"every {resource_type}"
            raise Forbidden(
                f"you cannot hand out {level} on {what}: only the owner, or someone who "
                "holds it through a role, can"
            )


def _permissions_of_roles(s: Session, role_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
    out: dict[uuid.UUID, list[Any]] = {rid: [] for rid in role_ids}
    if role_ids:
        rows = s.execute(
            select(Permission.role_id, Permission.resource_type, Permission.action)
            .where(Permission.role_id.in_(role_ids))
            .order_by(Permission.resource_type)
        )
        for role_id, resource_type, level in rows:
            out[role_id].append((resource_type, level))
    return out


class GroupService:
    # -- groups ----------------------------------------------------------------------------

    @staticmethod
    def page(ctx: RequestContext, page: PageRequest) -> list[Group]:
        return list(ctx.session.scalars(keyset(select(Group), page, Group.group_name, Group.id)))

    @staticmethod
    def get(ctx: RequestContext, group_id: uuid.UUID) -> Group:
        return _group(ctx.session, group_id)

    @staticmethod
    def create(ctx: RequestContext, *, name: str, description: str | None) -> Group:
        ctx.authz.require_subscription("admin", "group")
        s = ctx.session
        row = Group(
            subscription_id=ctx.principal.subscription_id,
            group_name=name,
            description=description,
            created_by=ctx.principal.user_id,
        )
        s.add(row)
        _flush_named(s, "group", name)
        s.refresh(row)
        audit.record(ctx, "group.create", "group", row.id, after=audit.snapshot(row))
        return row

    @staticmethod
    def update(ctx: RequestContext, group_id: uuid.UUID, changes: dict[str, Any]) -> Group:
        ctx.authz.require_subscription("admin", "group")
        s = ctx.session
        row = _group(s, group_id, lock=True)
        before = audit.snapshot(row)
        if "name" in changes:
            row.group_name = changes["name"]
        if "description" in changes:
            row.description = changes["description"]
        _flush_named(s, "group", changes.get("name"))
        s.refresh(row)
        audit.record(
            ctx,
            "group.update",
            "group",
            row.id,
            {"fields": sorted(changes)},
            before=before,
            after=audit.snapshot(row),
        )
        return row

    @staticmethod
    def delete(ctx: RequestContext, group_id: uuid.UUID) -> None:
        """Memberships, role assignments and object grants of the group go with it."""
        ctx.authz.require_subscription("admin", "group")
        row = _group(ctx.session, group_id, lock=True)
        audit.record(ctx, "group.delete", "group", row.id, before=audit.snapshot(row))
        ctx.session.delete(row)

    # -- members ---------------------------------------------------------------------------

    @staticmethod
    def members(ctx: RequestContext, group_id: uuid.UUID, page: PageRequest) -> list[Member]:
        """Up to ``page.limit + 1`` live members by username then user id."""
        s = ctx.session
        _group(s, group_id)
        query = (
            select(UserGroup, User)
            .join(User, User.id == UserGroup.user_id)
            .where(UserGroup.group_id == group_id, User.deleted_at.is_(None))
        )
        rows = s.execute(keyset(cast("Select[Any]", query), page, User.username, User.id)).all()
        return [Member(membership=m, user=u) for m, u in rows]

    @staticmethod
    def add_member(ctx: RequestContext, group_id: uuid.UUID, user_id: uuid.UUID) -> Member:
        ctx.authz.require_subscription("admin", "group")
        s = ctx.session
        _group(s, group_id, lock=True)
        user = live_user(s, user_id)
        roles = select(GroupRole.role_id).where(GroupRole.group_id == group_id)
        held_by_group = s.execute(
            select(Permission.resource_type, Permission.action).where(Permission.role_id.in_(roles))
        )
        ensure_no_escalation(ctx, [(t, lv) for t, lv in held_by_group])
        row = UserGroup(
            subscription_id=ctx.principal.subscription_id,
            group_id=group_id,
            user_id=user.id,
            added_by=ctx.principal.user_id,
        )
        s.add(row)
        try:
            s.flush()
        except IntegrityError as exc:
            raise Conflict("this user is already a member of the group", field="user_id") from exc
        s.refresh(row)
        audit.record(ctx, "group.member_add", "group", group_id, {"user_id": str(user.id)})
        return Member(membership=row, user=user)

    @staticmethod
    def remove_member(ctx: RequestContext, group_id: uuid.UUID, user_id: uuid.UUID) -> None:
        ctx.authz.require_subscription("admin", "group")
        s = ctx.session
        _group(s, group_id, lock=True)
        gone = s.execute(
            delete(UserGroup).where(UserGroup.group_id == group_id, UserGroup.user_id == user_id)
        )
        if not gone.rowcount:  # type: ignore[attr-defined]
            raise NotFound("this user is not a member of the group")
        audit.record(ctx, "group.member_remove", "group", group_id, {"user_id": str(user_id)})


class RoleService:
    # -- roles -----------------------------------------------------------------------------

    @staticmethod
    def page(ctx: RequestContext, page: PageRequest) -> list[RoleView]:
        s = ctx.session
        rows = list(s.scalars(keyset(select(Role), page, Role.role_name, Role.id)))
        perms = _permissions_of_roles(s, [r.id for r in rows])
        return [RoleView(row=r, permissions=perms[r.id]) for r in rows]

    @staticmethod
    def get(ctx: RequestContext, role_id: uuid.UUID) -> RoleView:
        return _view(ctx.session, _role(ctx.session, role_id))

    @staticmethod
    def create(
        ctx: RequestContext,
        *,
        name: str,
        description: str | None,
        permissions: Sequence[tuple[str, str]],
    ) -> RoleView:
        ctx.authz.require_subscription("admin", "role")
        ensure_no_escalation(ctx, permissions)
        s = ctx.session
        row = Role(
            subscription_id=ctx.principal.subscription_id,
            role_name=name,
            description=description,
            is_system=False,
        )
        s.add(row)
        _flush_named(s, "role", name)
        _replace_permissions(ctx, row, permissions)
        s.refresh(row)
        view = _view(s, row)
        audit.record(ctx, "role.create", "role", row.id, after=_role_image(view))
        return view

    @staticmethod
    def update(ctx: RequestContext, role_id: uuid.UUID, changes: dict[str, Any]) -> RoleView:
        ctx.authz.require_subscription("admin", "role")
        s = ctx.session
        row = _changeable(s, role_id)
        before = _role_image(_view(s, row))
        if "name" in changes:
            row.role_name = changes["name"]
        if "description" in changes:
            row.description = changes["description"]
        _flush_named(s, "role", changes.get("name"))
        s.refresh(row)
        view = _view(s, row)
        audit.record(
            ctx,
            "role.update",
            "role",
            row.id,
            {"fields": sorted(changes)},
            before=before,
            after=_role_image(view),
        )
        return view

    @staticmethod
    def delete(ctx: RequestContext, role_id: uuid.UUID) -> None:
        """Its permissions and assignments go with it."""
        ctx.authz.require_subscription("admin", "role")
        row = _changeable(ctx.session, role_id)
        before = _role_image(_view(ctx.session, row))
        audit.record(ctx, "role.delete", "role", row.id, before=before)
        ctx.session.delete(row)

    @staticmethod
    def set_permissions(
        ctx: RequestContext, role_id: uuid.UUID, permissions: Sequence[tuple[str, str]]
    ) -> RoleView:
        ctx.authz.require_subscription("admin", "role")
        s = ctx.session
        row = _changeable(s, role_id)
        ensure_no_escalation(ctx, permissions)
        before = _role_image(_view(s, row))
        _replace_permissions(ctx, row, permissions)
        s.refresh(row)
        view = _view(s, row)
        audit.record(
            ctx,
            "role.permissions_set",
            "role",
            row.id,
            before=before,
            after=_role_image(view),
        )
        return view

    # -- assignments -----------------------------------------------------------------------

    @staticmethod
    def assignments(ctx: RequestContext, role_id: uuid.UUID, page: PageRequest) -> list[Assignment]:
        """Up to ``page.limit + 1`` assignments (to users and to groups), oldest first."""
        s = ctx.session
        _role(s, role_id)
        both = union_all(
            select(
                UserRole.id,
                UserRole.role_id,
                UserRole.user_id,
                null().label("group_id"),
                UserRole.granted_by,
                UserRole.created_at,
            ).where(UserRole.role_id == role_id),
            select(
                GroupRole.id,
                GroupRole.role_id,
                null().label("user_id"),
                GroupRole.group_id,
                GroupRole.granted_by,
                GroupRole.created_at,
            ).where(GroupRole.role_id == role_id),
        ).subquery()
        query = select(both)
        if page.after is not None:
            after, last_id = page.after
            try:
                last = uuid.UUID(str(last_id))
            except ValueError:
                raise InvalidInput("cursor does not fit this list", field="query.cursor") from None
            query = query.where(
                or_(
                    both.c.created_at > literal(after),
                    and_(both.c.created_at == literal(after), both.c.id > last),
                )
            )
        query = query.order_by(both.c.created_at, both.c.id).limit(page.limit + 1)
        return [Assignment(*row) for row in s.execute(query).all()]

    @staticmethod
    def assign(
        ctx: RequestContext,
        role_id: uuid.UUID,
        *,
        user_id: uuid.UUID | None,
        group_id: uuid.UUID | None,
    ) -> Assignment:
        ctx.authz.require_subscription("admin", "role")
        s = ctx.session
        role = _role(s, role_id, lock=True)
        ensure_no_escalation(ctx, _view(s, role).permissions)
        me, sid = ctx.principal.user_id, ctx.principal.subscription_id
        row: UserRole | GroupRole
        if user_id is not None:
            row = UserRole(
                subscription_id=sid,
                role_id=role.id,
                user_id=live_user(s, user_id).id,
                granted_by=me,
            )
        else:
            assert group_id is not None  # the schema asks for exactly one
            row = GroupRole(
                subscription_id=sid,
                role_id=role.id,
                group_id=_group(s, group_id).id,
                granted_by=me,
            )
        s.add(row)
        try:
            s.flush()
        except IntegrityError as exc:
            who = "user" if user_id is not None else "group"
            raise Conflict(f"this {who} already holds the role", field=f"{who}_id") from exc
        s.refresh(row)
        audit.record(
            ctx,
            "role.assign",
            "role",
            role.id,
            {"assignment_id": str(row.id), "user_id": _str(user_id), "group_id": _str(group_id)},
        )
        return Assignment(
            id=row.id,
            role_id=row.role_id,
            user_id=row.user_id if isinstance(row, UserRole) else None,
            group_id=row.group_id if isinstance(row, GroupRole) else None,
            granted_by=row.granted_by,
            created_at=row.created_at,
        )

    @staticmethod
    def unassign(ctx: RequestContext, role_id: uuid.UUID, assignment_id: uuid.UUID) -> None:
        ctx.authz.require_subscription("admin", "role")
        s = ctx.session
        _role(s, role_id, lock=True)
        for model in (UserRole, GroupRole):
            gone = s.execute(
                delete(model).where(model.id == assignment_id, model.role_id == role_id)
            )
            if gone.rowcount:  # type: ignore[attr-defined]
                audit.record(
                    ctx, "role.unassign", "role", role_id, {"assignment_id": str(assignment_id)}
                )
                return
        raise NotFound("no such assignment of this role")


def _changeable(s: Session, role_id: uuid.UUID) -> Role:
    row = _role(s, role_id, lock=True)
    if row.is_system:
        raise Conflict("a system role cannot be changed or deleted; create a role of your own")
    return row


def _view(s: Session, row: Role) -> RoleView:
    return RoleView(row=row, permissions=_permissions_of_roles(s, [row.id])[row.id])


def _role_image(view: RoleView) -> dict[str, Any]:
    """A role's audit image: its row and the levels it grants."""
    return {**audit.snapshot(view.row), "permissions": [list(p) for p in view.permissions]}


def _str(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


def _replace_permissions(
    ctx: RequestContext, role: Role, permissions: Sequence[tuple[str, str]]
) -> None:
    s = ctx.session
    s.execute(delete(Permission).where(Permission.role_id == role.id))
    s.add_all(
        Permission(
            subscription_id=ctx.principal.subscription_id,
            role_id=role.id,
            resource_type=resource_type,
            action=level,
        )
        for resource_type, level in permissions
    )
    s.flush()


def _flush_named(s: Session, kind: str, name: str | None) -> None:
    try:
        s.flush()
    except IntegrityError as exc:
        raise Conflict(f"a {kind} named {name!r} already exists", field="name") from exc
