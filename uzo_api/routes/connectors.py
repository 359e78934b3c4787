"""/api/connector-types and /api/connectors."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from fastapi import APIRouter, Response, status
from starlette.concurrency import run_in_threadpool

from uzo_api.deps import ConnectorServiceDep, CurrentPrincipal, RemoteCallsDep
from uzo_api.errors import UpstreamTimeout, problem_responses
from uzo_api.schemas.connectors import (
    ColumnOut,
    ConnectionTestOut,
    ConnectorCreate,
    ConnectorOut,
    ConnectorTypeOut,
    ConnectorUpdate,
    DatasetOut,
    DiscoverOut,
)
from uzo_api.services.remote_calls import RemoteCallTimeout

if TYPE_CHECKING:
    from uzo_api.services.connectors import ConnectorView

router = APIRouter(tags=["connectors"])


def _out(view: ConnectorView) -> ConnectorOut:
    row = view.row
    return ConnectorOut(
        id=row.id,
        connector_name=row.connector_name,
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


@router.get(
    "/api/connector-types",
    responses=problem_responses(401),
    summary="Every available connector type, with its config JSON Schema",
)
def list_connector_types(
    _: CurrentPrincipal, service: ConnectorServiceDep
) -> list[ConnectorTypeOut]:
    return [ConnectorTypeOut(**t.to_dict()) for t in service.list_types()]


@router.get(
    "/api/connector-types/{type_key}",
    responses=problem_responses(401, 404),
    summary="One connector type: config JSON Schema and capabilities",
)
def get_connector_type(
    type_key: str, _: CurrentPrincipal, service: ConnectorServiceDep
) -> ConnectorTypeOut:
    return ConnectorTypeOut(**service.get_type(type_key).to_dict())


@router.get("/api/connectors", responses=problem_responses(401), summary="Your connectors")
def list_connectors(
    principal: CurrentPrincipal, service: ConnectorServiceDep
) -> list[ConnectorOut]:
    return [_out(v) for v in service.all(principal)]


@router.post(
    "/api/connectors",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Create a connector (secrets are encrypted and never returned)",
)
def create_connector(
    body: ConnectorCreate, principal: CurrentPrincipal, service: ConnectorServiceDep
) -> ConnectorOut:
    view = service.create(
        principal,
        name=body.connector_name,
        type_key=body.connector_type,
        config=body.config,
        description=body.description,
        workspace_id=body.workspace_id,
    )
    return _out(view)


@router.get(
    "/api/connectors/{connector_id}",
    responses=problem_responses(401, 404),
    summary="One connector (secrets masked)",
)
def get_connector(
    connector_id: uuid.UUID, principal: CurrentPrincipal, service: ConnectorServiceDep
) -> ConnectorOut:
    return _out(service.get(principal, connector_id))


@router.patch(
    "/api/connectors/{connector_id}",
    responses=problem_responses(401, 404, 409, 422),
    summary="Update a connector; omitted secrets keep their value",
)
def update_connector(
    connector_id: uuid.UUID,
    body: ConnectorUpdate,
    principal: CurrentPrincipal,
    service: ConnectorServiceDep,
) -> ConnectorOut:
    view = service.update(
        principal,
        connector_id,
        name=body.connector_name,
        description=body.description,
        config=body.config,
        keep_secrets=body.keep_secrets,
    )
    return _out(view)


@router.delete(
    "/api/connectors/{connector_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 404),
    summary="Delete a connector",
)
def delete_connector(
    connector_id: uuid.UUID, principal: CurrentPrincipal, service: ConnectorServiceDep
) -> Response:
    service.delete(principal, connector_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/api/connectors/{connector_id}/test",
    responses=problem_responses(401, 404, 422, 429),
    summary="Try to connect; the outcome is recorded on the connector",
    description="`status: failed` means the endpoint was tried and failed (or did not answer "
    "in time); an endpoint or option UZO refuses to try is a 422 problem.",
)
async def test_connector(
    connector_id: uuid.UUID,
    principal: CurrentPrincipal,
    service: ConnectorServiceDep,
    calls: RemoteCallsDep,
) -> ConnectionTestOut:
    try:
        outcome = await calls.run(principal.subscription_id, service.test, principal, connector_id)
    except RemoteCallTimeout as exc:
        await run_in_threadpool(service.record_test, principal, connector_id, ok=False)
        return ConnectionTestOut(
            status="failed",
            detail=f"the endpoint did not answer within {exc.seconds:g} s",
            duration_ms=round(exc.seconds * 1000, 1),
        )
    return ConnectionTestOut(
        status="ok" if outcome.ok else "failed",
        detail=outcome.detail,
        duration_ms=outcome.duration_ms,
    )


@router.get(
    "/api/connectors/{connector_id}/discover",
    responses=problem_responses(401, 404, 422, 429, 502, 504),
    summary="Tables, files or collections the connector can read, with their schemas",
)
async def discover_connector(
    connector_id: uuid.UUID,
    principal: CurrentPrincipal,
    service: ConnectorServiceDep,
    calls: RemoteCallsDep,
) -> DiscoverOut:
    try:
        datasets = await calls.run(
            principal.subscription_id, service.discover, principal, connector_id
        )
    except RemoteCallTimeout as exc:
        raise UpstreamTimeout(f"discovery did not finish: {exc}") from None
    return DiscoverOut(
        connector_id=connector_id,
        datasets=[
            DatasetOut(
                name=d.name,
                kind=d.kind,
                columns=None
                if d.schema is None
                else [
                    ColumnOut(name=f.name, type=str(f.type), nullable=f.nullable) for f in d.schema
                ],
                num_rows=d.num_rows,
                size_bytes=d.size_bytes,
            )
            for d in datasets
        ],
    )
