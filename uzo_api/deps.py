"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from uzo_api.auth.principal import Principal
from uzo_api.client_address import client_address
from uzo_api.context import RequestContext
from uzo_api.db.router import require_connection
from uzo_api.db.session import Database
from uzo_api.errors import Unauthorized
from uzo_api.openapi import route_params
from uzo_api.services.auth import AuthService
from uzo_api.services.container import Services
from uzo_api.settings import Settings

_bearer = HTTPBearer(
    auto_error=False,
    description="A JWT access token from /api/auth/login, or an API key (`uzo_...`).",
)


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    db: Database = request.app.state.database
    return db


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_auth_service(request: Request) -> AuthService:
    services: Services = request.app.state.services
    return services.auth


async def client_ip(request: Request) -> str:
    """The peer's address, or the client's as told by a trusted proxy (see client_address)."""
    return client_address(
        request.client.host if request.client else None,
        request.headers.get("x-forwarded-for"),
        request.app.state.trusted_proxies,
    )


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DatabaseDep = Annotated[Database, Depends(get_database)]
AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]
ClientIp = Annotated[str, Depends(client_ip)]
ServicesDep = Annotated[Services, Depends(get_services)]


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing bearer token")
    return credentials.credentials


def remember_principal(request: Request, principal: Principal) -> None:
    """Let the request's server_logs record name the caller's tenant and user."""
    request.state.principal = principal


def current_principal(
    request: Request, service: AuthServiceDep, credentials: BearerDep
) -> Principal:
    """The caller, verified in a short transaction of its own: for routes that hold no
    request transaction (a connector test waits on a remote endpoint with none open)."""
    principal = service.authenticate(_token(credentials))
    remember_principal(request, principal)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


@dataclass(frozen=True)
class TenantSessions:
    """The tenant's resources (``data``) and identity (``control``): one session when
    shared; and the caller, verified in the control one."""

    data: Session
    control: Session
    principal: Principal


def tenant_sessions(
    request: Request, service: AuthServiceDep, credentials: BearerDep, services: ServicesDep
) -> Iterator[TenantSessions]:
    """The request's one transaction, in the caller's tenant (see uzo_api.context).

    The caller is verified inside it (one transaction per request, not two). A dedicated
    tenant's resources are in its own database (uzo_api.db.router): the request then has
    a second transaction there, and the control one (identity rows) commits first, so a
    success answer never hides a lost identity change.
    """
    credential = service.credential(_token(credentials))
    router, sid = services.router, credential.subscription_id
    with router.control.session(sid) as control:
        control.begin()
        try:
            principal = service.verify(control, credential)
            remember_principal(request, principal)
            data_db = router.database_for(principal)
            if data_db is router.control:
                yield TenantSessions(control, control, principal)
            else:
                with data_db.session(sid) as data:
                    data.begin()
                    require_connection(data, sid)
                    try:
                        yield TenantSessions(data, control, principal)
                        control.commit()
                    except BaseException:
                        data.rollback()
                        raise
                    data.commit()
                return
        except BaseException:
            control.rollback()
            raise
        control.commit()


# scope="function": committed when the route returns, before the response is sent, so a
# commit that fails is the request's error, never a success answer for a lost change
SessionsDep = Annotated[TenantSessions, Depends(tenant_sessions, scope="function")]


async def tenant_session(sessions: SessionsDep) -> Session:
    return sessions.data


SessionDep = Annotated[Session, Depends(tenant_session)]


async def request_context(sessions: SessionsDep) -> RequestContext:
    return RequestContext.of(sessions.principal, sessions.data, sessions.control)


ContextDep = Annotated[RequestContext, Depends(request_context)]


_PARAM_NAME = re.compile(r"^[A-Za-z0-9_.\-\[\]]{1,100}$")


async def refuse_unknown_query(request: Request) -> None:
    """A router dependency: 422 for a query parameter the route does not declare."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = route_params(route, "query")
    unknown = [k for k in request.query_params if k not in known]
    if unknown:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", name if _PARAM_NAME.match(name) else "?"),
                    "msg": "unknown query parameter"
                    + (f" (this route takes: {', '.join(sorted(known))})" if known else ""),
                    "type": "extra_forbidden",
                }
                for name in unknown
            ]
        )
