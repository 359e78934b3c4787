"""The ``postgres`` connector: PostgreSQL with an Arrow fast path.

Metadata (discover, reflection) goes through SQLAlchemy + psycopg like the
rest of the SQL family; rows move through ADBC: reads stream Arrow record
batches straight from the server (``fetch_record_batch``: binary COPY inside
the driver, no Python objects per value), writes use ``adbc_ingest`` (binary
COPY). Host and port are checked with the SSRF policy before any connection;
a unix-socket directory counts as loopback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlencode

import pyarrow as pa
from pydantic import Field, SecretStr
from sqlalchemy.engine import URL

from uzo_connectors.base import ConnectorConfig
from uzo_connectors.errors import ConnectorError, MissingDependencyError
from uzo_connectors.sql.connector import SqlConnectorBase
from uzo_connectors.sql.engine import check_hosts

if TYPE_CHECKING:
    from collections.abc import Iterator

    from uzo_connectors.base import Sink, WriteRequest
    from uzo_connectors.sql.reader import ReadSpec


class PostgresConfig(ConnectorConfig):
    host: str = Field(description="host name, IP address, or a unix-socket directory")
    port: int = Field(default=5432, ge=1, le=65535)
    database: str = "postgres"
    user: str = "postgres"
    password: SecretStr | None = None
    schema_name: str = Field(default="public", description="schema to discover and read")
    sslmode: str | None = Field(default=None, description="libpq sslmode, e.g. require")
    connect_timeout: int = Field(default=10, ge=1, le=300)


def _normalize(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """The batch with exactly ``schema`` (drops driver field metadata, casts if needed)."""
    if batch.schema.equals(schema, check_metadata=False):
        return pa.RecordBatch.from_arrays(batch.columns, schema=schema)
    return batch.cast(schema)


class PostgresConnector(SqlConnectorBase[PostgresConfig]):
    type_key: ClassVar[str] = "postgres"
    display_name: ClassVar[str] = "PostgreSQL"
    config_model: ClassVar[type[ConnectorConfig]] = PostgresConfig
    description: ClassVar[str] = (
        "PostgreSQL (and compatible) with Arrow-native reads and COPY writes (ADBC)"
    )

    # -- connection ------------------------------------------------------------------

    def _is_socket(self) -> bool:
        return self.config.host.startswith("/")

    def _check_endpoint(self) -> None:
        check_hosts(self.context.endpoint_policy, [self.config.host])

    def _secrets(self) -> list[str]:
        return [self.config.password.get_secret_value()] if self.config.password else []

    def _query(self) -> dict[str, str]:
        query = {"connect_timeout": str(self.config.connect_timeout)}
        if self.config.sslmode:
            query["sslmode"] = self.config.sslmode
        if self._is_socket():
            query["host"] = self.config.host
        return query

    def _url(self) -> URL:
        password = self.config.password.get_secret_value() if self.config.password else None
        return URL.create(
            "postgresql+psycopg",
            username=self.config.user,
            password=password,
            host=None if self._is_socket() else self.config.host,
            port=self.config.port,
            database=self.config.database,
            query=self._query(),
        )

    def _adbc_uri(self) -> str:
        cfg = self.config
        auth = quote(cfg.user, safe="")
        if cfg.password is not None:
            auth += ":" + quote(cfg.password.get_secret_value(), safe="")
        host = "" if self._is_socket() else cfg.host
        if ":" in host:
            host = f"[{host}]"
        query = {**self._query(), "port": str(cfg.port)}
        return f"postgresql://{auth}@{host}/{quote(cfg.database, safe='')}?{urlencode(query)}"

    def adbc_connect(self) -> Any:
        """A new ADBC connection (autocommit off): the caller closes it."""
        self._check_endpoint()
        try:
            import adbc_driver_postgresql.dbapi as adbc  # type: ignore[import-untyped]
        except ImportError:
            raise MissingDependencyError(
                "adbc-driver-postgresql", "postgres", self.type_key
            ) from None
        uri = self._adbc_uri()
        try:
            return adbc.connect(uri)
        except Exception as exc:
            raise self._error(exc, "connecting to PostgreSQL") from None

    def scrub(self, message: str) -> str:
        return super().scrub(message.replace(self._adbc_uri(), "postgresql://***"))

    # -- reads -----------------------------------------------------------------------

    def quote(self, name: str) -> str:
        return self.engine.dialect.identifier_preparer.quote(name)

    def qualified(self, schema_name: str | None, table: str) -> str:
        return (
            f"{self.quote(schema_name)}.{self.quote(table)}" if schema_name else self.quote(table)
        )

    def select_sql(self, spec: ReadSpec) -> tuple[str, list[Any]]:
        cols = ", ".join(self.quote(c) for c in spec.columns)
        sql = f"SELECT {cols} FROM {self.qualified(spec.schema_name, spec.table)}"
        where: list[str] = []
        params: list[Any] = []
        if spec.predicate_sql:
            where.append(f"({spec.predicate_sql})")
        if spec.watermark is not None:
            wm = self.quote(spec.watermark)
            if spec.after is not None:
                params.append(spec.after)
                where.append(f"{wm} > ${len(params)}")
            if spec.upper is not None:
                params.append(spec.upper)
                where.append(f"{wm} <= ${len(params)}")
        if where:
            sql += " WHERE " + " AND ".join(where)
        if spec.watermark is not None:
            sql += f" ORDER BY {self.quote(spec.watermark)}"
        if spec.limit is not None:
            sql += f" LIMIT {int(spec.limit)}"
        return sql, params

    def read_schema(self, spec: ReadSpec, reflected: pa.Schema) -> pa.Schema:
        """The exact Arrow schema ADBC produces for the projection (metadata dropped)."""
        cols = ", ".join(self.quote(c) for c in spec.columns)
        sql = f"SELECT {cols} FROM {self.qualified(spec.schema_name, spec.table)} LIMIT 0"
        conn = self.adbc_connect()
        try:
            cur = conn.cursor()
            cur.execute(sql)
            schema: pa.Schema = cur.fetch_arrow_table().schema
            cur.close()
        except Exception as exc:
            raise self._error(exc, f"reading the schema of {spec.table!r}") from None
        finally:
            conn.close()
        return pa.schema([pa.field(f.name, f.type) for f in schema])

    def stream(self, spec: ReadSpec, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        if spec.empty:
            return
        sql, params = self.select_sql(spec)
        conn = self.adbc_connect()
        try:
            cur = conn.cursor()
            cur.execute(sql, parameters=params or None)
            reader = cur.fetch_record_batch()
            for batch in reader:
                for start in range(0, max(batch.num_rows, 1), spec.batch_size):
                    part = batch.slice(start, spec.batch_size)
                    if part.num_rows:
                        yield _normalize(part, schema)
            cur.close()
        except ConnectorError:
            raise
        except Exception as exc:
            raise self._error(exc, f"reading {spec.table!r}") from None
        finally:
            conn.close()

    # -- writes ----------------------------------------------------------------------

    def open_sink(self, request: WriteRequest) -> Sink:
        from uzo_connectors.postgres.sink import PostgresSink

        schema_name, name = self.split_dataset(request.dataset)
        return PostgresSink(self, request, schema_name, name)
