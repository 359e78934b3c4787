"""Connector types and tenant connectors."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from uzo_api.schemas.common import RequestModel, ResponseModel

ConnectorName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
TypeKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,79}$")]


class ConnectorTypeOut(ResponseModel):
    name: str
    display_name: str
    category: str
    description: str
    config_schema: dict[str, Any] = Field(description="JSON Schema of the config form.")
    capabilities: dict[str, Any]
    secret_fields: list[str]


class ConnectorCreate(RequestModel):
    connector_name: ConnectorName
    connector_type: TypeKey
    config: dict[str, Any] = Field(
        description="Validated by the type's config schema; secret fields are encrypted."
    )
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    workspace_id: uuid.UUID | None = None


class ConnectorUpdate(RequestModel):
    connector_name: ConnectorName | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    config: dict[str, Any] | None = Field(
        default=None,
        description="Merged into the stored config; secret fields left out keep their value, "
        "except when an endpoint field (host, URL, account...) changes: then the secrets must "
        "be given again, or `keep_secrets` set.",
    )
    keep_secrets: bool = Field(
        default=False,
        description="Keep the stored secrets although an endpoint field changes (audited).",
    )


class ConnectorOut(ResponseModel):
    id: uuid.UUID
    connector_name: str
    connector_type: str
    description: str | None
    config: dict[str, Any] = Field(description="The config with every secret masked.")
    secrets_set: list[str] = Field(description="Secret fields that hold a value.")
    workspace_id: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime
    last_tested_at: dt.datetime | None
    last_test_status: str | None


class ConnectionTestOut(ResponseModel):
    status: Literal["ok", "failed"]
    detail: str
    duration_ms: float


class ColumnOut(ResponseModel):
    name: str
    type: str
    nullable: bool


class DatasetOut(ResponseModel):
    name: str
    kind: str
    columns: list[ColumnOut] | None
    num_rows: int | None
    size_bytes: int | None


class DiscoverOut(ResponseModel):
    connector_id: uuid.UUID
    datasets: list[DatasetOut]
