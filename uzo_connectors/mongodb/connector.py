"""The ``mongodb`` connector: collections read into Arrow, written through a transaction.

Reads: ``discover`` lists the database's collections with an Arrow schema
inferred from a sample of documents (see :mod:`uzo_connectors.mongodb.documents`
for the type rules, the ``nested`` option and how mixed types become strings);
``plan_read`` takes ``ReadRequest.options``:

- ``filter``: a MongoDB query document (dict or JSON / Extended JSON text);
  JavaScript operators (``$where``, ``$function``, ``$accumulator``...) are
  refused anywhere in it. ``ReadRequest.predicate`` (SQL) is not supported.
- ``nested``: ``"flatten"`` or ``"struct"`` (default: the config's).
- ``sample_size``: documents sampled to infer the schema (default: the config's).

Incremental reads compare the watermark field with ``> after``, sort by it,
and return the high-water mark in an :class:`IncrementalReadPlan` (ObjectId
watermarks as hex strings, datetimes as datetimes; pass it back as ``after``).

Writes: see :mod:`uzo_connectors.mongodb.sink`.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, ClassVar

from uzo_connectors.base import (
    BaseConnector,
    Capabilities,
    Category,
    ConnectorConfig,
    DatasetInfo,
    ReadPlan,
    ReadTask,
    WriteMode,
)
from uzo_connectors.errors import (
    BlockedEndpointError,
    ConfigError,
    ConnectionTestError,
    ConnectorError,
    DatasetNotFoundError,
    MissingDependencyError,
)
from uzo_connectors.mongodb import config as cfg
from uzo_connectors.mongodb import reader
from uzo_connectors.mongodb.documents import MismatchError, infer
from uzo_connectors.mongodb.filters import parse_filter
from uzo_connectors.registry import import_optional
from uzo_connectors.sql.reader import IncrementalReadPlan

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pyarrow as pa

    from uzo_connectors.base import ConnectorContext, ReadRequest, Sink, WriteRequest
    from uzo_connectors.mongodb.documents import Inferred, Nested

MONGO_CAPABILITIES = Capabilities(
    read=True,
    write=True,
    write_modes=tuple(WriteMode),
    projection_pushdown=True,
    predicate_pushdown=False,  # SQL predicates: no; MongoDB filters go in options["filter"]
    limit_pushdown=True,
    incremental=True,
    discover=True,
)


def _run_read(
    config: cfg.MongoDBConfig,
    context: ConnectorContext,
    spec: reader.ReadSpec,
    schema: pa.Schema,
) -> Iterator[pa.RecordBatch]:
    """A read task body: picklable (a module function over picklable arguments)."""
    connector = MongoDBConnector(config, context)
    try:
        yield from connector.stream(spec, schema)
    finally:
        connector.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _in_auth(exc: BaseException) -> bool:
    """Whether the exception came out of pymongo's authentication code."""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").startswith("pymongo.synchronous.auth"):
            return True
        tb = tb.tb_next
    return getattr(exc, "code", None) == 18  # AuthenticationFailed


