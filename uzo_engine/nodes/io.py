"""Sources and sinks: the only node module that talks to ``uzo_connectors``.

- ``values``: inline rows (tests, examples).
- ``parquet_source`` / ``parquet_sink``: local Parquet files. The source is a
  lazy ``scan_parquet``, so a fused chain pushes projections and predicates
  into the scan. The sink is atomic: it writes a ``.uzo-staging-*`` file next to
  the target and renames it into place once it is complete and fsynced
  (:mod:`uzo_connectors.files.staging`, shared with the ``file`` connector); a
  failed, cancelled or killed write leaves the previous file as it was, and the
  staging files of writers that died are removed by the next write into that
  directory (the rule is in that module's docstring).
- ``source`` / ``sink``: any registered connector (``uzo_connectors``), by type
  key, with the connector config given inline or resolved by the caller into
  ``StepContext.connector_configs[connector_id]`` (secrets decrypted at the
  last moment, outside the engine).

Every one of them reads and writes within the caller's limits,
``StepContext.connectors`` (local roots, endpoint policy, ambient-credential
types), never a default of its own; a step context that names none allows no local
file and no internal address. The Parquet nodes take local paths only: every file is
resolved (symbolic links followed) and must lie inside a local root, and a URL is
refused (Polars and Arrow would fetch it with no SSRF check, no pinned address and the
server's ambient cloud credentials): remote Parquet goes through a ``source`` node and
the ``file`` connector's http(s) root or an object-store connector, which check every
endpoint.

A source's ``predicate`` is a UZO expression (DuckDB's dialect and semantics,
:mod:`uzo_engine.expressions`). It is offered to the connector, which pushes down
what it answers exactly; whatever the plan does not report as pushed down, the
node applies itself with the engine's compiler, so the rows are the same whichever
connector reads them.
"""

from __future__ import annotations

import dataclasses
import glob
import importlib
import logging
import os
import re
from typing import TYPE_CHECKING, Any, Literal

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field, field_validator, model_validator

from uzo_connectors.errors import BlockedEndpointError
from uzo_connectors.files.staging import StagedFile
from uzo_engine.expressions import ExpressionError, check, compile_expression, sql_name
from uzo_engine.expressions.bounds import headroom
from uzo_engine.nodes.base import (
    InlineConnector,
    LazyNodeType,
    NodeType,
    Params,
    SchemaError,
    SchemaUnknownError,
    require_columns,
)
from uzo_engine.nodes.types import cast_expr, parse_dtype, polars_schema, to_polars

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from uzo_connectors.base import ConnectorContext
    from uzo_engine.plan import StepContext


log = logging.getLogger(__name__)


def _check_schema(v: dict[str, str] | None) -> dict[str, str] | None:
    for t in (v or {}).values():
        parse_dtype(t)
    return v


def declared_schema(schema: Mapping[str, str]) -> pl.Schema:
    return pl.Schema({c: parse_dtype(t) for c, t in schema.items()})


# ---------------------------------------------------------------- values


class ValuesParams(Params):
    rows: list[dict[str, Any]] = Field(default_factory=list, description="the rows, as objects")
    schema_: dict[str, str] | None = Field(
        None, alias="schema", description="column -> type; inferred from the rows when omitted"
    )

    _check = field_validator("schema_")(_check_schema)

    @model_validator(mode="after")
    def _rows_or_schema(self) -> ValuesParams:
        if not self.rows and not self.schema_:
            raise ValueError("give `rows`, or a `schema` for an empty table")
        return self


def values_frame(params: ValuesParams) -> pl.DataFrame:
    names: list[str] = list(params.schema_ or {})
    for row in params.rows:
        names.extend(k for k in row if k not in names)
    columns = []
    for name in names:
        data = [row.get(name) for row in params.rows]
        series = pl.Series(name, data, strict=False)
        if params.schema_ and name in params.schema_:
            dtype = parse_dtype(params.schema_[name])
            try:
                series = pl.DataFrame([series]).select(cast_expr(pl.col(name), dtype))[name]
            except pl.exceptions.PolarsError:
                raise ValueError(f"values: column {name!r} does not convert to {dtype}") from None
        columns.append(series)
    return pl.DataFrame(columns)


