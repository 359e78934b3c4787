"""Planning file reads: one task per file (or per row-group bucket of a big Parquet file).

Tasks are small picklable objects (the fsspec filesystem travels with them), so
they can run in Ray workers. Each streams record batches of the plan's schema:
projection, the predicate (the part of it Arrow answers as DuckDB does, see
:mod:`uzo_connectors.files.predicate`) and the limit are applied inside the scan,
so memory stays bounded by the batch size. A predicate that is not pushed down
entirely is left to the caller, and so is the limit then (it counts the rows
that pass the whole predicate).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from uzo_connectors.arrow import conform_batch, limit_batches
from uzo_connectors.base import ReadPlan, ReadRequest, ReadTask
from uzo_connectors.errors import ConfigError
from uzo_connectors.files import formats, predicate
from uzo_connectors.files.formats import DATASET_FORMATS, FileFormat
from uzo_connectors.files.http import blocked_cause
from uzo_connectors.files.paths import arrow_filesystem

if TYPE_CHECKING:
    from collections.abc import Iterator

    import fsspec

    from uzo_connectors.files.paths import FileEntry, FileStore

SPLIT_BYTES = 256 * 1024 * 1024  # Parquet files above this are split by row groups
BUCKET_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True)
class FormatSettings:
    format: FileFormat | None = None
    delimiter: str | None = None
    sheet: str | None = None
    hive: bool = True


@dataclass(frozen=True)
class ScanSpec:
    """Everything a task needs besides its files (shared by all tasks of a plan)."""

    fs: fsspec.AbstractFileSystem
    fmt: FileFormat
    settings: FormatSettings
    base: str
    file_schema: pa.Schema  # columns of the files plus partition columns
    partition_schema: pa.Schema
    out_schema: pa.Schema
    arrow_filter: pc.Expression | None
    batch_size: int
    serial: bool = False  # the filesystem is not thread-safe (one SFTP/FTP connection)
    arrow_fs: Any = None  # native pyarrow filesystem for the scan, when there is one

    def scan_columns(self) -> list[str]:
        return list(self.out_schema.names)


@dataclass(frozen=True)
class FileReadTask:
    spec: ScanSpec
    paths: tuple[str, ...]
    row_groups: tuple[int, ...] | None = None
    limit: int | None = None

    def __call__(self) -> Iterator[pa.RecordBatch]:
        batches = itertools.chain.from_iterable(self._scan(path) for path in self.paths)
        try:
            for batch in limit_batches(batches, self.limit):
                yield conform_batch(batch, self.spec.out_schema)
        except Exception as exc:
            # an http(s) hop refused by the SSRF guard, re-raised by fsspec as another error
            blocked = blocked_cause(exc)
            if blocked is None or blocked is exc:
                raise
            raise blocked from None

    def _scan(self, path: str) -> Iterator[pa.RecordBatch]:
        spec = self.spec
        if spec.fmt in DATASET_FORMATS:
            batches = self._scan_dataset(path)
        else:
            table = formats.read_whole(spec.fs, path, spec.fmt, spec.settings.sheet)
            table = _with_partitions(table, path, spec)
            batches = ds.dataset(table).to_batches(
                columns=spec.scan_columns(), filter=spec.arrow_filter, batch_size=spec.batch_size
            )
        yield from batches

    def _scan_dataset(self, path: str) -> Iterator[pa.RecordBatch]:
        spec = self.spec
        partitioning = (
            ds.partitioning(spec.partition_schema, flavor="hive")
            if len(spec.partition_schema)
            else None
        )
        dataset = ds.dataset(
            [path],
            schema=spec.file_schema,
            format=formats.dataset_format(spec.fmt, spec.settings.delimiter),
            filesystem=arrow_filesystem(spec.fs, spec.serial, spec.arrow_fs),
            partitioning=partitioning,
            partition_base_dir=spec.base,
        )
        options: dict[str, Any] = {
            "columns": spec.scan_columns(),
            "filter": spec.arrow_filter,
            "batch_size": spec.batch_size,
        }
        if self.row_groups is None:
            return iter(dataset.to_batches(**options))
        fragment = next(iter(dataset.get_fragments()))
        subset = fragment.subset(row_group_ids=list(self.row_groups))
        return iter(
            ds.Scanner.from_fragment(subset, schema=spec.file_schema, **options).to_batches()
        )


def _partition_values(path: str, base: str) -> dict[str, str]:
    rel = path[len(base.rstrip("/")) + 1 :] if base and path.startswith(base) else path
    values = {}
    for part in rel.split("/")[:-1]:
        key, sep, value = part.partition("=")
        if sep and key:
            values[unquote(key)] = unquote(value)
    return values


def _infer_type(values: list[str]) -> pa.DataType:
    for caster, arrow_type in ((int, pa.int64()), (float, pa.float64())):
        try:
            for value in values:
                caster(value)
        except ValueError:
            continue
        return arrow_type
    return pa.string()


def partition_schema(paths: list[str], base: str) -> pa.Schema:
    """Hive partition columns (``key=value`` directories) with types inferred from values."""
    found: dict[str, list[str]] = {}
    for path in paths:
        for key, value in _partition_values(path, base).items():
            found.setdefault(key, []).append(value)
    return pa.schema([pa.field(k, _infer_type(v)) for k, v in found.items()])


def _with_partitions(table: pa.Table, path: str, spec: ScanSpec) -> pa.Table:
    values = _partition_values(path, spec.base)
    for f in spec.partition_schema:
        if f.name in table.column_names:
            continue
        raw = values.get(f.name)
        scalar = pa.scalar(raw, pa.string()).cast(f.type) if raw is not None else None
        table = table.append_column(f, pa.array([scalar] * table.num_rows, f.type))
    return table.select(spec.file_schema.names) if table.num_columns else table


def _file_schema(
    store: FileStore, entries: list[FileEntry], base: str, settings: FormatSettings, fmt: FileFormat
) -> tuple[pa.Schema, pa.Schema]:
    first = formats.schema_of(
        store.fs,
        entries[0].path,
        fmt,
        settings.delimiter,
        settings.sheet,
        store.serial,
        store.arrow_fs,
    )
    parts = partition_schema([e.path for e in entries], base) if settings.hive else pa.schema([])
    extra = [f for f in parts if f.name not in first.names]
    return pa.schema([*first, *extra]), pa.schema(extra)


def resolve_format(
    entries: list[FileEntry], settings: FormatSettings
) -> tuple[FileFormat, list[FileEntry]]:
    if settings.format is not None:
        return settings.format, entries
    fmt = next((f for f in (formats.format_of(e.path) for e in entries) if f is not None), None)
    if fmt is None:
        raise ConfigError(
            "cannot tell the file format from the file names: set `format` in the config"
        )
    return fmt, [e for e in entries if formats.format_of(e.path) is fmt]


def dataset_schema(store: FileStore, dataset: str, settings: FormatSettings) -> pa.Schema:
    entries, base = store.expand(dataset)
    fmt, entries = resolve_format(entries, settings)
    return _file_schema(store, entries, base, settings, fmt)[0]


def _filters(request: ReadRequest, schema: pa.Schema) -> tuple[pc.Expression | None, bool]:
    """The scan's Arrow filter, and whether it applies the whole predicate."""
    arrow_filter: pc.Expression | None = None
    complete = True
    if request.predicate:
        unknown = predicate.columns_of(request.predicate) - set(schema.names)
        if unknown:
            raise ConfigError(f"predicate uses unknown column(s): {', '.join(sorted(unknown))}")
        arrow_filter, complete = predicate.to_arrow(request.predicate, schema)
    inc = request.incremental
    if inc is not None and inc.after is not None:
        if inc.column not in schema.names:
            raise ConfigError(f"incremental column {inc.column!r} is not in the dataset")
        after = pa.scalar(inc.after).cast(schema.field(inc.column).type)
        cond = pc.field(inc.column) > after
        arrow_filter = cond if arrow_filter is None else arrow_filter & cond
    return arrow_filter, complete


