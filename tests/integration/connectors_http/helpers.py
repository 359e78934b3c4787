"""Small helpers shared by the HTTP connector tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from uzo_connectors.base import ReadRequest
from uzo_connectors.http.config import HttpConfig
from uzo_connectors.http.connector import HttpConnector

if TYPE_CHECKING:
    from uzo_connectors.base import ConnectorContext


def connector(context: ConnectorContext, base_url: str, **config: Any) -> HttpConnector:
    return HttpConnector(HttpConfig.model_validate({"base_url": base_url, **config}), context)


def read_all(conn: HttpConnector, dataset: str, **request: Any) -> pa.Table:
    plan = conn.plan_read(ReadRequest(dataset=dataset, **request))
    batches = [batch for task in plan.tasks for batch in task.read()]
    return pa.Table.from_batches(batches, schema=plan.schema)
