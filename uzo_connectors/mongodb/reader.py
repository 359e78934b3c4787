"""Reads: a validated read spec, the high-water mark, and the cursor -> Arrow stream.

Pushed to the server: the filter, the projection (columns -> a MongoDB
projection; ``_id`` only when asked for), the limit and, for incremental reads,
``watermark > after`` (and ``<= high-water mark``) sorted by the watermark.
The cursor is read ``batch_size`` documents at a time, so memory stays bounded
by one batch.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from uzo_connectors.errors import ConfigError
from uzo_connectors.mongodb.documents import coerce, to_batch
from uzo_connectors.registry import import_optional

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pyarrow as pa

    from uzo_connectors.mongodb.documents import Inferred, Nested


@dataclass(frozen=True)
class ReadSpec:
    """Everything a read task needs (picklable)."""

    collection: str
    columns: tuple[str, ...]
    filter: dict[str, Any]
    nested: Nested
    limit: int | None = None
    watermark: str | None = None
    after: Any = None
    upper: Any = None  # the high-water mark (BSON value) computed at planning time
    batch_size: int = 65_536
    empty: bool = False


def resolve_columns(requested: tuple[str, ...] | None, available: list[str]) -> tuple[str, ...]:
    if requested is None:
        return tuple(available)
    unknown = [c for c in requested if c not in available]
    if unknown:
        raise ConfigError(f"columns: unknown column(s) {unknown} (columns: {', '.join(available)})")
    if not requested:
        raise ConfigError("columns: the projection is empty")
    return tuple(requested)


def bson_after(value: Any, kinds: frozenset[str], column: str) -> Any:
    """``Incremental.after`` as the BSON value to compare with (hex -> ObjectId, ISO -> date)."""
    if value is None or not isinstance(value, str):
        return value
    if kinds == {"objectid"}:
        bson = import_optional("bson", "mongodb")
        if not bson.ObjectId.is_valid(value):
            raise ConfigError(f"incremental: {value!r} is not an ObjectId ({column!r})")
        return bson.ObjectId(value)
    if kinds == {"datetime"}:
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ConfigError(f"incremental: {value!r} is not an ISO 8601 datetime") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return value


def projection(spec: ReadSpec) -> dict[str, int]:
    """Columns -> a MongoDB projection (a struct column projects its whole sub-document)."""
    paths = list(spec.columns)
    if spec.watermark is not None and spec.watermark not in paths:
        paths.append(spec.watermark)
    out = dict.fromkeys(paths, 1)
    if "_id" not in paths:
        out["_id"] = 0
    return out


def query(spec: ReadSpec, *, with_upper: bool = True) -> dict[str, Any]:
    clauses = [spec.filter] if spec.filter else []
    if spec.watermark is not None:
        bounds: dict[str, Any] = {}
        if spec.after is not None:
            bounds["$gt"] = spec.after
        if with_upper and spec.upper is not None:
            bounds["$lte"] = spec.upper
        if bounds:
            clauses.append({spec.watermark: bounds})
        else:
            clauses.append({spec.watermark: {"$ne": None}})
    if not clauses:
        return {}
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def high_water_mark(collection: Any, spec: ReadSpec) -> Any:
    """The greatest watermark value the read will return (None if nothing is new)."""
    assert spec.watermark is not None
    wm = spec.watermark
    fields = {wm: 1} if wm == "_id" else {wm: 1, "_id": 0}
    cursor = collection.find(query(spec, with_upper=False), fields)
    if spec.limit is not None:
        cursor = cursor.sort(wm, 1).skip(max(spec.limit - 1, 0)).limit(1)
        docs = list(cursor)
        if not docs:  # fewer documents than the limit: the mark is the overall maximum
            docs = list(
                collection.find(query(spec, with_upper=False), fields).sort(wm, -1).limit(1)
            )
    else:
        docs = list(cursor.sort(wm, -1).limit(1))
    if not docs:
        return None
    from uzo_connectors.mongodb.documents import get_path

    return get_path(docs[0], wm)


def visible_mark(value: Any, inferred: Inferred, column: str) -> Any:
    """The high-water mark as the read shows it (ObjectId -> hex string, ...)."""
    return coerce(value, inferred.schema.field(column).type, column)


def stream(collection: Any, spec: ReadSpec, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    if spec.empty or spec.limit == 0:
        return
    cursor = collection.find(query(spec), projection(spec), batch_size=spec.batch_size)
    if spec.watermark is not None:
        cursor = cursor.sort(spec.watermark, 1)
    if spec.limit is not None:
        cursor = cursor.limit(spec.limit)
    try:
        pending: list[dict[str, Any]] = []
        for doc in cursor:
            pending.append(doc)
            if len(pending) >= spec.batch_size:
                yield to_batch(pending, schema)
                pending = []
        if pending:
            yield to_batch(pending, schema)
    finally:
        cursor.close()


def with_mark(spec: ReadSpec, upper: Any) -> ReadSpec:
    return replace(spec, upper=upper, empty=upper is None)
