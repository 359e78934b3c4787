"""The node-type contract.

A node type declares a pydantic ``Params`` model (``extra="forbid"``; its JSON
Schema is the UI form), its input and output port names, schema inference and
execution. There are two kinds:

- :class:`LazyNodeType` builds a Polars lazy plan (``build``). The compiler may
  fuse a chain of them into one step that collects once. ``rowwise`` marks the
  ones that work row by row with one input (filter, select, derive, ...): only
  those extend a fused chain.
- :class:`NodeType` runs eagerly on Arrow tables (``run``): SQL, control flow,
  I/O, anything that is not a lazy plan.

Port conventions: an output port that ``run`` leaves out of its result is
*skipped* (the runtime marks its downstream skipped, not failed). Nodes with
``variadic_inputs`` (union, sql) accept any input handle names.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import polars as pl
from pydantic import BaseModel, ConfigDict

from uzo_engine.nodes.types import empty_frame, to_arrow, to_polars

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pyarrow as pa

    from uzo_connectors.base import ConnectorContext
    from uzo_engine.plan import StepContext

PolarsSchema = pl.Schema
# input column references of one output column: (input port, input column)
ColumnSources = tuple[tuple[str, str], ...]


class Params(BaseModel):
    """Base of every node config model: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=Params)


@dataclass(frozen=True)
class InlineConnector:
    """A connector config a node carries in its own config, at ``config.<field>``."""

    connector_type: str | None  # None: the config does not say (yet)
    field: str
    config: Mapping[str, Any]


