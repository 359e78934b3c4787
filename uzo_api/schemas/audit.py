"""The audit trail as the API shows it: audit rows, request logs, change history."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import Field

from uzo_api.pagination import Page
from uzo_api.schemas.common import ResponseModel


class AuditLogRead(ResponseModel):
    id: uuid.UUID
    created_at: dt.datetime
    subscription_id: uuid.UUID
    user_id: uuid.UUID | None = Field(description="Who acted; null for the CLI.")
    api_key_id: uuid.UUID | None = Field(description="The API key they acted with, if any.")
    action: str = Field(description="`<resource>.<verb>`, e.g. `connector.update`.")
    resource_type: str
    resource_id: uuid.UUID | None
    changes: dict[str, Any] | None = Field(description="What changed (field names, ids).")
    ip_address: str | None
    request_id: str | None = Field(description="The `X-Request-Id` of the request.")
    status: str


class AuditLogPage(Page[AuditLogRead]):
    pass


class ServerLogRead(ResponseModel):
    id: uuid.UUID
    created_at: dt.datetime
    subscription_id: uuid.UUID | None = Field(description="Null for unauthenticated requests.")
    request_id: str
    method: str
    route: str = Field(
        validation_alias="endpoint",
        description="The route's template (`/api/users/{user_id}`), or the path no route matched.",
    )
    status: int = Field(validation_alias="response_status")
    duration_ms: float = Field(validation_alias="response_time_ms")
    user_id: uuid.UUID | None
    ip_address: str | None


class ServerLogPage(Page[ServerLogRead]):
    pass


class ChangeRead(ResponseModel):
    id: uuid.UUID
    created_at: dt.datetime
    subscription_id: uuid.UUID
    table_name: str
    record_id: uuid.UUID
    operation: str = Field(description="insert, update or delete.")
    old_data: dict[str, Any] | None = Field(description="The row before (secrets left out).")
    new_data: dict[str, Any] | None = Field(description="The row after (secrets left out).")
    version_number: int | None
    changed_by: uuid.UUID | None


class ChangePage(Page[ChangeRead]):
    pass
