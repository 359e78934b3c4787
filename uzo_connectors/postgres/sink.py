"""PostgreSQL writes through ADBC (binary COPY), all in one transaction.

- A missing target is created by ADBC from the Arrow schema (keys become the
  primary key), inside the transaction.
- ``append``/``overwrite``: when the target's columns have exactly the types
  of the incoming batches, batches are COPYed straight into the target
  (``overwrite`` deletes the old rows first, in the same transaction);
  otherwise they are COPYed into a temporary staging table and moved with
  ``INSERT ... SELECT`` (PostgreSQL casts) at commit.
- ``upsert``: staging table, then ``INSERT ... SELECT DISTINCT ON (keys) ...
  ON CONFLICT (keys) DO UPDATE`` when the keys are unique in the target, else
  ``DELETE ... USING staging`` + ``INSERT`` (last row per key wins).
- ``abort`` rolls the transaction back: the target is as it was.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from uzo_connectors.base import Sink, WriteMode, WriteResult
from uzo_connectors.errors import ConfigError, ConnectorError, WriteError
from uzo_connectors.sql.sink import has_unique_on

if TYPE_CHECKING:
    from uzo_connectors.base import WriteRequest
    from uzo_connectors.postgres.connector import PostgresConnector


class PostgresSink(Sink):
    def __init__(
        self,
        connector: PostgresConnector,
        request: WriteRequest,
        schema_name: str | None,
        table: str,
    ) -> None:
        self._c = connector
        self._request = request
        self._schema_name = schema_name
        self._table = table
        self._target = connector.qualified(schema_name, table)
        self._rows = 0
        self._bytes = 0
        self._done = False
        self._staging: str | None = None
        if request.mode == WriteMode.UPSERT and not request.keys:
            raise ConfigError("keys: an upsert needs at least one key column")
        missing = [k for k in request.keys if k not in request.schema.names]
        if missing:
            raise ConfigError(f"keys: {missing} are not columns of the data")
        self._schema = pa.schema([pa.field(f.name, f.type) for f in request.schema])
        self._conn = connector.adbc_connect()
        try:
            self._cur = self._conn.cursor()
            self._prepare()
        except BaseException as exc:
            self.abort()
            raise self._as_write_error(exc) from exc

    def _as_write_error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, ConnectorError) or not isinstance(exc, Exception):
            return exc
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return WriteError(
            f"writing {self._request.dataset!r} failed; the target was left as it was: "
            + self._c.scrub(text)
        )

    def _exists(self) -> bool:
        self._cur.execute("SELECT to_regclass($1)::text", parameters=(self._target,))
        row = self._cur.fetchone()
        return row is not None and row[0] is not None

    def _target_schema(self) -> pa.Schema:
        schema = self._conn.adbc_get_table_schema(self._table, db_schema_filter=self._schema_name)
        return pa.schema([pa.field(f.name, f.type) for f in schema])

    def _prepare(self) -> None:
        request = self._request
        exists = self._exists()
        if exists and request.mode == WriteMode.FAIL_IF_EXISTS:
            raise WriteError(f"{request.dataset!r} already exists (mode fail_if_exists)")
        self._unique_keys = False
        if not exists:
            self._cur.adbc_ingest(
                self._table,
                self._schema.empty_table(),
                mode="create",
                db_schema_name=self._schema_name,
            )
            if request.keys:
                keys = ", ".join(self._c.quote(k) for k in request.keys)
                self._cur.execute(f"ALTER TABLE {self._target} ADD PRIMARY KEY ({keys})")
                self._unique_keys = True
            direct = request.mode != WriteMode.UPSERT
        else:
            target = self._target_schema()
            unknown = [n for n in self._schema.names if n not in target.names]
            if unknown:
                raise WriteError(f"{request.dataset!r} has no column(s) {unknown}")
            if request.mode == WriteMode.OVERWRITE:
                self._cur.execute(f"DELETE FROM {self._target}")
            direct = request.mode != WriteMode.UPSERT and target.equals(self._schema)
            if request.mode == WriteMode.UPSERT:
                self._unique_keys = self._keys_unique()
        if not direct:
            self._staging = f"uzo_stage_{uuid.uuid4().hex}"
            self._cur.adbc_ingest(
                self._staging, self._schema.empty_table(), mode="create", temporary=True
            )

    def _keys_unique(self) -> bool:
        import sqlalchemy as sa

        with self._c.engine.connect() as conn:
            table = sa.Table(self._table, sa.MetaData(), schema=self._schema_name)
            return has_unique_on(conn, table, self._request.keys)

    def write(self, batch: pa.RecordBatch) -> None:
        if self._done:
            raise WriteError("the write is already finished")
        if batch.num_rows == 0:
            return
        try:
            data = pa.RecordBatch.from_arrays(batch.columns, schema=self._schema)
            if self._staging is not None:
                self._cur.adbc_ingest(self._staging, data, mode="append", temporary=True)
            else:
                self._cur.adbc_ingest(
                    self._table, data, mode="append", db_schema_name=self._schema_name
                )
            self._rows += batch.num_rows
            self._bytes += batch.nbytes
        except BaseException as exc:
            self.abort()
            raise self._as_write_error(exc) from exc

    def _merge(self) -> None:
        assert self._staging is not None
        q = self._c.quote
        cols = ", ".join(q(n) for n in self._schema.names)
        stage = q(self._staging)
        if self._request.mode != WriteMode.UPSERT:
            self._cur.execute(f"INSERT INTO {self._target} ({cols}) SELECT {cols} FROM {stage}")
            return
        keys = ", ".join(q(k) for k in self._request.keys)
        latest = f"SELECT DISTINCT ON ({keys}) {cols} FROM {stage} ORDER BY {keys}, ctid DESC"
        if self._unique_keys:
            others = [n for n in self._schema.names if n not in self._request.keys]
            action = (
                "DO UPDATE SET " + ", ".join(f"{q(n)} = EXCLUDED.{q(n)}" for n in others)
                if others
                else "DO NOTHING"
            )
            self._cur.execute(
                f"INSERT INTO {self._target} ({cols}) {latest} ON CONFLICT ({keys}) {action}"
            )
            return
        match = " AND ".join(f"t.{q(k)} IS NOT DISTINCT FROM s.{q(k)}" for k in self._request.keys)
        self._cur.execute(f"DELETE FROM {self._target} AS t USING {stage} AS s WHERE {match}")
        self._cur.execute(f"INSERT INTO {self._target} ({cols}) {latest}")

    def commit(self) -> WriteResult:
        if self._done:
            raise WriteError("the write is already finished")
        try:
            if self._staging is not None:
                self._merge()
                self._cur.execute(f"DROP TABLE {self._c.quote(self._staging)}")
            self._conn.commit()
        except BaseException as exc:
            self.abort()
            raise self._as_write_error(exc) from exc
        self._done = True
        self._close()
        return WriteResult(
            dataset=self._request.dataset,
            rows_written=self._rows,
            bytes_written=self._bytes,
            schema=self._request.schema,
        )

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._conn.rollback()
        except Exception:  # the connection may already be broken; closing rolls back
            pass
        finally:
            self._close()

    def _close(self) -> None:
        cur: Any = getattr(self, "_cur", None)
        try:
            if cur is not None:
                cur.close()
        finally:
            self._conn.close()
