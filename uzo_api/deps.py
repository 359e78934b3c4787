"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from uzo_api.auth.principal import Principal
from uzo_api.client_address import client_address
from uzo_api.context import RequestContext
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
_PRINCIPAL = "principal"


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing bearer token")
    return credentials.credentials


def current_principal(service: AuthServiceDep, credentials: BearerDep) -> Principal:
    """The caller, verified in a short transaction of its own: for routes that hold no
    request transaction (a connector test waits on a remote endpoint with none open)."""
    return service.authenticate(_token(credentials))


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def tenant_session(
    service: AuthServiceDep, credentials: BearerDep, db: DatabaseDep
) -> Iterator[Session]:
    """The request's one transaction, in the caller's tenant (see uzo_api.context). The
    caller is verified inside it, so a request costs one transaction, not two."""
    credential = service.credential(_token(credentials))
    with db.tenant(credential.subscription_id) as session:
        session.info[_PRINCIPAL] = service.verify(session, credential)
        yield session


# scope="function": committed when the route returns, before the response is sent, so a
# commit that fails is the request's error, never a success answer for a lost change
SessionDep = Annotated[Session, Depends(tenant_session, scope="function")]


async def request_context(session: SessionDep) -> RequestContext:
    principal: Principal = session.info[_PRINCIPAL]
    return RequestContext.of(principal, session)


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
