"""Subscriptions, as platform admins manage them.

A PATCH changes only the fields it names; the settable ones are ``company_name``,
``status`` and ``plan_key`` (``infrastructure_type`` may be sent with its current
value; ``uzo tenant provision`` moves a tenant to a dedicated database). Anything
else, such as ``id``,
``plan_id``, ``subscription_id``, ``dedicated_database_url``, ``settings`` or
``deleted_at``, is refused (422), as are values outside each field's set.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import EmailStr, Field, StringConstraints, field_validator

from uzo_api.pagination import Page
from uzo_api.schemas.auth import SubscriptionRead
from uzo_api.schemas.common import RequestModel

CompanyName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
PlanKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
Status = Literal["active", "suspended", "cancelled"]
Infrastructure = Literal["shared", "dedicated"]
Sort = Literal["company_name", "-company_name", "created_at", "-created_at"]

__all__ = [
    "Infrastructure",
    "Sort",
    "Status",
    "SubscriptionCreate",
    "SubscriptionOwnerCreate",
    "SubscriptionPage",
    "SubscriptionRead",
    "SubscriptionUpdate",
]


class SubscriptionOwnerCreate(RequestModel):
    email: EmailStr = Field(description="The owner's email (their login).")
    password: Annotated[str, StringConstraints(min_length=10, max_length=200)]
    username: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    full_name: Annotated[str, StringConstraints(max_length=200)] | None = None


class SubscriptionCreate(RequestModel):
    company_name: CompanyName
    plan_key: PlanKey = Field(default="standard", description="An active plan's key.")
    infrastructure_type: Infrastructure = "shared"
    owner: SubscriptionOwnerCreate = Field(description="The subscription's first user, its owner.")


class SubscriptionUpdate(RequestModel):
    company_name: CompanyName | None = None
    status: Status | None = Field(
        default=None,
        description="active <-> suspended; either -> cancelled, which is final. A "
        "subscription that is not active locks its users out at once.",
    )
    plan_key: PlanKey | None = Field(default=None, description="Its limits apply at once.")
    infrastructure_type: Infrastructure | None = Field(
        default=None,
        description="Only its current value: `uzo tenant provision` creates, migrates and "
        "registers a dedicated tenant's database, then switches it.",
    )

    @field_validator("*", mode="after")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # only a value sent is validated: null is refused, leaving a field out keeps it
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep its value")
        return value

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class SubscriptionPage(Page[SubscriptionRead]):
    pass
