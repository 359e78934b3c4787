"""BSON documents <-> Arrow: schema inference from a sample, conversion both ways.

Types (inferred from a sample of documents, ``sample_size``):

- bool -> bool; int32/int64 -> int64; double -> float64 (ints and doubles mixed
  in one field -> float64); string -> string; ObjectId -> string (24 hex
  digits); datetime -> timestamp[ms, UTC]; binary -> binary; Decimal128, UUID,
  regex and other BSON types -> string.
- Sub-documents: ``nested="flatten"`` gives one column per leaf with a dotted
  name (``address.city``); ``nested="struct"`` keeps one struct column per
  top-level field. Arrays become lists of their (unified) element type, with
  sub-documents inside arrays as structs in both modes.
- **Mixed types**: a field holding values of different kinds (other than
  int+double) becomes a string column, and so does a field that is only ever
  null or an empty document. Values are rendered as: strings as they are,
  ObjectId as its 24 hex digits, datetimes as ISO 8601, numbers and booleans as
  JSON, sub-documents and arrays as relaxed Extended JSON text.
- A value read later that does not fit the inferred type (the sample missed it)
  is an error naming the field; fields not seen in the sample are not read.

Writes convert back: a column named ``a.b`` becomes the sub-document field
``{"a": {"b": ...}}``; an ``_id`` value of 24 hex digits is written as an
ObjectId (so read -> write round trips keep identities); decimals become
Decimal128 and dates midnight UTC datetimes.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from uzo_connectors.errors import ConfigError, ConnectorError
from uzo_connectors.registry import import_optional

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

Nested = Literal["flatten", "struct"]
TIMESTAMP = pa.timestamp("ms", tz="UTC")


@dataclass
class Node:
    """What a sample showed about one field: the kinds of its values, its sub-fields."""

    kinds: set[str] = field(default_factory=set)
    children: dict[str, Node] = field(default_factory=dict)
    items: Node | None = None


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dt.datetime):
        return "datetime"
    if isinstance(value, dict):
        return "dict"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, bytes):
        return "binary"
    bson = import_optional("bson", "mongodb")
    if isinstance(value, bson.ObjectId):
        return "objectid"
    return "other"


def observe(node: Node, value: Any) -> None:
    kind = kind_of(value)
    node.kinds.add(kind)
    if kind == "dict":
        for key, item in value.items():
            observe(node.children.setdefault(str(key), Node()), item)
    elif kind == "list":
        if node.items is None:
            node.items = Node()
        for item in value:
            observe(node.items, item)


def arrow_type(node: Node | None) -> pa.DataType:
    kinds = (node.kinds if node is not None else set()) - {"null"}
    if node is None or not kinds:
        return pa.string()
    if kinds == {"dict"}:
        if not node.children:
            return pa.string()
        return pa.struct([pa.field(k, arrow_type(c)) for k, c in node.children.items()])
    if kinds == {"list"}:
        return pa.list_(arrow_type(node.items))
    if kinds <= {"int", "float"}:
        return pa.float64() if "float" in kinds else pa.int64()
    if len(kinds) == 1:
        return {"bool": pa.bool_(), "datetime": TIMESTAMP, "binary": pa.binary()}.get(
            next(iter(kinds)), pa.string()
        )
    return pa.string()


@dataclass(frozen=True)
class Inferred:
    schema: pa.Schema
    kinds: dict[str, frozenset[str]]  # column -> BSON kinds seen (for watermarks)
    sampled: int


def _leaves(prefix: str, node: Node) -> Iterable[tuple[str, Node]]:
    if node.kinds - {"null"} == {"dict"} and node.children:
        for name, child in node.children.items():
            yield from _leaves(f"{prefix}{name}.", child)
    else:
        yield prefix[:-1], node


def infer(documents: Iterable[dict[str, Any]], nested: Nested) -> Inferred:
    root = Node()
    count = 0
    for doc in documents:
        observe(root, doc)
        count += 1
    if nested == "flatten":
        columns = [
            leaf for name, child in root.children.items() for leaf in _leaves(name + ".", child)
        ]
    else:
        columns = list(root.children.items())
    schema = pa.schema([pa.field(name, arrow_type(node)) for name, node in columns])
    kinds = {name: frozenset(node.kinds - {"null"}) for name, node in columns}
    return Inferred(schema=schema, kinds=kinds, sampled=count)


# ----- documents -> Arrow ---------------------------------------------------------------------


def to_text(value: Any) -> str:
    """The string rendering of a value in a string (mixed-type) column."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    json_util = import_optional("bson.json_util", "mongodb")
    if isinstance(value, dict | list | tuple | bytes):
        return str(json_util.dumps(value, json_options=json_util.RELAXED_JSON_OPTIONS))
    return str(value)  # ObjectId (hex), Decimal128, UUID, Regex, ...


