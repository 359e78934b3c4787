"""Grants on one object (``object_permissions``) and the question "who may do what here".

Granting, revoking and listing the grants of an object need admin on it (held directly,
through a group, inherited from above, or through a role); a grant of ``owner``, or a
change to one, needs owner on the object. Re-granting to the same user or group updates
the level. The object, the user and the group must be the caller's tenant's: anything
else is a 404, the same answer as for an object that does not exist.

The check answers from :meth:`uzo_api.authz.Authorizer.decide`, the seam every route
uses, for the caller or (for an admin on the object) for another user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, literal_column, select, text
from sqlalchemy.dialects.postgresql import insert

from uzo_api.auth.principal import Principal
from uzo_api.authz import Authorizer
from uzo_api.db.models import Group, ObjectPermission
from uzo_api.db.models.base import new_id
from uzo_api.errors import Forbidden, NotFound
from uzo_api.pagination import keyset
from uzo_api.services import audit
from uzo_api.services.users import live_user

if TYPE_CHECKING:
    import uuid

    from uzo_api.authz import Decision
    from uzo_api.context import RequestContext
    from uzo_api.pagination import PageRequest

OWNER_NEEDED = "granting, changing or revoking owner needs owner on the {object_type}"


@dataclass(frozen=True)
class Check:
    user_id: uuid.UUID
    decision: Decision


class PermissionService:
    @staticmethod
    def grant(
        ctx: RequestContext,
        *,
        object_type: str,
        object_id: uuid.UUID,
        user_id: uuid.UUID | None,
        group_id: uuid.UUID | None,
        level: str,
    ) -> tuple[ObjectPermission, bool]:
        """The grant and whether it is new (False: an existing one's level was changed)."""
        s = ctx.session
        row = ctx.authz.load(object_type, object_id)
        mine = ctx.authz.require_row("admin", object_type, row)
        if user_id is not None:
            live_user(s, user_id)
        elif group_id is not None and s.get(Group, group_id) is None:
            raise NotFound("no such group", field="group_id")
        grantee = (
            ObjectPermission.user_id == user_id
            if user_id is not None
            else ObjectPermission.group_id == group_id
        )
        previous = s.scalar(
            select(ObjectPermission)
            .where(
                ObjectPermission.object_type == object_type,
                ObjectPermission.object_id == object_id,
                grantee,
            )
            .with_for_update()
        )
        existing = previous.permission_level if previous is not None else None
        before = audit.snapshot(previous) if previous is not None else None
        if "owner" in (level, existing) and not mine.allows("owner"):
            raise Forbidden(OWNER_NEEDED.format(object_type=object_type), field="level")
        me = ctx.principal.user_id
        column = "user_id" if user_id is not None else "group_id"
        statement: Any = (
            insert(ObjectPermission)
            .values(
                id=new_id(),
                subscription_id=ctx.principal.subscription_id,
                object_type=object_type,
                object_id=object_id,
                user_id=user_id,
                group_id=group_id,
                permission_level=level,
                granted_by=me,
            )
            .on_conflict_do_update(  # the partial unique index of this kind of grantee
                index_elements=["object_type", "object_id", column],
                index_where=text(f"{column} IS NOT NULL"),
                set_={"permission_level": level, "granted_by": me, "updated_at": func.now()},
            )
            .returning(ObjectPermission.id, literal_column("xmax = 0"))
        )
        grant_id, created = s.execute(statement).one()
        grant = s.get(ObjectPermission, grant_id, populate_existing=True)
        assert grant is not None
        audit.record(
            ctx,
            "permission.grant",
            "permission",
            grant.id,
            {"object_type": object_type, "object_id": str(object_id), "level": level},
            before=before,
            after=audit.snapshot(grant),
        )
        return grant, bool(created)

    @staticmethod
    def revoke(ctx: RequestContext, permission_id: uuid.UUID) -> None:
        s = ctx.session
        grant = s.get(ObjectPermission, permission_id, with_for_update=True)
        if grant is None:  # another tenant's grant is invisible under RLS: also a 404
            raise NotFound("no such permission grant")
        mine = ctx.authz.require_row(
            "admin", grant.object_type, ctx.authz.load(grant.object_type, grant.object_id)
        )
        if grant.permission_level == "owner" and not mine.allows("owner"):
            raise Forbidden(OWNER_NEEDED.format(object_type=grant.object_type))
        audit.record(
            ctx,
            "permission.revoke",
            "permission",
            grant.id,
            {"object_type": grant.object_type, "object_id": str(grant.object_id)},
            before=audit.snapshot(grant),
        )
        s.delete(grant)

    @staticmethod
    def page(
        ctx: RequestContext, object_type: str, object_id: uuid.UUID, page: PageRequest
    ) -> list[ObjectPermission]:
        """Up to ``page.limit + 1`` grants on the object, oldest first."""
        ctx.authz.require("admin", object_type, object_id)
        query = select(ObjectPermission).where(
            ObjectPermission.object_type == object_type, ObjectPermission.object_id == object_id
        )
        return list(
            ctx.session.scalars(
                keyset(query, page, ObjectPermission.created_at, ObjectPermission.id)
            )
        )

    @staticmethod
    def check(
        ctx: RequestContext,
        object_type: str,
        object_id: uuid.UUID,
        user_id: uuid.UUID | None,
    ) -> Check:
        """The caller's decision on the object, or another user's for an admin on it."""
        row: Any = ctx.authz.load(object_type, object_id, light=True)
        me = ctx.principal
        if user_id is None or user_id == me.user_id:
            return Check(user_id=me.user_id, decision=ctx.authz.decide(object_type, row))
        ctx.authz.require_row("admin", object_type, row)
        user = live_user(ctx.session, user_id)
        other = Principal(
            user_id=user.id,
            subscription_id=me.subscription_id,
            method="jwt",
            is_owner=user.is_subscription_owner,
        )
        return Check(
            user_id=user.id, decision=Authorizer(ctx.session, other).decide(object_type, row)
        )
