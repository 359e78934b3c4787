"""Roles (subscription-wide levels per resource type) and per-object permission grants."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from uzo_api.authz import Level, ObjectType, Source
from uzo_api.pagination import Page
from uzo_api.schemas.common import RequestModel, ResponseModel

#: what a role permission may name: an object type, a subscription-wide resource managed
#: through ``require_subscription`` (users, groups, roles; ``audit``: reading the audit
#: trail), or ``*`` for every type
ResourceType = Literal[
    "workspace",
    "folder",
    "job",
    "workflow",
    "jobpackage",
    "connector",
    "user",
    "group",
    "role",
    "audit",
    "*",
]
RoleName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Description = Annotated[str, StringConstraints(max_length=2000)]


def _one_grantee(user_id: uuid.UUID | None, group_id: uuid.UUID | None) -> None:
    if (user_id is None) == (group_id is None):
        raise ValueError("give exactly one of user_id and group_id")


# -- roles -------------------------------------------------------------------------------------


class RolePermissionCreate(RequestModel):
    resource_type: ResourceType = Field(
        description="The type of object the level applies to, every one of the subscription "
        "(`*`: every type)."
    )
    level: Level


class RolePermissionRead(ResponseModel):
    resource_type: str
    level: str


class RoleCreate(RequestModel):
    name: RoleName
    description: Description | None = None
    permissions: list[RolePermissionCreate] = Field(default_factory=list, max_length=50)

    @field_validator("permissions")
    @classmethod
    def _one_level_per_type(cls, value: list[RolePermissionCreate]) -> list[RolePermissionCreate]:
        return _distinct(value)


class RoleUpdate(RequestModel):
    name: RoleName | None = None
    description: Description | None = Field(default=None, description="null clears it.")

    @field_validator("name")
    @classmethod
    def _name_not_null(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("cannot be null: leave the field out to keep its value")
        return value

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class RolePermissionsUpdate(RequestModel):
    """The role's whole set of permissions: what is not listed is removed."""

    permissions: list[RolePermissionCreate] = Field(max_length=50)

    @field_validator("permissions")
    @classmethod
    def _one_level_per_type(cls, value: list[RolePermissionCreate]) -> list[RolePermissionCreate]:
        return _distinct(value)


def _distinct(value: list[RolePermissionCreate]) -> list[RolePermissionCreate]:
    types = [p.resource_type for p in value]
    repeated = sorted({t for t in types if types.count(t) > 1})
    if repeated:
        raise ValueError(f"one level per resource type; repeated: {', '.join(repeated)}")
    return value


class RoleRead(ResponseModel):
    id: uuid.UUID
    name: str
    description: str | None
    is_system: bool
    permissions: list[RolePermissionRead]
    created_at: dt.datetime
    updated_at: dt.datetime


class RolePage(Page[RoleRead]):
    pass


class RoleAssignmentCreate(RequestModel):
    user_id: uuid.UUID | None = None
    group_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> RoleAssignmentCreate:
        _one_grantee(self.user_id, self.group_id)
        return self


class RoleAssignmentRead(ResponseModel):
    id: uuid.UUID
    role_id: uuid.UUID
    user_id: uuid.UUID | None
    group_id: uuid.UUID | None
    granted_by: uuid.UUID | None
    created_at: dt.datetime


class RoleAssignmentPage(Page[RoleAssignmentRead]):
    pass


# -- object grants -----------------------------------------------------------------------------


class PermissionCreate(RequestModel):
    object_type: ObjectType
    object_id: uuid.UUID
    user_id: uuid.UUID | None = None
    group_id: uuid.UUID | None = None
    level: Level = Field(description="Granting `owner` needs owner on the object.")

    @model_validator(mode="after")
    def _exactly_one(self) -> PermissionCreate:
        _one_grantee(self.user_id, self.group_id)
        return self


class PermissionRead(ResponseModel):
    id: uuid.UUID
    object_type: str
    object_id: uuid.UUID
    user_id: uuid.UUID | None
    group_id: uuid.UUID | None
    level: str
    granted_by: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime


class PermissionPage(Page[PermissionRead]):
    pass


class PermissionCheckResult(ResponseModel):
    user_id: uuid.UUID = Field(description="Whose access was checked.")
    object_type: str
    object_id: uuid.UUID
    needed: Level = Field(description="The level asked about.")
    allowed: bool = Field(description="Whether the user holds at least `needed`.")
    level: Level | None = Field(description="The user's effective level; null: no access.")
    source: Source = Field(
        description="The rule that gave the level: `owner` (the subscription's owner), "
        "`direct` (a grant to the user), `group` (a grant to one of their groups), "
        "`inherited` (a grant on an object above), `role` (a role's permission on the "
        "type), `member` (a subscription-wide connector), `none`."
    )
