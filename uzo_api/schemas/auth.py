"""Authentication requests and responses."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import EmailStr, Field, StringConstraints

from uzo_api.pagination import Page
from uzo_api.schemas.common import RequestModel, ResponseModel

Password = Annotated[str, StringConstraints(min_length=10, max_length=256)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Username = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{3,100}$")]
OpaqueToken = Annotated[str, StringConstraints(min_length=16, max_length=512)]


class RegisterRequest(RequestModel):
    email: EmailStr
    password: Password = Field(description="At least 10 characters.")
    company_name: Name
    username: Username | None = Field(
        default=None, description="Defaults to the email's local part."
    )
    full_name: Name | None = None
    invite_token: OpaqueToken | None = Field(
        default=None,
        description="Required when the server's registration is 'invite' (UZO_AUTH_REGISTRATION).",
    )


class LoginRequest(RequestModel):
    email: EmailStr
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class RefreshRequest(RequestModel):
    refresh_token: OpaqueToken


class ForgotPasswordRequest(RequestModel):
    email: EmailStr


class ResetPasswordRequest(RequestModel):
    token: OpaqueToken
    new_password: Password
    revoke_api_keys: bool = Field(
        default=False, description="Also revoke every API key of the account."
    )


class TokenResult(ResponseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_token: str
    refresh_expires_in: int


class UserRead(ResponseModel):
    id: uuid.UUID
    subscription_id: uuid.UUID
    username: str
    email: str
    full_name: str | None
    is_active: bool
    is_subscription_owner: bool
    created_at: dt.datetime
    last_login_at: dt.datetime | None


class SubscriptionRead(ResponseModel):
    id: uuid.UUID
    company_name: str
    status: str
    plan_key: str
    infrastructure_type: str
    created_at: dt.datetime


class RegistrationResult(ResponseModel):
    user: UserRead
    subscription: SubscriptionRead


class CurrentUserRead(ResponseModel):
    user: UserRead
    subscription: SubscriptionRead
    auth_method: Literal["jwt", "api_key"]


class AcceptedResult(ResponseModel):
    detail: str


class ApiKeyCreate(RequestModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class ApiKeyRead(ResponseModel):
    id: uuid.UUID
    name: str
    prefix: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None


class ApiKeyPage(Page[ApiKeyRead]):
    pass


class ApiKeyCreateResult(ApiKeyRead):
    key: str = Field(description="The secret key. Shown once: store it now.")
