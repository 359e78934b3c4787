"""Writes for the SQL family: one transaction per write, so abort leaves the target as it was.

The sink opens a connection and a transaction at start, creates the table if
needed, deletes the old rows for ``overwrite`` (inside the same transaction),
and inserts each batch with bound values (``executemany``). ``upsert`` uses the
dialect's native statement when the keys carry a unique constraint
(PostgreSQL/SQLite ``INSERT ... ON CONFLICT``, MySQL ``ON DUPLICATE KEY
UPDATE``), otherwise a delete-then-insert on the keys in the same transaction.
Databases whose DDL commits implicitly (MySQL) get the created table dropped
again on abort.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from uzo_connectors.base import Sink, WriteMode, WriteResult
from uzo_connectors.errors import ConfigError, WriteError
from uzo_connectors.sql.types import batch_to_rows, to_sql

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import pyarrow as pa
    from sqlalchemy.engine import Connection, Engine, RootTransaction

    from uzo_connectors.base import WriteRequest

# Dialects where CREATE TABLE commits the open transaction.
_NON_TRANSACTIONAL_DDL = frozenset({"mysql", "mariadb", "oracle"})


def table_for_schema(
    name: str, schema_name: str | None, arrow_schema: pa.Schema, keys: Sequence[str]
) -> sa.Table:
    """A SQLAlchemy table for an Arrow schema; ``keys`` become the primary key."""
    columns = [
        sa.Column(
            f.name,
            to_sql(f.type, key=f.name in keys),
            primary_key=f.name in keys,
            nullable=f.name not in keys,
        )
        for f in arrow_schema
    ]
    return sa.Table(name, sa.MetaData(), *columns, schema=schema_name)


def dedupe_last(rows: list[dict[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    """Rows with duplicate keys collapsed to the last one (upsert semantics)."""
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        seen[tuple(row[k] for k in keys)] = row
    return list(seen.values())


def has_unique_on(conn: Connection, table: sa.Table, keys: Sequence[str]) -> bool:
    inspector = sa.inspect(conn)
    wanted = set(keys)
    pk = inspector.get_pk_constraint(table.name, schema=table.schema)
    if set(pk.get("constrained_columns") or ()) == wanted:
        return True
    for uc in inspector.get_unique_constraints(table.name, schema=table.schema):
        if set(uc["column_names"]) == wanted:
            return True
    for ix in inspector.get_indexes(table.name, schema=table.schema):
        if ix.get("unique") and {c for c in ix["column_names"] if c} == wanted:
            return True
    return False


class SqlSink(Sink):
    """A transactional write through SQLAlchemy."""

    def __init__(
        self,
        engine: Engine,
        request: WriteRequest,
        schema_name: str | None,
        table_name: str,
        scrub: Callable[[str], str],
    ) -> None:
        self._engine = engine
        self._request = request
        self._scrub = scrub
        self._rows = 0
        self._created = False
        self._done = False
        self._native_upsert = False
        if request.mode == WriteMode.UPSERT and not request.keys:
            raise ConfigError("keys: an upsert needs at least one key column")
        missing = [k for k in request.keys if k not in request.schema.names]
        if missing:
            raise ConfigError(f"keys: {missing} are not columns of the data")
        # Set before anything can fail, so abort() is safe in every state.
        self._conn: Connection | None = None
        self._trans: RootTransaction | None = None
        self._created_table: sa.Table | None = None
        try:
            self._conn = engine.connect()
            self._trans = self._conn.begin()
            self._table = self._prepare(schema_name, table_name)
        except BaseException as exc:
            self.abort()
            raise self._as_write_error(exc) from exc

    @property
    def _connection(self) -> Connection:
        if self._conn is None:
            raise WriteError("the write has no open connection")
        return self._conn

    @property
    def _transaction(self) -> RootTransaction:
        if self._trans is None:
            raise WriteError("the write has no open transaction")
        return self._trans

    def _as_write_error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, WriteError | ConfigError):
            return exc
        if not isinstance(exc, Exception):
            return exc
        return WriteError(
            f"writing {self._request.dataset!r} failed; the target was left as it was: "
            + self._scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        )

    def _prepare(self, schema_name: str | None, table_name: str) -> sa.Table:
        request = self._request
        dialect = self._engine.dialect.name
        exists = sa.inspect(self._connection).has_table(table_name, schema=schema_name)
        if exists and request.mode == WriteMode.FAIL_IF_EXISTS:
            raise WriteError(f"{request.dataset!r} already exists (mode fail_if_exists)")
        if not exists:
            table = table_for_schema(table_name, schema_name, request.schema, request.keys)
            table.create(self._connection)
            self._created = True
            self._created_table = table
            if dialect in _NON_TRANSACTIONAL_DDL:  # CREATE committed: start a fresh transaction
                self._transaction.commit()
                self._trans = self._connection.begin()
        else:
            table = sa.Table(
                table_name, sa.MetaData(), schema=schema_name, autoload_with=self._connection
            )
            unknown = [n for n in request.schema.names if n not in table.c]
            if unknown:
                raise WriteError(f"{request.dataset!r} has no column(s) {unknown}")
            if request.mode == WriteMode.OVERWRITE:
                self._connection.execute(sa.delete(table))
        if request.mode == WriteMode.UPSERT:
            self._native_upsert = dialect in {
                "postgresql",
                "sqlite",
                "mysql",
                "mariadb",
            } and has_unique_on(self._connection, table, request.keys)
        return table

    def _upsert_statement(self) -> sa.Executable:
        table, keys = self._table, self._request.keys
        others = [n for n in self._request.schema.names if n not in keys]
        dialect = self._engine.dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            pg = pg_insert(table)
            if not others:
                return pg.on_conflict_do_nothing(index_elements=list(keys))
            return pg.on_conflict_do_update(
                index_elements=list(keys), set_={n: pg.excluded[n] for n in others}
            )
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            lite = sqlite_insert(table)
            if not others:
                return lite.on_conflict_do_nothing(index_elements=list(keys))
            return lite.on_conflict_do_update(
                index_elements=list(keys), set_={n: lite.excluded[n] for n in others}
            )
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        my = mysql_insert(table)
        update = {n: my.inserted[n] for n in (others or list(keys[:1]))}
        return my.on_duplicate_key_update(update)

    def write(self, batch: pa.RecordBatch) -> None:
        if self._done:
            raise WriteError("the write is already finished")
        if batch.num_rows == 0:
            return
        try:
            rows = batch_to_rows(batch)
            if self._request.mode == WriteMode.UPSERT:
                rows = dedupe_last(rows, self._request.keys)
                if self._native_upsert:
                    self._connection.execute(self._upsert_statement(), rows)
                else:
                    cond = sa.and_(
                        *(
                            self._table.c[k] == sa.bindparam(f"uzo_k_{k}")
                            for k in self._request.keys
                        )
                    )
                    self._connection.execute(
                        sa.delete(self._table).where(cond),
                        [{f"uzo_k_{k}": r[k] for k in self._request.keys} for r in rows],
                    )
                    self._connection.execute(sa.insert(self._table), rows)
            else:
                self._connection.execute(sa.insert(self._table), rows)
            self._rows += batch.num_rows
        except BaseException as exc:
            self.abort()
            raise self._as_write_error(exc) from exc

    def commit(self) -> WriteResult:
        if self._done:
            raise WriteError("the write is already finished")
        try:
            self._transaction.commit()
        except BaseException as exc:
            self.abort()
            raise self._as_write_error(exc) from exc
        self._done = True
        self._connection.close()
        return WriteResult(
            dataset=self._request.dataset, rows_written=self._rows, schema=self._request.schema
        )

    def abort(self) -> None:
        """Roll back; safe in every state (connect or begin failed, after commit, twice)."""
        if self._done:
            return
        self._done = True
        conn, trans = self._conn, self._trans
        if conn is None:  # the connection never opened: nothing to undo
            return
        try:
            if trans is not None and trans.is_active:
                trans.rollback()
            created = self._created_table
            if created is not None and self._engine.dialect.name in _NON_TRANSACTIONAL_DDL:
                if conn.in_transaction():
                    conn.rollback()
                with conn.begin():
                    created.drop(conn, checkfirst=True)
        finally:
            conn.close()