class MongoDBConnector(BaseConnector[cfg.MongoDBConfig]):
    type_key: ClassVar[str] = "mongodb"
    required_packages = ("pymongo",)
    display_name: ClassVar[str] = "MongoDB"
    category: ClassVar[Category] = Category.NOSQL
    config_model: ClassVar[type[ConnectorConfig]] = cfg.MongoDBConfig
    capabilities: ClassVar[Capabilities] = MONGO_CAPABILITIES
    description: ClassVar[str] = (
        "MongoDB collections (pymongo): filtered, projected and incremental reads into Arrow"
        " (sub-documents flattened or as structs); transactional append/upsert/overwrite"
    )

    def __init__(self, config: cfg.MongoDBConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self._client: Any = None
        self._database: str | None = None

    # -- connection ------------------------------------------------------------------

    def scrub(self, message: str) -> str:
        return cfg.scrub_message(message, self.config)

    def error(self, exc: BaseException, doing: str) -> ConnectorError:
        return ConnectorError(f"{doing} failed: {self.scrub(_first_line(exc))}")

    @property
    def client(self) -> Any:
        """The pymongo client, created on first use after every host passed the SSRF check."""
        if self._client is None:
            policy = self.context.endpoint_policy
            cfg.check_ambient(self.config, self.ambient_allowed)
            parsed = cfg.parse(self.config, policy)
            cfg.check_endpoints(policy, parsed["nodelist"])
            self._database = cfg.database_name(self.config, parsed)
            pymongo = import_optional("pymongo", self.type_key)
            try:
                self._client = pymongo.MongoClient(**cfg.client_kwargs(self.config, policy))
            except Exception as exc:
                text = self.scrub(_first_line(exc))
                raise ConfigError(f"invalid MongoDB settings: {text}") from None
        return self._client

    @property
    def db(self) -> Any:
        client = self.client
        return client[self._database]

    def check_topology(self) -> None:
        """Refuse servers the replica set reports that the SSRF policy blocks.

        pymongo discovers replica-set members from the server's answers and its
        monitors contact them on their own; this check refuses to go on once a
        reported member is internal. ``direct_connection=True`` avoids discovery.
        """
        if self.config.direct_connection is not True:
            self._run("connecting", self.client.admin.command, "ping")
        description = self.client.topology_description
        addresses = list(description.server_descriptions())
        cfg.check_endpoints(self.context.endpoint_policy, addresses)

    def collection(self, name: str) -> Any:
        if not name or name.startswith("system.") or "$" in name or "\0" in name:
            raise ConfigError(f"dataset: {name!r} is not a valid collection name")
        return self.db[name]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def test_connection(self) -> None:
        try:
            self.client.admin.command("ping")
            self.check_topology()
        except (BlockedEndpointError, MissingDependencyError, ConfigError):
            raise
        except Exception as exc:
            if _in_auth(exc):
                user = self.config.username or "the URI's user"
                raise ConnectionTestError(
                    f"MongoDB refused the credentials of {user!r} (authentication failed:"
                    f" {self.scrub(_first_line(exc))})"
                ) from None
            raise ConnectionTestError(
                f"cannot connect to MongoDB: {self.scrub(_first_line(exc))}"
            ) from None

    # -- reads -----------------------------------------------------------------------

    def _run(self, doing: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConnectorError:
            raise
        except Exception as exc:
            raise self.error(exc, doing) from None

    def collection_names(self) -> list[str]:
        names = self._run("listing collections", self.db.list_collection_names)
        return sorted(n for n in names if not n.startswith("system."))

    def infer(self, name: str, nested: Nested, sample_size: int) -> Inferred:
        coll = self.collection(name)
        docs = self._run(f"sampling {name!r}", lambda: list(coll.find({}, limit=sample_size)))
        self.check_topology()
        return infer(docs, nested)

    def discover(self) -> list[DatasetInfo]:
        out = []
        for name in self.collection_names():
            inferred = self.infer(name, self.config.nested, self.config.sample_size)
            count = self._run(f"counting {name!r}", self.db[name].estimated_document_count)
            out.append(
                DatasetInfo(name=name, kind="collection", schema=inferred.schema, num_rows=count)
            )
        return out

    def _options(self, request: ReadRequest) -> tuple[Nested, int, dict[str, Any]]:
        unknown = set(request.options) - {"filter", "nested", "sample_size"}
        if unknown:
            raise ConfigError(
                f"options: unknown option(s) {sorted(unknown)} (filter, nested, sample_size)"
            )
        nested = request.options.get("nested", self.config.nested)
        if nested not in ("flatten", "struct"):
            raise ConfigError("options.nested: must be 'flatten' or 'struct'")
        sample = request.options.get("sample_size", self.config.sample_size)
        if not isinstance(sample, int) or isinstance(sample, bool) or sample < 1:
            raise ConfigError("options.sample_size: must be a positive integer")
        return nested, sample, parse_filter(request.options.get("filter"))

    def plan_read(self, request: ReadRequest) -> ReadPlan:
        if request.predicate:
            raise ConfigError(
                "predicate: SQL predicates are not supported by MongoDB;"
                ' pass a query document as options["filter"]'
            )
        if request.limit is not None and request.limit < 0:
            raise ConfigError("limit: must be >= 0")
        nested, sample_size, query_filter = self._options(request)
        if request.dataset not in self.collection_names():
            raise DatasetNotFoundError(f"collection {request.dataset!r} does not exist")
        inferred = self.infer(request.dataset, nested, sample_size)
        available = list(inferred.schema.names)
        columns = reader.resolve_columns(request.columns, available)
        schema = inferred.schema if request.columns is None else _select(inferred.schema, columns)
        spec = reader.ReadSpec(
            collection=request.dataset,
            columns=columns,
            filter=query_filter,
            nested=nested,
            limit=request.limit,
            batch_size=max(1, request.batch_size),
        )
        mark: Any = None
        if request.incremental is not None:
            wm = reader.resolve_columns((request.incremental.column,), available)[0]
            after = reader.bson_after(request.incremental.after, inferred.kinds[wm], wm)
            spec = reader.ReadSpec(**{**spec.__dict__, "watermark": wm, "after": after})
            upper = self._run(
                f"computing the high-water mark of {request.dataset!r}",
                reader.high_water_mark,
                self.collection(request.dataset),
                spec,
            )
            spec = reader.with_mark(spec, upper)
            mark = reader.visible_mark(upper, inferred, wm)
        task = ReadTask(
            read=functools.partial(_run_read, self.config, self.context, spec, schema),
            schema=schema,
            description=f"{self.type_key}:{request.dataset}",
        )
        pushed = frozenset({"projection", "limit"})
        if request.incremental is not None:
            return IncrementalReadPlan(
                schema=schema, tasks=(task,), pushed_down=pushed, high_water_mark=mark
            )
        return ReadPlan(schema=schema, tasks=(task,), pushed_down=pushed)

    def stream(self, spec: reader.ReadSpec, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        coll = self.collection(spec.collection)
        self.check_topology()
        try:
            yield from reader.stream(coll, spec, schema)
        except MismatchError:
            raise
        except ConnectorError:
            raise
        except Exception as exc:
            raise self.error(exc, f"reading {spec.collection!r}") from None

    # -- writes ----------------------------------------------------------------------

    def open_sink(self, request: WriteRequest) -> Sink:
        from uzo_connectors.mongodb.sink import MongoSink

        return MongoSink(self, request)


def _select(schema: pa.Schema, columns: tuple[str, ...]) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([schema.field(c) for c in columns])
