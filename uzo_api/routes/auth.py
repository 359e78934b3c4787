"""/api/auth: register, login, refresh, logout, password reset, me, API keys."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Header, Response, status

from uzo_api.authz import permission
from uzo_api.deps import AuthServiceDep, ClientIp, CurrentPrincipal, refuse_unknown_query
from uzo_api.errors import problem_responses
from uzo_api.pagination import PageParams
from uzo_api.schemas.auth import (
    AcceptedResult,
    ApiKeyCreate,
    ApiKeyCreateResult,
    ApiKeyPage,
    ApiKeyRead,
    CurrentUserRead,
    ForgotPasswordRequest,
    LoginRequest,
    RefreshRequest,
    RegisterRequest,
    RegistrationResult,
    ResetPasswordRequest,
    SubscriptionRead,
    TokenResult,
    UserRead,
)

if TYPE_CHECKING:
    from uzo_api.services.auth import Account, IssuedTokens

router = APIRouter(prefix="/api/auth", tags=["auth"], dependencies=[Depends(refuse_unknown_query)])
UserAgent = Annotated[str | None, Header(include_in_schema=False)]


def _tokens(t: IssuedTokens) -> TokenResult:
    return TokenResult(
        access_token=t.access_token,
        expires_in=t.expires_in,
        refresh_token=t.refresh_token,
        refresh_expires_in=t.refresh_expires_in,
    )


def _subscription(account: Account) -> SubscriptionRead:
    sub = account.subscription
    return SubscriptionRead(
        id=sub.id,
        company_name=sub.company_name,
        status=sub.status,
        plan_key=account.plan_key,
        infrastructure_type=sub.infrastructure_type,
        created_at=sub.created_at,
    )


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 409, 429),
    summary="Create a subscription (Standard plan) and its owner",
    description="Open to anyone, to holders of an invitation token, or to nobody, as the "
    "server's `UZO_AUTH_REGISTRATION` says (`open`, `invite`, `closed`): 403 when refused.",
    openapi_extra=permission("public"),
)
def register(body: RegisterRequest, service: AuthServiceDep, ip: ClientIp) -> RegistrationResult:
    account = service.register(body, ip)
    return RegistrationResult(
        user=UserRead.model_validate(account.user), subscription=_subscription(account)
    )


@router.post(
    "/login",
    responses=problem_responses(401, 429),
    summary="Exchange email and password for an access and a refresh token",
    openapi_extra=permission("public"),
)
def login(
    body: LoginRequest, service: AuthServiceDep, ip: ClientIp, user_agent: UserAgent = None
) -> TokenResult:
    return _tokens(service.login(str(body.email), body.password, ip, user_agent))


@router.post(
    "/refresh",
    responses=problem_responses(401),
    summary="Rotate a refresh token (reusing a spent one ends the session)",
    openapi_extra=permission("public"),
)
def refresh(
    body: RefreshRequest, service: AuthServiceDep, ip: ClientIp, user_agent: UserAgent = None
) -> TokenResult:
    return _tokens(service.refresh(body.refresh_token, ip, user_agent))


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="End this session: its refresh and access tokens stop working",
    openapi_extra=permission("authenticated"),
)
def logout(principal: CurrentPrincipal, service: AuthServiceDep) -> Response:
    service.logout(principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/forgot-password",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(429),
    summary="Mail a single-use password reset link",
    openapi_extra=permission("public"),
)
def forgot_password(
    body: ForgotPasswordRequest, service: AuthServiceDep, ip: ClientIp
) -> AcceptedResult:
    service.forgot_password(str(body.email), ip)
    return AcceptedResult(detail="if an account has this email, a reset link has been sent to it")


@router.post(
    "/reset-password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set a new password with a reset token (ends every session)",
    description="Every session ends and every reset token of the account is spent. API keys "
    "keep working unless `revoke_api_keys` is true (list them with GET /api/auth/api-keys).",
    openapi_extra=permission("public"),
)
def reset_password(body: ResetPasswordRequest, service: AuthServiceDep) -> Response:
    service.reset_password(body.token, body.new_password, revoke_api_keys=body.revoke_api_keys)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", summary="The calling user", openapi_extra=permission("authenticated"))
def get_current_user(principal: CurrentPrincipal, service: AuthServiceDep) -> CurrentUserRead:
    account = service.account(principal)
    return CurrentUserRead(
        user=UserRead.model_validate(account.user),
        subscription=_subscription(account),
        auth_method=principal.method,
    )


@router.post(
    "/api-keys",
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key (the key is shown once)",
    openapi_extra=permission("authenticated"),
)
def create_api_key(
    body: ApiKeyCreate, principal: CurrentPrincipal, service: AuthServiceDep
) -> ApiKeyCreateResult:
    key, token = service.create_api_key(principal, body.name, body.expires_in_days)
    return ApiKeyCreateResult(**ApiKeyRead.model_validate(key).model_dump(), key=token)


@router.get(
    "/api-keys",
    summary="Your API keys, oldest first (no secrets)",
    openapi_extra=permission("authenticated"),
)
def list_api_keys(
    principal: CurrentPrincipal, service: AuthServiceDep, page: PageParams
) -> ApiKeyPage:
    keys = service.list_api_keys(principal, page)
    cursor, link = page.finish([(k.created_at, k.id) for k in keys])
    return ApiKeyPage(
        items=[ApiKeyRead.model_validate(k) for k in keys[: page.limit]],
        next_cursor=cursor,
        next=link,
    )


@router.delete(
    "/api-keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404),
    summary="Revoke an API key",
    openapi_extra=permission("authenticated"),
)
def revoke_api_key(
    key_id: uuid.UUID, principal: CurrentPrincipal, service: AuthServiceDep
) -> Response:
    service.revoke_api_key(principal, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
