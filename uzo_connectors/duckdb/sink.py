"""DuckDB writes: one transaction per write (BEGIN ... COMMIT/ROLLBACK)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from uzo_connectors.base import Sink, WriteMode, WriteResult
from uzo_connectors.duckdb.connector import quote
from uzo_connectors.errors import ConfigError, ConnectorError, WriteError

if TYPE_CHECKING:
    from uzo_connectors.base import WriteRequest
    from uzo_connectors.duckdb.connector import DuckDBConnector


def last_per_key(batch: pa.RecordBatch, keys: tuple[str, ...]) -> pa.Table:
    """The batch's rows with duplicate keys collapsed to the last one."""
    table = pa.Table.from_batches([batch]).append_column(
        "__uzo_i", pa.array(range(batch.num_rows), pa.int64())
    )
    last = table.group_by(list(keys), use_threads=False).aggregate([("__uzo_i", "max")])
    keep = pc.sort_indices(last.column("__uzo_i_max"))
    indices = pc.take(last.column("__uzo_i_max"), keep)
    return table.take(indices).drop_columns(["__uzo_i"])


class DuckDBSink(Sink):
    def __init__(self, connector: DuckDBConnector, request: WriteRequest) -> None:
        self._request = request
        self._rows = 0
        self._done = False
        if request.mode == WriteMode.UPSERT and not request.keys:
            raise ConfigError("keys: an upsert needs at least one key column")
        missing = [k for k in request.keys if k not in request.schema.names]
        if missing:
            raise ConfigError(f"keys: {missing} are not columns of the data")
        self._target = connector._table(request.dataset)
        self._view = f"uzo_batch_{uuid.uuid4().hex}"
        self._cols = ", ".join(quote(n) for n in request.schema.names)
        self._con = connector.connect()
        try:
            self._con.begin()
            exists = self._con.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                [connector.config.schema_name, request.dataset],
            ).fetchall()
            if exists and request.mode == WriteMode.FAIL_IF_EXISTS:
                raise WriteError(f"{request.dataset!r} already exists (mode fail_if_exists)")
            if not exists:
                self._con.register(self._view, request.schema.empty_table())
                self._con.execute(f"CREATE TABLE {self._target} AS SELECT * FROM {self._view}")
                self._con.unregister(self._view)
            elif request.mode == WriteMode.OVERWRITE:
                self._con.execute(f"DELETE FROM {self._target}")
        except BaseException as exc:
            self.abort()
            raise self._error(exc) from exc

    def _error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, ConnectorError) or not isinstance(exc, Exception):
            return exc
        return WriteError(
            f"writing {self._request.dataset!r} failed; the target was left as it was: {exc}"
        )

    def write(self, batch: pa.RecordBatch) -> None:
        if self._done:
            raise WriteError("the write is already finished")
        if batch.num_rows == 0:
            return
        try:
            data: pa.RecordBatch | pa.Table = batch
            if self._request.mode == WriteMode.UPSERT:
                data = last_per_key(batch, self._request.keys)
            self._con.register(self._view, data)
            if self._request.mode == WriteMode.UPSERT:
                match = " AND ".join(
                    f"t.{quote(k)} IS NOT DISTINCT FROM b.{quote(k)}" for k in self._request.keys
                )
                self._con.execute(
                    f"DELETE FROM {self._target} AS t WHERE EXISTS "
                    f"(SELECT 1 FROM {self._view} AS b WHERE {match})"
                )
            self._con.execute(
                f"INSERT INTO {self._target} ({self._cols}) SELECT {self._cols} FROM {self._view}"
            )
            self._con.unregister(self._view)
            self._rows += batch.num_rows
        except BaseException as exc:
            self.abort()
            raise self._error(exc) from exc

    def commit(self) -> WriteResult:
        if self._done:
            raise WriteError("the write is already finished")
        try:
            self._con.commit()
        except BaseException as exc:
            self.abort()
            raise self._error(exc) from exc
        self._done = True
        self._con.close()
        return WriteResult(self._request.dataset, self._rows, schema=self._request.schema)

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._con.rollback()
        except Exception:  # no transaction open (failed before BEGIN): nothing to undo
            pass
        finally:
            self._con.close()