class SchemaError(ValueError):
    """Static schema inference rejected a node (a missing column, incompatible types...)."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "schema_error",
        column: str | None = None,
        field: str | None = None,  # the config field at fault, e.g. ``config.condition``
    ):
        super().__init__(message)
        self.code = code
        self.column = column
        self.field = field


class NodeExecutionError(RuntimeError):
    """A node failed while running; the message names the node."""

    def __init__(self, node_id: str, node_type: str, message: str):
        super().__init__(f"node {node_id!r} ({node_type}): {message}")
        self.node_id = node_id
        self.node_type = node_type
        self.detail = message


def require_columns(
    schema: Mapping[str, pl.DataType],
    columns: tuple[str, ...] | list[str],
    *,
    port: str = "in",
    what: str = "column",
) -> None:
    """Raise SchemaError naming the first referenced column the input does not have."""
    for col in columns:
        if col not in schema:
            have = ", ".join(schema) or "none"
            where = f" on input {port!r}" if port != "in" else ""
            raise SchemaError(
                f"{what} {col!r} does not exist{where} (available: {have})",
                code="missing_column",
                column=col,
            )


class NodeType(abc.ABC, Generic[P]):
    """Every node type. Subclasses set the class attributes and implement ``run``."""

    name: ClassVar[str]
    Params: type[P]
    inputs: ClassVar[tuple[str, ...]] = ("in",)
    outputs: ClassVar[tuple[str, ...]] = ("out",)
    variadic_inputs: ClassVar[bool] = False  # any handle names, at least ``min_inputs``
    min_inputs: ClassVar[int] = 1
    lazy: ClassVar[bool] = False
    rowwise: ClassVar[bool] = False
    description: ClassVar[str] = ""
    #: the node spends its time waiting on the network (a database, an API), not on the
    #: CPU: a step made only of such nodes runs on the I/O lane, holding no CPU slot
    io_bound: ClassVar[bool] = False
    #: the output schema is only known by reading the data it describes (a file's
    #: metadata): validation then never calls ``infer_schema`` but ``read_schema``, and
    #: only when its caller gives a connector context to read within (the CLI gives the
    #: operator's); without one (the API, the compiler) the schema is unknown until it runs
    infer_reads_data: ClassVar[bool] = False

    def parse_params(self, config: Mapping[str, Any]) -> P:
        return self.Params.model_validate(dict(config))

    def inline_connectors(self, config: Mapping[str, Any]) -> list[InlineConnector]:
        """Connector configs written inline in this node's raw ``config``.

        Read from the raw dict, so that a config that does not validate yet (a draft) is
        covered too: a caller that keeps secrets out of stored workflows checks each one
        against its connector type's secret fields.
        """
        return []

    def referenced_columns(self, params: P) -> dict[str, tuple[str, ...]]:
        """Input columns the config names, by input port (checked before inference)."""
        return {}

    @abc.abstractmethod
    def infer_schema(self, params: P, inputs: Mapping[str, pl.Schema]) -> dict[str, pl.Schema]:
        """Output schema per output port, from the input schemas (no data is read)."""

    def read_schema(
        self, params: P, inputs: Mapping[str, pl.Schema], connectors: ConnectorContext
    ) -> dict[str, pl.Schema]:
        """For ``infer_reads_data`` types: the output schema read from storage, touching
        only what ``connectors`` allows (its local roots, its endpoint policy)."""
        raise SchemaUnknownError(f"{self.name}: the schema is known when the node runs")

    @abc.abstractmethod
    def run(
        self, params: P, inputs: Mapping[str, pa.Table], ctx: StepContext
    ) -> dict[str, pa.Table]:
        """Compute the outputs; an output port missing from the result is skipped.

        A node that reads or writes anything (files, the network) takes its limits from
        ``ctx.connectors``, never from a default of its own."""

    def column_lineage(
        self, params: P, inputs: Mapping[str, pl.Schema], outputs: Mapping[str, pl.Schema]
    ) -> dict[str, dict[str, ColumnSources]]:
        """Per output port and column, the input columns it comes from.

        The default links columns with the same name on any input port.
        """
        result: dict[str, dict[str, ColumnSources]] = {}
        for port, schema in outputs.items():
            result[port] = {
                col: tuple((p, col) for p, s in inputs.items() if col in s) for col in schema
            }
        return result

    def explain_error(
        self, params: P, inputs: Mapping[str, pl.DataFrame], error: Exception
    ) -> str | None:
        """A clearer message for a failure on these inputs (e.g. the value that did not cast)."""
        return None


class LazyNodeType(NodeType[P]):
    """A node whose work is a Polars lazy plan; fusable by the compiler."""

    lazy: ClassVar[bool] = True

    @abc.abstractmethod
    def build(self, params: P, inputs: Mapping[str, pl.LazyFrame]) -> dict[str, pl.LazyFrame]:
        """The output lazy frames, one per output port."""

    def build_with_context(
        self, params: P, inputs: Mapping[str, pl.LazyFrame], ctx: StepContext
    ) -> dict[str, pl.LazyFrame]:
        """The plan a running step collects: ``build``, unless the node type's plan reads
        storage (a scan), which then takes its limits from ``ctx.connectors``."""
        return self.build(params, inputs)

    def infer_schema(self, params: P, inputs: Mapping[str, pl.Schema]) -> dict[str, pl.Schema]:
        for port, cols in self.referenced_columns(params).items():
            if port in inputs:
                require_columns(inputs[port], cols, port=port)
        frames = {port: empty_frame(schema) for port, schema in inputs.items()}
        try:
            built = self.build(params, frames)
            return {port: lf.collect_schema() for port, lf in built.items()}
        except SchemaError:
            raise
        except (pl.exceptions.PolarsError, ValueError, TypeError) as e:
            raise SchemaError(_first_line(e)) from None

    def run(
        self, params: P, inputs: Mapping[str, pa.Table], ctx: StepContext
    ) -> dict[str, pa.Table]:
        frames = {port: to_polars(t).lazy() for port, t in inputs.items()}
        built = self.build_with_context(params, frames, ctx)
        collected = pl.collect_all(list(built.values()))
        return {port: to_arrow(df) for port, df in zip(built, collected, strict=True)}


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class SchemaUnknownError(Exception):
    """The output schema depends on the data (e.g. a pivot without declared columns).

    Validation then skips static checks downstream of the node.
    """
