"""File formats: detection, reading a file as Arrow, and streaming writers.

Parquet, Arrow IPC/Feather, CSV, TSV and NDJSON are read through
``pyarrow.dataset`` (projection and predicate pushdown, streaming batches).
JSON arrays and Excel workbooks have no streaming reader: they are read whole
with Polars (fine for the sizes people keep in those formats).
"""

from __future__ import annotations

import enum
import io
import posixpath
from typing import TYPE_CHECKING, Any, BinaryIO

import pyarrow as pa
import pyarrow.dataset as ds

from uzo_connectors.arrow import from_polars, to_polars
from uzo_connectors.errors import ConfigError
from uzo_connectors.registry import import_optional

if TYPE_CHECKING:
    import fsspec


class FileFormat(enum.StrEnum):
    CSV = "csv"
    TSV = "tsv"
    JSON = "json"  # one JSON array of objects
    NDJSON = "ndjson"  # one JSON object per line
    PARQUET = "parquet"
    IPC = "ipc"  # Arrow IPC file / Feather v2
    EXCEL = "excel"  # xlsx


EXTENSIONS: dict[str, FileFormat] = {
    ".csv": FileFormat.CSV,
    ".tsv": FileFormat.TSV,
    ".tab": FileFormat.TSV,
    ".json": FileFormat.JSON,
    ".ndjson": FileFormat.NDJSON,
    ".jsonl": FileFormat.NDJSON,
    ".parquet": FileFormat.PARQUET,
    ".pq": FileFormat.PARQUET,
    ".arrow": FileFormat.IPC,
    ".feather": FileFormat.IPC,
    ".ipc": FileFormat.IPC,
    ".xlsx": FileFormat.EXCEL,
}

DEFAULT_EXTENSION: dict[FileFormat, str] = {
    FileFormat.CSV: ".csv",
    FileFormat.TSV: ".tsv",
    FileFormat.JSON: ".json",
    FileFormat.NDJSON: ".ndjson",
    FileFormat.PARQUET: ".parquet",
    FileFormat.IPC: ".arrow",
    FileFormat.EXCEL: ".xlsx",
}

# Formats pyarrow.dataset scans (streaming, with pushdown).
DATASET_FORMATS = frozenset(
    {FileFormat.CSV, FileFormat.TSV, FileFormat.NDJSON, FileFormat.PARQUET, FileFormat.IPC}
)


def format_of(path: str) -> FileFormat | None:
    """The format a file name implies, or None."""
    return EXTENSIONS.get(posixpath.splitext(path)[1].lower())


def dataset_format(fmt: FileFormat, delimiter: str | None = None) -> ds.FileFormat:
    import pyarrow.csv as pcsv

    if fmt is FileFormat.PARQUET:
        return ds.ParquetFileFormat()
    if fmt is FileFormat.IPC:
        return ds.IpcFileFormat()
    if fmt is FileFormat.NDJSON:
        return ds.JsonFileFormat()
    if fmt in (FileFormat.CSV, FileFormat.TSV):
        sep = delimiter or ("\t" if fmt is FileFormat.TSV else ",")
        return ds.CsvFileFormat(parse_options=pcsv.ParseOptions(delimiter=sep))
    raise ConfigError(f"format {fmt.value!r} is not scanned as a dataset")


def read_whole(
    fs: fsspec.AbstractFileSystem, path: str, fmt: FileFormat, sheet: str | None = None
) -> pa.Table:
    """Read a JSON-array or Excel file entirely (formats without a streaming reader)."""
    import polars as pl

    with fs.open(path, "rb") as fh:
        data = fh.read()
    if fmt is FileFormat.JSON:
        if not data.strip() or data.strip() == b"[]":
            return pa.table({})
        return from_polars(pl.read_json(io.BytesIO(data), infer_schema_length=None))
    if fmt is FileFormat.EXCEL:
        import_optional("fastexcel", "file (excel)")
        frame = pl.read_excel(io.BytesIO(data), sheet_name=sheet, engine="calamine")
        assert isinstance(frame, pl.DataFrame)
        return from_polars(frame)
    raise ConfigError(f"format {fmt.value!r} is read as a dataset")


def schema_of(
    fs: fsspec.AbstractFileSystem,
    path: str,
    fmt: FileFormat,
    delimiter: str | None = None,
    sheet: str | None = None,
    serial: bool = False,
    native: Any = None,
) -> pa.Schema:
    """The Arrow schema of one file (cheap for Parquet/IPC: only metadata is read)."""
    if fmt in DATASET_FORMATS:
        from uzo_connectors.files.paths import arrow_filesystem

        return ds.dataset(
            [path],
            filesystem=arrow_filesystem(fs, serial, native),
            format=dataset_format(fmt, delimiter),
        ).schema
    return read_whole(fs, path, fmt, sheet).schema


class Writer:
    """Writes record batches of one schema to a binary stream in one format."""

    def __init__(
        self, fh: BinaryIO, fmt: FileFormat, schema: pa.Schema, delimiter: str | None = None
    ) -> None:
        self._fh = fh
        self._fmt = fmt
        self._schema = schema
        self._buffer: list[pa.RecordBatch] = []
        self._writer: Any = None
        if fmt is FileFormat.PARQUET:
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(fh, schema)
        elif fmt is FileFormat.IPC:
            self._writer = pa.ipc.new_file(fh, schema)
        elif fmt in (FileFormat.CSV, FileFormat.TSV):
            import pyarrow.csv as pcsv

            sep = delimiter or ("\t" if fmt is FileFormat.TSV else ",")
            self._writer = pcsv.CSVWriter(
                fh, schema, write_options=pcsv.WriteOptions(delimiter=sep)
            )

    def write(self, batch: pa.RecordBatch) -> None:
        if self._writer is not None:
            self._writer.write_batch(batch)
        elif self._fmt is FileFormat.NDJSON:
            if batch.num_rows:
                to_polars(batch).write_ndjson(self._fh)
        else:  # JSON array, Excel: written whole at close
            self._buffer.append(batch)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            return
        if self._fmt is FileFormat.JSON:
            table = pa.Table.from_batches(self._buffer, schema=self._schema)
            if table.num_rows == 0:
                self._fh.write(b"[]")
            else:
                self._fh.write(to_polars(table).write_json().encode("utf-8"))
        elif self._fmt is FileFormat.EXCEL:
            _write_excel(self._fh, pa.Table.from_batches(self._buffer, schema=self._schema))


def _write_excel(fh: BinaryIO, table: pa.Table) -> None:
    openpyxl = import_optional("openpyxl", "file (excel)")
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Sheet1")
    sheet.append(table.column_names)
    for batch in table.to_batches():
        columns = [col.to_pylist() for col in batch.columns]
        for row in zip(*columns, strict=True):
            sheet.append(list(row))
    workbook.save(fh)
