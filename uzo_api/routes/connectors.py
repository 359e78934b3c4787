"""/api/connector-types and /api/connectors."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Response, status
from starlette.concurrency import run_in_threadpool

from uzo_api.authz import permission
from uzo_api.deps import (
    ContextDep,
    CurrentPrincipal,
    ServicesDep,
    refuse_unknown_query,
)
from uzo_api.errors import UpstreamTimeout, problem_responses
from uzo_api.pagination import PageParams, in_memory
from uzo_api.schemas.connectors import (
    ColumnRead,
    ConnectionTestResult,
    ConnectorCreate,
    ConnectorPage,
    ConnectorRead,
    ConnectorTypePage,
    ConnectorTypeRead,
    ConnectorUpdate,
    DatasetRead,
    DiscoveryResult,
)
from uzo_api.services.remote_calls import RemoteCallTimeout

if TYPE_CHECKING:
    from uzo_api.services.connectors import ConnectorView
    from uzo_connectors.registry import ConnectorTypeInfo

router = APIRouter(tags=["connectors"], dependencies=[Depends(refuse_unknown_query)])


def _out(view: ConnectorView) -> ConnectorRead:
    row = view.row
    return ConnectorRead(
        id=row.id,
        name=row.connector_name,
        connector_type=row.connector_type,
        description=row.description,
        config=view.config,
        secrets_set=view.secrets_set,
        workspace_id=row.workspace_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_tested_at=row.last_tested_at,
        last_test_status=row.last_test_status,
    )


def _type(info: ConnectorTypeInfo) -> ConnectorTypeRead:
    fields = info.to_dict()
    return ConnectorTypeRead(connector_type=fields.pop("name"), **fields)


@router.get(
    "/api/connector-types",
    summary="Every connector type: config JSON Schema, and whether it is installed",
    openapi_extra=permission("authenticated"),
    description="Types whose optional packages are missing are listed too, with "
    "`installed: false` and the `extra` that brings them.",
)
def list_connector_types(
    _: CurrentPrincipal, services: ServicesDep, page: PageParams
) -> ConnectorTypePage:
    chosen = in_memory(services.connectors.list_types(), page, key=lambda t: t.name)
    cursor, link = page.finish([(t.name, t.name) for t in chosen])
    return ConnectorTypePage(
        items=[_type(t) for t in chosen[: page.limit]], next_cursor=cursor, next=link
    )


@router.get(
    "/api/connector-types/{connector_type}",
    responses=problem_responses(404),
    summary="One connector type: config JSON Schema and capabilities",
    openapi_extra=permission("authenticated"),
)
def get_connector_type(
    connector_type: str, _: CurrentPrincipal, services: ServicesDep
) -> ConnectorTypeRead:
    return _type(services.connectors.get_type(connector_type))


@router.get(
    "/api/connectors",
    summary="The connectors you may read, by name",
    openapi_extra=permission("read on connector (listed only where held)"),
)
def list_connectors(ctx: ContextDep, services: ServicesDep, page: PageParams) -> ConnectorPage:
    views = services.connectors.page(ctx, page)
    cursor, link = page.finish([(v.row.connector_name, v.row.id) for v in views])
    return ConnectorPage(
        items=[_out(v) for v in views[: page.limit]], next_cursor=cursor, next=link
    )


@router.post(
    "/api/connectors",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 404, 409),
    summary="Create a connector (secrets are encrypted and never returned)",
    openapi_extra=permission("read_write on workspace (or on every connector, without one)"),
)
def create_connector(
    body: ConnectorCreate, ctx: ContextDep, services: ServicesDep
) -> ConnectorRead:
    view = services.connectors.create(
        ctx,
        name=body.name,
        type_key=body.connector_type,
        config=body.config,
        description=body.description,
        workspace_id=body.workspace_id,
    )
    return _out(view)


@router.get(
    "/api/connectors/{connector_id}",
    responses=problem_responses(404),
    summary="One connector (secrets masked)",
    openapi_extra=permission("read on connector"),
)
def get_connector(connector_id: uuid.UUID, ctx: ContextDep, services: ServicesDep) -> ConnectorRead:
    return _out(services.connectors.get(ctx, connector_id))


@router.patch(
    "/api/connectors/{connector_id}",
    responses=problem_responses(404, 409),
    summary="Update a connector; omitted secrets keep their value",
    openapi_extra=permission("read_write on connector"),
)
def update_connector(
    connector_id: uuid.UUID,
    body: ConnectorUpdate,
    ctx: ContextDep,
    services: ServicesDep,
) -> ConnectorRead:
    view = services.connectors.update(
        ctx,
        connector_id,
        name=body.name,
        description=body.description,
        config=body.config,
        keep_secrets=body.keep_secrets,
    )
    return _out(view)


@router.delete(
    "/api/connectors/{connector_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404),
    summary="Delete a connector",
    openapi_extra=permission("admin on connector"),
)
def delete_connector(connector_id: uuid.UUID, ctx: ContextDep, services: ServicesDep) -> Response:
    services.connectors.delete(ctx, connector_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/api/connectors/{connector_id}/test",
    responses=problem_responses(404, 429),
    summary="Try to connect; the outcome is recorded on the connector",
    openapi_extra=permission("read on connector"),
    description="`status: failed` means the endpoint was tried and failed (or did not answer "
    "in time); an endpoint or option UZO refuses to try is a 422 problem.",
)
async def test_connector(
    connector_id: uuid.UUID,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> ConnectionTestResult:
    service, calls = services.connectors, services.remote_calls
    try:
        outcome = await calls.run(principal.subscription_id, service.test, principal, connector_id)
    except RemoteCallTimeout as exc:
        await run_in_threadpool(service.record_test, principal, connector_id, ok=False)
        return ConnectionTestResult(
            status="failed",
            detail=f"the endpoint did not answer within {exc.seconds:g} s",
            duration_ms=round(exc.seconds * 1000, 1),
        )
    return ConnectionTestResult(
        status="ok" if outcome.ok else "failed",
        detail=outcome.detail,
        duration_ms=outcome.duration_ms,
    )


@router.get(
    "/api/connectors/{connector_id}/discover",
    responses=problem_responses(404, 429, 502, 504),
    summary="Tables, files or collections the connector can read, with their schemas",
    openapi_extra=permission("read on connector"),
)
async def discover_connector(
    connector_id: uuid.UUID,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> DiscoveryResult:
    try:
        datasets = await services.remote_calls.run(
            principal.subscription_id, services.connectors.discover, principal, connector_id
        )
    except RemoteCallTimeout as exc:
        raise UpstreamTimeout(f"discovery did not finish: {exc}") from None
    return DiscoveryResult(
        connector_id=connector_id,
        datasets=[
            DatasetRead(
                name=d.name,
                kind=d.kind,
                columns=None
                if d.schema is None
                else [
                    ColumnRead(name=f.name, type=str(f.type), nullable=f.nullable) for f in d.schema
                ],
                num_rows=d.num_rows,
                size_bytes=d.size_bytes,
            )
            for d in datasets
        ],
    )