class MismatchError(ConnectorError):
    """A value does not fit the column type inferred from the sample."""


def _mismatch(value: Any, t: pa.DataType, path: str) -> MismatchError:
    return MismatchError(
        f"field {path!r}: a {kind_of(value)} value does not fit the inferred type {t}; the"
        " schema is inferred from a sample of documents: raise `sample_size` so it sees"
        " every kind of value (a field with mixed kinds is read as string)"
    )


def coerce(value: Any, t: pa.DataType, path: str) -> Any:
    """``value`` as a Python value Arrow accepts for type ``t``."""
    if value is None:
        return None
    if pa.types.is_string(t):
        return to_text(value)
    if pa.types.is_struct(t):
        if not isinstance(value, dict):
            raise _mismatch(value, t, path)
        return {f.name: coerce(value.get(f.name), f.type, f"{path}.{f.name}") for f in t}
    if pa.types.is_list(t):
        if not isinstance(value, list | tuple):
            raise _mismatch(value, t, path)
        return [coerce(v, t.value_type, f"{path}[]") for v in value]
    if isinstance(value, bool):
        if pa.types.is_boolean(t):
            return value
        raise _mismatch(value, t, path)
    if pa.types.is_int64(t) and isinstance(value, int):
        return value
    if pa.types.is_float64(t) and isinstance(value, int | float):
        return float(value)
    if pa.types.is_timestamp(t) and isinstance(value, dt.datetime):
        return value
    if pa.types.is_binary(t) and isinstance(value, bytes):
        return bytes(value)
    raise _mismatch(value, t, path)


def get_path(doc: dict[str, Any], name: str) -> Any:
    """The value at a dotted column name (a literal dotted key wins over nesting)."""
    current: Any = doc
    rest = name
    while True:
        if not isinstance(current, dict):
            return None
        if rest in current:
            return current[rest]
        head, dot, rest = rest.partition(".")
        if not dot:
            return None
        current = current.get(head)


def to_batch(documents: Sequence[dict[str, Any]], schema: pa.Schema) -> pa.RecordBatch:
    arrays = []
    for f in schema:
        values = [coerce(get_path(doc, f.name), f.type, f.name) for doc in documents]
        arrays.append(pa.array(values, type=f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


# ----- Arrow -> documents ---------------------------------------------------------------------


def check_write_columns(names: Sequence[str]) -> None:
    """Refuse column sets that cannot become documents (``a`` and ``a.b`` together)."""
    present = set(names)
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts)):
            prefix = ".".join(parts[:i])
            if prefix in present:
                raise ConfigError(
                    f"columns {prefix!r} and {name!r} cannot both be written: {name!r}"
                    f" is a field inside the sub-document {prefix!r}"
                )
        if any(not part or part.startswith("$") for part in parts):
            raise ConfigError(f"column {name!r} is not a valid MongoDB field name")


def _to_bson(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_bson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_bson(v) for v in value]
    if isinstance(value, decimal.Decimal):
        return import_optional("bson.decimal128", "mongodb").Decimal128(value)
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if isinstance(value, dt.time | dt.timedelta):
        return str(value)
    return value


def to_documents(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    """Rows of ``batch`` as BSON-ready documents (dotted names nested, ``_id`` hex -> ObjectId)."""
    bson = import_optional("bson", "mongodb")
    docs = []
    for row in batch.to_pylist():
        doc: dict[str, Any] = {}
        for name, value in row.items():
            if name == "_id" and isinstance(value, str) and bson.ObjectId.is_valid(value):
                value = bson.ObjectId(value)
            else:
                value = _to_bson(value)
            target = doc
            *parents, leaf = name.split(".")
            for part in parents:
                target = target.setdefault(part, {})
            target[leaf] = value
        docs.append(doc)
    return docs