class ValuesNode(LazyNodeType[ValuesParams]):
    name = "values"
    Params = ValuesParams
    inputs = ()
    description = "An inline table (rows in the config)."

    def build(
        self, params: ValuesParams, inputs: Mapping[str, pl.LazyFrame]
    ) -> dict[str, pl.LazyFrame]:
        return {"out": values_frame(params).lazy()}


# ---------------------------------------------------------------- local paths

# what Polars and Arrow take for a URL (s3://, gs://, az://, hf://, http(s)://, file://...)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_GLOB = re.compile(r"[*?\[]")


def _local(path: str, node: str, connectors: ConnectorContext) -> str:
    """``path`` as the local path it names: a URL is refused; ``~`` is expanded only for
    an unrestricted (operator's) context, a tenant's relative path is in its own root."""
    if _URL.match(path):
        raise BlockedEndpointError(
            f"{node} takes local paths, not URLs ({path.split('://', 1)[0]}://): read remote "
            "data through a `source` node (the `file` connector's http(s) root or an "
            "object-store connector), which checks every endpoint it reaches"
        )
    return os.path.expanduser(path) if connectors.local_roots is None else path


def _visible(name: str) -> bool:
    return not name.startswith((".", "_"))  # as Polars: _SUCCESS, .crc files are not data


def _readable(path: str, connectors: ConnectorContext) -> str | None:
    """A listed entry's resolved path, if it is a regular file inside the roots; else None
    (logged): one planted link cannot expose a file outside, nor fail the whole read."""
    try:
        real = connectors.check_local_path(path)
    except BlockedEndpointError:
        log.warning("skipping %s: it resolves outside the local roots", path)
        return None
    return real if os.path.isfile(real) else None


def parquet_files(path: str, connectors: ConnectorContext) -> tuple[list[str], bool]:
    """The files ``path`` names, and whether they form a hive dataset (a directory).

    ``path`` is a file, a directory (its visible files, recursively, as hive partitions;
    links to directories are not followed) or a glob (``*``, ``?``, ``[...]``, ``**``).
    Every file is resolved, symbolic links followed, and must be inside one of
    ``connectors``' local roots: a path (or a glob's fixed part) outside is refused
    (:class:`BlockedEndpointError`) before anything is looked at, so a refusal says
    nothing about what exists there; an entry of a directory or glob that resolves
    outside is skipped, as the ``file`` connector does.
    """
    path = _local(path, "parquet_source", connectors)
    if _GLOB.search(path):
        parts = path.split("/")
        fixed = next(i for i, part in enumerate(parts) if _GLOB.search(part))
        base = "/".join(parts[:fixed]) or ("/" if path.startswith("/") else ".")
        pattern = os.path.join(connectors.check_local_path(base), *parts[fixed:])
        found = [_readable(m, connectors) for m in glob.glob(pattern, recursive=True)]
        files, hive = [f for f in found if f is not None], False
    else:
        target = connectors.check_local_path(path)
        hive = os.path.isdir(target)
        files = [target]
        if hive:
            files = []
            for folder, dirs, names in os.walk(target):
                dirs[:] = sorted(d for d in dirs if _visible(d))
                visible = (os.path.join(folder, n) for n in names if _visible(n))
                listed = (_readable(f, connectors) for f in visible)
                files += [f for f in listed if f is not None]
        elif os.path.exists(target) and not os.path.isfile(target):
            raise ValueError(f"{path!r} is not a regular file")  # a FIFO would block the read
    if not files:
        raise FileNotFoundError(f"no Parquet file matches {path!r}")
    return sorted(set(files)), hive


def scan_parquet(path: str, connectors: ConnectorContext) -> pl.LazyFrame:
    """A lazy scan of the checked files of ``path`` (:func:`parquet_files`): Polars gets
    their resolved paths, with its own glob expansion off."""
    files, hive = parquet_files(path, connectors)
    return pl.scan_parquet(files, glob=False, hive_partitioning=hive)


