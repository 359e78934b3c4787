"""Connector types and tenant connectors."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from uzo_api.pagination import Page
from uzo_api.schemas.common import RequestModel, ResponseModel

ConnectorName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
TypeKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,79}$")]


class ConnectorTypeRead(ResponseModel):
    connector_type: str = Field(description="The key used in `connector_type` of a connector.")
    display_name: str
    category: str
    description: str
    installed: bool = Field(
        description="Whether the Python packages this type needs are installed on the server."
    )
    extra: str | None = Field(
        description="The package extra that installs what this type needs "
        "(`pip install 'uzo[<extra>]'`), when it needs one."
    )
    missing_packages: list[str] = Field(description="Packages to install before use.")
    config_schema: dict[str, Any] = Field(description="JSON Schema of the config form.")
    capabilities: dict[str, Any]
    secret_fields: list[str]


class ConnectorTypePage(Page[ConnectorTypeRead]):
    pass


class ConnectorCreate(RequestModel):
    name: ConnectorName
    connector_type: TypeKey
    config: dict[str, Any] = Field(
        description="Validated by the type's config schema; secret fields are encrypted."
    )
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    workspace_id: uuid.UUID | None = None


class ConnectorUpdate(RequestModel):
    name: ConnectorName | None = None
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


class ConnectorRead(ResponseModel):
    id: uuid.UUID
    name: str
    connector_type: str
    description: str | None
    config: dict[str, Any] = Field(description="The config with every secret masked.")
    secrets_set: list[str] = Field(description="Secret fields that hold a value.")
    workspace_id: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime
    last_tested_at: dt.datetime | None
    last_test_status: str | None


class ConnectorPage(Page[ConnectorRead]):
    pass


class ConnectionTestResult(ResponseModel):
    status: Literal["ok", "failed"]
    detail: str
    duration_ms: float


class ColumnRead(ResponseModel):
    name: str
    type: str
    nullable: bool


class DatasetRead(ResponseModel):
    name: str
    kind: str
    columns: list[ColumnRead] | None
    num_rows: int | None
    size_bytes: int | None


class DiscoveryResult(ResponseModel):
    connector_id: uuid.UUID
    datasets: list[DatasetRead]
