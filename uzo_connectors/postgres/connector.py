"""The ``postgres`` connector: PostgreSQL with an Arrow fast path.

Metadata (discover, reflection) goes through SQLAlchemy + psycopg like the
rest of the SQL family; rows move through ADBC: reads stream Arrow record
batches straight from the server (``fetch_record_batch``: binary COPY inside
the driver, no Python objects per value), writes use ``adbc_ingest`` (binary
COPY).

Both paths run libpq and get the same parameters, built from typed fields only
(:mod:`uzo_connectors.sql.libpq`): the host is checked with the SSRF policy and
libpq connects to the checked addresses (``hostaddr``, with the name kept in
``host`` for TLS), and unless the operator allows ambient credentials for
``postgres`` libpq never falls back on the server's own (``PGPASSWORD``,
``~/.pgpass``, client certificates, Kerberos). A unix-socket directory counts
as loopback. A database name is never expanded as a connection string by
either path (checked by a test), so it needs no extra restriction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, quote_plus, urlencode

import pyarrow as pa
from pydantic import Field, SecretStr, field_validator
from sqlalchemy.engine import URL

from uzo_connectors.base import ConnectorConfig
from uzo_connectors.errors import ConnectorError, MissingDependencyError
from uzo_connectors.options import host_name, plain_text
from uzo_connectors.sql import libpq
from uzo_connectors.sql.connector import SqlConnectorBase
from uzo_connectors.sql.engine import is_socket_path
from uzo_connectors.sql.pinning import checked_addresses

if TYPE_CHECKING:
    from collections.abc import Iterator

    from uzo_connectors.base import Sink, WriteRequest
    from uzo_connectors.sql.reader import ReadSpec

# A socket directory goes into a libpq host list: no list separator, no quoting syntax.
_socket_dir = plain_text(1024, forbidden=",;{}'\"\\")
_name = plain_text(128)


class PostgresConfig(ConnectorConfig):
    endpoint_fields: ClassVar[frozenset[str]] = frozenset({"host", "port"})

    host: str = Field(description="host name, IP address, or a unix-socket directory")
    port: int = Field(default=5432, ge=1, le=65535)
    database: str = Field(default="postgres", max_length=128)
    user: str = Field(default="postgres", max_length=128)
    password: SecretStr | None = None
    schema_name: str = Field(
        default="public", max_length=128, description="schema to discover and read"
    )
    sslmode: libpq.SslMode | None = Field(default=None, description="libpq sslmode")
    connect_timeout: int = Field(default=10, ge=1, le=300)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if is_socket_path(value):
            return str(_socket_dir(value))
        return host_name(value).strip("[]")

    @field_validator("database", "user")
    @classmethod
    def _names(cls, value: str) -> str:
        return str(_name(value))


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

    def _check_endpoint(self) -> tuple[str, ...]:
        return checked_addresses(self.context.endpoint_policy, self.config.host)

    def _secrets(self) -> list[str]:
        if self.config.password is None:
            return []
        password = self.config.password.get_secret_value()
        return [password, quote(password, safe=""), quote_plus(password)]

    def libpq_params(self, addresses: tuple[str, ...]) -> dict[str, str]:
        """Every libpq parameter of a connection (password included): typed fields only."""
        cfg = self.config
        password = cfg.password.get_secret_value() if cfg.password else None
        params = {
            **libpq.pinned_host(cfg.host, addresses),
            "port": str(cfg.port),
            "dbname": cfg.database,
            "user": cfg.user,
            "connect_timeout": str(cfg.connect_timeout),
        }
        if cfg.sslmode:
            params["sslmode"] = cfg.sslmode
        if self.ambient_allowed:
            if password is not None:
                params["password"] = password
        else:
            params.update(libpq.no_ambient_credentials(password))
        return params

    def _url(self, addresses: tuple[str, ...]) -> URL:
        # Everything goes in connect_args (below); the URL only names the dialect.
        return URL.create("postgresql+psycopg")

    def _engine_options(self, addresses: tuple[str, ...]) -> dict[str, Any]:
        return {"connect_args": self.libpq_params(addresses)}

    def _adbc_uri(self, addresses: tuple[str, ...]) -> str:
        return "postgresql://?" + urlencode(self.libpq_params(addresses), quote_via=quote)

    def adbc_connect(self) -> Any:
        """A new ADBC connection (autocommit off): the caller closes it."""
        addresses = self._check_endpoint()
        try:
            import adbc_driver_postgresql.dbapi as adbc  # type: ignore[import-untyped]
        except ImportError:
            raise MissingDependencyError(
                "adbc-driver-postgresql", "postgres", self.type_key
            ) from None
        uri = self._adbc_uri(addresses)
        try:
            return adbc.connect(uri)
        except Exception as exc:
            raise self._error(exc, "connecting to PostgreSQL") from None

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
