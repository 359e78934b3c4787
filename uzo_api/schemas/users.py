"""Users of a subscription, and groups of them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from pydantic import EmailStr, Field, StringConstraints, field_validator

from uzo_api.pagination import Page
from uzo_api.schemas.auth import Name, Password, Username, UserRead
from uzo_api.schemas.common import RequestModel, ResponseModel

GroupName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=2000)]


def _not_null(value: Any) -> Any:
    """Runs only on a value sent (defaults are not validated): null is not "no change"."""
    if value is None:
        raise ValueError("cannot be null: leave the field out to keep its value")
    return value


class UserCreate(RequestModel):
    email: EmailStr
    username: Username | None = Field(
        default=None, description="Defaults to the email's local part."
    )
    full_name: Name | None = None
    password: Password | None = Field(
        default=None,
        description="At least 10 characters. Without one, the user is invited: a single-use "
        "link to set a password is mailed to them (valid 72 hours).",
    )


class UserUpdate(RequestModel):
    """The fields an administrator may change. Email, password and ids cannot be set here
    (a user sets their own password through the reset-password flow)."""

    username: Username | None = None
    full_name: Name | None = Field(default=None, description="null clears it.")
    is_active: bool | None = Field(
        default=None, description="false disables login and ends the user's sessions."
    )
    is_subscription_owner: bool | None = Field(
        default=None, description="Only an owner may make or unmake owners."
    )

    _non_null = field_validator("username", "is_active", "is_subscription_owner")(_not_null)

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class UserCreateResult(UserRead):
    invitation_sent: bool = Field(
        description="True when no password was given and a set-password link was mailed."
    )


class UserPage(Page[UserRead]):
    pass


class GroupCreate(RequestModel):
    name: GroupName
    description: Description | None = None


class GroupUpdate(RequestModel):
    name: GroupName | None = None
    description: Description | None = Field(default=None, description="null clears it.")

    _non_null = field_validator("name")(_not_null)

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class GroupRead(ResponseModel):
    id: uuid.UUID
    name: str
    description: str | None
    created_by: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime


class GroupPage(Page[GroupRead]):
    pass


class GroupMemberCreate(RequestModel):
    user_id: uuid.UUID


class GroupMemberRead(ResponseModel):
    group_id: uuid.UUID
    user_id: uuid.UUID
    username: str
    email: str
    full_name: str | None
    added_by: uuid.UUID | None
    added_at: dt.datetime


class GroupMemberPage(Page[GroupMemberRead]):
    pass
