"""Writing rows to a REST endpoint as JSON (append only).

Rows are held (as Arrow batches) until ``commit``, then sent in chunks of
``write.batch_size`` rows: a JSON array per request (``write.body="array"``) or
one object per request (``"row"``). So ``abort`` before ``commit`` sends
nothing. HTTP has no transactions: if a request fails during ``commit``, the
chunks already accepted stay written, and the WriteError says how many rows.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
from typing import TYPE_CHECKING, Any

from uzo_connectors.base import Sink, WriteResult
from uzo_connectors.errors import ConnectorError, WriteError
from uzo_connectors.http.reader import resource_url

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pyarrow as pa

    from uzo_connectors.http.config import HttpConfig, Resource
    from uzo_connectors.http.transport import SafeClient


def json_default(value: Any) -> Any:
    """JSON for the Python values Arrow produces (dates, decimals, bytes)."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"cannot send a {type(value).__name__} as JSON")


class HttpSink(Sink):
    def __init__(
        self,
        config: HttpConfig,
        client: SafeClient,
        resource: Resource,
        schema: pa.Schema,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        self._config = config
        self._client = client
        self._resource = resource
        if resource.write is None:
            raise WriteError(f"resource {resource.name!r} declares no write settings")
        self._write = resource.write
        self._schema = schema
        self._values = {**resource.params, **(values or {})}
        self._batches: list[pa.RecordBatch] = []
        self._done = False

    def write(self, batch: pa.RecordBatch) -> None:
        if self._done:
            raise WriteError("this write is already committed or aborted")
        self._batches.append(batch)

    def _send(self, payload: Any) -> None:
        resource = self._resource
        write = self._write
        content = json.dumps(payload, default=json_default).encode()
        response = self._client.request(
            write.method,
            resource_url(self._config, resource, self._values, write.path),
            content=content,
            headers={"Content-Type": "application/json", **resource.headers, **write.headers},
        )
        self._client.raise_for_status(response, f"resource {resource.name!r}")

    def commit(self) -> WriteResult:
        if self._done:
            raise WriteError("this write is already committed or aborted")
        self._done = True
        size = self._write.batch_size
        sent = 0
        rows: list[dict[str, Any]] = []
        try:
            for batch in self._batches:
                rows.extend(batch.to_pylist())
                while len(rows) >= size:
                    chunk, rows = rows[:size], rows[size:]
                    sent += self._send_chunk(chunk)
            if rows:
                sent += self._send_chunk(rows)
        except ConnectorError as exc:
            raise WriteError(
                f"{exc}; {sent} row(s) had already been accepted (HTTP writes cannot be undone)"
            ) from None
        finally:
            self._batches = []
        return WriteResult(dataset=self._resource.name, rows_written=sent, schema=self._schema)

    def _send_chunk(self, chunk: list[dict[str, Any]]) -> int:
        if self._write.body == "array":
            self._send(chunk)
        else:
            for row in chunk:
                self._send(row)
        return len(chunk)

    def abort(self) -> None:
        self._done = True
        self._batches = []