def _parquet_buckets(
    fs: fsspec.AbstractFileSystem, path: str, bucket_bytes: int
) -> list[tuple[int, ...]]:
    import pyarrow.parquet as pq

    with fs.open(path, "rb") as fh:
        meta = pq.ParquetFile(fh).metadata
    buckets: list[tuple[int, ...]] = []
    current: list[int] = []
    size = 0
    for i in range(meta.num_row_groups):
        current.append(i)
        size += meta.row_group(i).total_byte_size
        if size >= bucket_bytes:
            buckets.append(tuple(current))
            current, size = [], 0
    if current:
        buckets.append(tuple(current))
    return buckets


def _high_water_mark(spec: ScanSpec, paths: tuple[str, ...], column: str) -> Any:
    """The greatest value of ``column`` among the rows the read will return (filters applied)."""
    probe = dataclasses.replace(spec, out_schema=pa.schema([spec.file_schema.field(column)]))
    best: Any = None
    for batch in FileReadTask(probe, paths)():
        value = pc.max(batch.column(column)).as_py()
        if value is not None and (best is None or value > best):
            best = value
    return best


def plan_read(store: FileStore, request: ReadRequest, settings: FormatSettings) -> ReadPlan:
    store.refresh()
    entries, base = store.expand(request.dataset)
    fmt, entries = resolve_format(entries, settings)
    file_schema, parts = _file_schema(store, entries, base, settings, fmt)
    if request.columns is not None:
        unknown = [c for c in request.columns if c not in file_schema.names]
        if unknown:
            raise ConfigError(f"unknown column(s) {', '.join(unknown)} in {request.dataset!r}")
        out_schema = pa.schema([file_schema.field(c) for c in request.columns])
    else:
        out_schema = file_schema
    arrow_filter, complete = _filters(request, file_schema)
    spec = ScanSpec(
        fs=store.fs,
        fmt=fmt,
        settings=settings,
        base=base,
        file_schema=file_schema,
        partition_schema=parts,
        out_schema=out_schema,
        arrow_filter=arrow_filter,
        batch_size=request.batch_size,
        serial=store.serial,
        arrow_fs=store.arrow_fs,
    )
    mark = None
    if request.incremental is not None and request.limit is None:
        # the mark is taken first, and the tasks read nothing above it, so rows written
        # meanwhile are left for the next read instead of being read twice
        column = request.incremental.column
        if column not in file_schema.names:
            raise ConfigError(f"incremental column {column!r} is not in the dataset")
        mark = _high_water_mark(spec, tuple(e.path for e in entries), column)
        if mark is not None:
            bound = pc.field(column) <= pa.scalar(mark, type=file_schema.field(column).type)
            spec = dataclasses.replace(
                spec, arrow_filter=bound if arrow_filter is None else arrow_filter & bound
            )
    # the limit counts rows that pass the predicate: the caller applies both, or neither
    limit = request.limit if complete else None
    pushed = {"limit"} if limit is not None else set()
    if request.columns is not None:
        pushed.add("projection")
    if request.predicate and complete:
        pushed.add("predicate")
    paths = tuple(e.path for e in entries)
    total = sum(e.size or 0 for e in entries) or None
    if request.limit is not None:
        # A preview: one task walks the files in order (and stops at a pushed limit).
        task = FileReadTask(spec, paths, limit=limit)
        tasks = [ReadTask(task, out_schema, estimated_bytes=total, description=request.dataset)]
        return ReadPlan(out_schema, tuple(tasks), frozenset(pushed), high_water_mark=mark)
    split = int(request.options.get("split_bytes", SPLIT_BYTES))
    bucket = int(request.options.get("bucket_bytes", BUCKET_BYTES))
    tasks = []
    for entry in entries:
        size = entry.size
        if fmt is FileFormat.PARQUET and size is not None and size > split:
            for groups in _parquet_buckets(store.fs, entry.path, bucket):
                task = FileReadTask(spec, (entry.path,), row_groups=groups)
                desc = f"{store.relative(entry.path)} row groups {groups[0]}-{groups[-1]}"
                tasks.append(ReadTask(task, out_schema, description=desc))
            continue
        tasks.append(
            ReadTask(
                FileReadTask(spec, (entry.path,)),
                out_schema,
                estimated_bytes=size,
                description=store.relative(entry.path),
            )
        )
    return ReadPlan(out_schema, tuple(tasks), frozenset(pushed), high_water_mark=mark)