def output_path(path: str, node: str, connectors: ConnectorContext) -> str:
    """The resolved local file ``node`` may write at ``path`` (inside a local root)."""
    target = connectors.check_local_path(_local(path, node, connectors))
    if os.path.isdir(target):
        raise IsADirectoryError(f"{path!r} is a directory: name the file to write")
    return target


# ---------------------------------------------------------------- parquet


class ParquetSourceParams(Params):
    path: str = Field(
        description="a local Parquet file, directory (hive dataset) or glob, inside the "
        "run's local roots (relative: to the first root)"
    )
    columns: list[str] | None = None


class ParquetSourceNode(LazyNodeType[ParquetSourceParams]):
    name = "parquet_source"
    Params = ParquetSourceParams
    inputs = ()
    description = "Read local Parquet files (lazily: projections and filters are pushed down)."
    infer_reads_data = True  # the schema comes from the files' metadata

    def infer_schema(
        self, params: ParquetSourceParams, inputs: Mapping[str, pl.Schema]
    ) -> dict[str, pl.Schema]:
        raise SchemaUnknownError("the files' schema is known when the node runs")

    def read_schema(
        self,
        params: ParquetSourceParams,
        inputs: Mapping[str, pl.Schema],
        connectors: ConnectorContext,
    ) -> dict[str, pl.Schema]:
        try:
            schema = scan_parquet(params.path, connectors).collect_schema()
        except (OSError, BlockedEndpointError, pl.exceptions.PolarsError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise SchemaError(f"cannot read {params.path!r}: {msg}", code="source_error") from None
        if params.columns:
            require_columns(schema, params.columns)
            schema = pl.Schema({c: schema[c] for c in params.columns})
        return {"out": schema}

    def build(
        self, params: ParquetSourceParams, inputs: Mapping[str, pl.LazyFrame]
    ) -> dict[str, pl.LazyFrame]:
        raise BlockedEndpointError(
            "parquet_source reads files only in a running step, within its context's local roots"
        )

    def build_with_context(
        self, params: ParquetSourceParams, inputs: Mapping[str, pl.LazyFrame], ctx: StepContext
    ) -> dict[str, pl.LazyFrame]:
        lf = scan_parquet(params.path, ctx.connectors)
        return {"out": lf.select(params.columns) if params.columns else lf}


class ParquetSinkParams(Params):
    path: str = Field(
        description="the local file to write, inside the run's local roots (relative: to the "
        "first root)"
    )
    compression: Literal["zstd", "snappy", "gzip", "lz4", "none"] = "zstd"


ROW_GROUP_ROWS = 1024 * 1024  # Arrow's default; cancellation is checked between groups


class ParquetSinkNode(NodeType[ParquetSinkParams]):
    name = "parquet_sink"
    Params = ParquetSinkParams
    outputs = ()
    description = "Write the input to a local Parquet file."

    def infer_schema(
        self, params: ParquetSinkParams, inputs: Mapping[str, pl.Schema]
    ) -> dict[str, pl.Schema]:
        return {}

    def run(
        self, params: ParquetSinkParams, inputs: Mapping[str, pa.Table], ctx: StepContext
    ) -> dict[str, pa.Table]:
        table = inputs["in"]
        target = output_path(params.path, self.name, ctx.connectors)
        # Staged next to the resolved target (so inside the same root), then renamed over
        # it once complete and fsynced: a failure, cancellation or kill leaves the old file.
        # Arrow gets an open file, never a path or URI it would give a filesystem of its own.
        directory, name = os.path.split(target)
        with (
            StagedFile(directory, name, mode=None, keep_mode=True) as staged,
            pq.ParquetWriter(staged.file, table.schema, compression=params.compression) as w,
        ):  # the writer closes (the footer) before the staged file is committed
            for start in range(0, table.num_rows, ROW_GROUP_ROWS):
                if ctx.cancelled():
                    raise RuntimeError(f"cancelled while writing {params.path!r}")
                w.write_table(table.slice(start, ROW_GROUP_ROWS))
        return {}


# ---------------------------------------------------------------- connectors


class ConnectorRef(Params):
    connector: str = Field(description="connector type key, e.g. `postgres`, `s3`")
    connector_id: str | None = Field(
        None, description="saved connector whose resolved config the caller passes in"
    )
    config: dict[str, Any] = Field(default_factory=dict, description="inline connector config")
    dataset: str = Field(description="table, file or collection")


class SourceParams(ConnectorRef):
    columns: list[str] | None = None
    predicate: str | None = Field(None, description="SQL predicate pushed to the connector")
    limit: int | None = Field(None, ge=0)
    schema_: dict[str, str] | None = Field(
        None, alias="schema", description="declared schema, for validation before running"
    )

    _check = field_validator("schema_")(_check_schema)

    @field_validator("predicate")
    @classmethod
    def _valid_predicate(cls, value: str | None) -> str | None:
        if value is not None:
            check(value)  # ExpressionError (a ValueError) names what is wrong
        return value


def compile_predicate(predicate: str, schema: Mapping[str, pl.DataType]) -> pl.Expr:
    """The predicate as a Polars expression with DuckDB's semantics (SchemaError if not one)."""
    try:
        compiled = compile_expression(predicate, schema)
    except ExpressionError as e:
        column = getattr(e, "column", None)
        code = "missing_column" if column else "expression_error"
        raise SchemaError(f"predicate: {e}", code=code, column=column) from None
    if not isinstance(compiled.dtype, (pl.Boolean, pl.Null)):
        raise SchemaError(
            f"predicate {predicate!r} is {sql_name(compiled.dtype)}, not BOOLEAN",
            code="type_mismatch",
        )
    return compiled.expr


def filtered(batches: Iterator[pa.RecordBatch], predicate: str) -> Iterator[pa.RecordBatch]:
    """The rows of ``batches`` where ``predicate`` is true, in their own Arrow types."""
    needed = list(check(predicate))
    condition: pl.Expr | None = None
    for batch in batches:
        table = pa.Table.from_batches([batch])
        frame = to_polars(table.select(needed) if needed else table)
        if condition is None:
            condition = compile_predicate(predicate, frame.schema).fill_null(False)
        yield batch.filter(frame.select(condition).to_series().to_arrow())


def inline_connector(config: Mapping[str, Any]) -> list[InlineConnector]:
    """The inline ``config`` of a ``source``/``sink`` config, with its ``connector`` type."""
    inline = config.get("config")
    if not isinstance(inline, dict) or not inline:
        return []
    type_key = config.get("connector")
    return [InlineConnector(type_key if isinstance(type_key, str) else None, "config", inline)]


class SinkParams(ConnectorRef):
    mode: Literal["append", "overwrite", "upsert", "fail_if_exists"] = "append"
    keys: list[str] = Field(default_factory=list, description="merge keys for `upsert`")


def with_saved_config(
    connector_id: str | None, inline: Mapping[str, Any], ctx: StepContext
) -> dict[str, Any]:
    """A node's inline connector config merged under its saved connector's resolved one.

    The saved connector's fields win: an inline value that differs from a field the
    saved connector sets (a ``host``, ``base_url``, path or credential) is refused,
    else a node could send the saved connector's decrypted secret to a server of the
    caller's choosing. Inline keys the saved connector leaves unset are kept.
    """
    if connector_id is None:
        return dict(inline)
    if connector_id not in ctx.connector_configs:
        raise KeyError(f"no resolved config for connector {connector_id!r}")
    saved = dict(ctx.connector_configs[connector_id])
    for key, value in inline.items():
        if key in saved and saved[key] != value:
            raise ValueError(
                f"config.{key}: saved connector {connector_id!r} sets this field; a node "
                "cannot override it (remove it from the node's config)"
            )
    return {**inline, **saved}


def open_connector(params: ConnectorRef, ctx: StepContext) -> Any:
    """Instantiate the connector (imported lazily: connectors are optional plugins)."""
    registry = importlib.import_module("uzo_connectors.registry")
    cls = registry.get_connector_class(params.connector)
    raw = with_saved_config(params.connector_id, params.config, ctx)
    config = cls.config_model.model_validate(raw)
    # the caller's limits: a tenant's roots and the deployment's endpoint policy
    return cls(config, ctx.connectors)


class ConnectorSourceNode(NodeType[SourceParams]):
    name = "source"
    io_bound = True
    Params = SourceParams
    inputs = ()
    description = "Read a dataset through a connector."

    def inline_connectors(self, config: Mapping[str, Any]) -> list[InlineConnector]:
        return inline_connector(config)

    def infer_schema(
        self, params: SourceParams, inputs: Mapping[str, pl.Schema]
    ) -> dict[str, pl.Schema]:
        if params.schema_ is None:
            raise SchemaUnknownError("source schema is known when it runs (declare `schema`)")
        schema = declared_schema(params.schema_)
        if params.predicate and set(check(params.predicate)) <= set(schema):
            compile_predicate(params.predicate, schema)  # the types are known: check them now
        return {"out": schema}

    def run(
        self, params: SourceParams, inputs: Mapping[str, pa.Table], ctx: StepContext
    ) -> dict[str, pa.Table]:
        base = importlib.import_module("uzo_connectors.base")
        limit = params.limit
        if ctx.preview_limit is not None:
            limit = min(limit, ctx.preview_limit) if limit is not None else ctx.preview_limit
        columns = tuple(params.columns) if params.columns else None
        connector = open_connector(params, ctx)
        try:
            request = base.ReadRequest(
                dataset=params.dataset, columns=columns, predicate=params.predicate, limit=limit
            )
            with headroom():  # the connector parses the predicate: as deep as check() allows
                plan = connector.plan_read(request)
            residual = None
            if params.predicate and "predicate" not in plan.pushed_down:
                # the node filters: it reads the predicate's columns too, and limits after
                wanted = columns
                if columns is not None:
                    wanted = tuple(dict.fromkeys((*columns, *check(params.predicate))))
                if wanted != columns or "limit" in plan.pushed_down:
                    plan = connector.plan_read(
                        dataclasses.replace(request, columns=wanted, limit=None)
                    )
                compile_predicate(params.predicate, polars_schema(plan.schema))  # before reading
                residual = params.predicate
            batches: list[pa.RecordBatch] = []
            rows = 0
            for task in plan.tasks:
                read = task.read() if residual is None else filtered(task.read(), residual)
                for batch in read:
                    batches.append(batch)
                    rows += batch.num_rows
                    if limit is not None and rows >= limit:
                        break
                if limit is not None and rows >= limit:
                    break
            table = pa.Table.from_batches(batches, schema=plan.schema)
        finally:
            connector.close()
        if columns is not None and table.column_names != list(columns):
            table = table.select(list(columns))
        if limit is not None:
            table = table.slice(0, limit)
        return {"out": table}


class ConnectorSinkNode(NodeType[SinkParams]):
    name = "sink"
    io_bound = True
    Params = SinkParams
    outputs = ()
    description = "Write the input to a dataset through a connector (all or nothing)."

    def inline_connectors(self, config: Mapping[str, Any]) -> list[InlineConnector]:
        return inline_connector(config)

    def infer_schema(
        self, params: SinkParams, inputs: Mapping[str, pl.Schema]
    ) -> dict[str, pl.Schema]:
        if params.mode == "upsert":
            if not params.keys:
                raise SchemaError("upsert needs `keys`", code="invalid_config")
            require_columns(inputs["in"], params.keys, what="upsert key")
        return {}

    def run(
        self, params: SinkParams, inputs: Mapping[str, pa.Table], ctx: StepContext
    ) -> dict[str, pa.Table]:
        base = importlib.import_module("uzo_connectors.base")
        table = inputs["in"]
        connector = open_connector(params, ctx)
        try:
            request = base.WriteRequest(
                dataset=params.dataset,
                schema=table.schema,
                mode=base.WriteMode(params.mode),
                keys=tuple(params.keys),
            )
            with connector.open_sink(request) as sink:
                for batch in table.to_batches(max_chunksize=65_536):
                    sink.write(batch)
                sink.commit()
        finally:
            connector.close()
        return {}
