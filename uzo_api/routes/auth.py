"""/api/auth: register, login, refresh, logout, password reset, me, API keys."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Header, Response, status

from uzo_api.deps import AuthServiceDep, ClientIp, CurrentPrincipal
from uzo_api.errors import problem_responses
from uzo_api.schemas.auth import (
    Accepted,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    ForgotPasswordRequest,
    LoginRequest,
    MeResponse,
    RefreshRequest,
    RegisterRequest,
    RegisterResponse,
    ResetPasswordRequest,
    SubscriptionOut,
    TokenPair,
    UserOut,
)

if TYPE_CHECKING:
    from uzo_api.services.auth import Account, IssuedTokens

router = APIRouter(prefix="/api/auth", tags=["auth"])
UserAgent = Annotated[str | None, Header(include_in_schema=False)]


def _tokens(t: IssuedTokens) -> TokenPair:
    return TokenPair(
        access_token=t.access_token,
        expires_in=t.expires_in,
        refresh_token=t.refresh_token,
        refresh_expires_in=t.refresh_expires_in,
    )


def _subscription(account: Account) -> SubscriptionOut:
    sub = account.subscription
    return SubscriptionOut(
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
    responses=problem_responses(409, 422, 429),
    summary="Create a subscription (Standard plan) and its owner",
)
def register(body: RegisterRequest, service: AuthServiceDep, ip: ClientIp) -> RegisterResponse:
    account = service.register(body, ip)
    return RegisterResponse(
        user=UserOut.model_validate(account.user), subscription=_subscription(account)
    )


@router.post(
    "/login",
    responses=problem_responses(401, 422, 429),
    summary="Exchange email and password for an access and a refresh token",
)
def login(
    body: LoginRequest, service: AuthServiceDep, ip: ClientIp, user_agent: UserAgent = None
) -> TokenPair:
    return _tokens(service.login(str(body.email), body.password, ip, user_agent))


@router.post(
    "/refresh",
    responses=problem_responses(401, 422),
    summary="Rotate a refresh token (reusing a spent one ends the session)",
)
def refresh(
    body: RefreshRequest, service: AuthServiceDep, ip: ClientIp, user_agent: UserAgent = None
) -> TokenPair:
    return _tokens(service.refresh(body.refresh_token, ip, user_agent))


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 422),
    summary="End this session: its refresh and access tokens stop working",
)
def logout(principal: CurrentPrincipal, service: AuthServiceDep) -> Response:
    service.logout(principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/forgot-password",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(422, 429),
    summary="Mail a single-use password reset link",
)
def forgot_password(body: ForgotPasswordRequest, service: AuthServiceDep, ip: ClientIp) -> Accepted:
    service.forgot_password(str(body.email), ip)
    return Accepted(detail="if an account has this email, a reset link has been sent to it")


@router.post(
    "/reset-password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(422),
    summary="Set a new password with a reset token (ends every session)",
    description="Every session ends and every reset token of the account is spent. API keys "
    "keep working unless `revoke_api_keys` is true (list them with GET /api/auth/api-keys).",
)
def reset_password(body: ResetPasswordRequest, service: AuthServiceDep) -> Response:
    service.reset_password(body.token, body.new_password, revoke_api_keys=body.revoke_api_keys)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", responses=problem_responses(401), summary="The calling user")
def me(principal: CurrentPrincipal, service: AuthServiceDep) -> MeResponse:
    account = service.account(principal)
    return MeResponse(
        user=UserOut.model_validate(account.user),
        subscription=_subscription(account),
        auth_method=principal.method,
    )


@router.post(
    "/api-keys",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 422),
    summary="Create an API key (the key is shown once)",
)
def create_api_key(
    body: ApiKeyCreate, principal: CurrentPrincipal, service: AuthServiceDep
) -> ApiKeyCreated:
    key, token = service.create_api_key(principal, body.name, body.expires_in_days)
    return ApiKeyCreated(**ApiKeyOut.model_validate(key).model_dump(), key=token)


@router.get("/api-keys", responses=problem_responses(401), summary="Your API keys (no secrets)")
def list_api_keys(principal: CurrentPrincipal, service: AuthServiceDep) -> list[ApiKeyOut]:
    return [ApiKeyOut.model_validate(k) for k in service.list_api_keys(principal)]


@router.delete(
    "/api-keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 404, 422),
    summary="Revoke an API key",
)
def revoke_api_key(
    key_id: uuid.UUID, principal: CurrentPrincipal, service: AuthServiceDep
) -> Response:
    service.revoke_api_key(principal, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
