"""Writing files: stage, then swap, so an aborted or failed write changes nothing.

A dataset name with a known extension (``out/sales.parquet``) is one file; a
name without one (``out/sales``) is a directory of part files.

- append: a directory gets a new part file (streamed to a hidden staging name,
  renamed on commit); a single file is read, extended and rewritten via staging.
- overwrite: written to a staging file/directory next to the target, which
  replaces the target on commit (a rename on local disks; a copy on object
  stores, where the old target is kept until the new one is in place).
- fail_if_exists: refused when the target exists (checked at start and commit).
- upsert: read-merge-rewrite via staging; the new rows win on equal keys. The
  existing data is read into memory, so this is meant for small files; use a
  database connector for large merges.

Staging names start with ``.uzo-staging-`` so readers never see them. On a local
root, a staged file is fsynced, then renamed into place and the directory fsynced
(:mod:`uzo_connectors.files.staging`): a failure or a kill leaves the old target,
and the next write into a directory removes the staging entries that writers which
died left there (that module's docstring has the rule). Files (staging ones
included) are created 0600 and directories 0700 (:meth:`FileStore.open_write`,
:meth:`FileStore.makedirs`): tenants' data is readable by the server's user only.
Replacing a directory dataset takes two renames (the old one aside, the new one in):
between them the dataset is missing, and a kill there leaves the old data in a
``.uzo-staging-*.uzo-old`` directory next to it, which the next write into that
directory renames back.
"""

from __future__ import annotations

import contextlib
import posixpath
import uuid
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from uzo_connectors.arrow import conform_batch, from_polars, to_polars, unify_schemas
from uzo_connectors.base import ReadRequest, Sink, WriteMode, WriteRequest, WriteResult
from uzo_connectors.errors import ConfigError, DatasetNotFoundError, WriteError
from uzo_connectors.files import formats, staging
from uzo_connectors.files.formats import FileFormat
from uzo_connectors.files.reader import plan_read

if TYPE_CHECKING:
    from uzo_connectors.files.paths import FileStore
    from uzo_connectors.files.reader import FormatSettings


def _stage_name(path: str, suffix: str = "") -> str:
    parent, name = posixpath.split(path.rstrip("/"))
    return posixpath.join(parent, staging.staging_name(name, suffix))


class FileSink(Sink):
    def __init__(self, store: FileStore, request: WriteRequest, settings: FormatSettings) -> None:
        self._store = store
        self._request = request
        self._settings = settings
        self._target = store.resolve(request.dataset)
        self._single = formats.format_of(self._target) is not None
        fmt = formats.format_of(self._target) if self._single else None
        option = request.options.get("format")
        self._fmt = fmt or (FileFormat(option) if option else settings.format) or FileFormat.PARQUET
        if request.mode is WriteMode.UPSERT:
            if not request.keys:
                raise ConfigError("upsert needs key columns (WriteRequest.keys)")
            missing = set(request.keys) - set(request.schema.names)
            if missing:
                raise ConfigError(f"upsert key(s) not in the data: {', '.join(sorted(missing))}")
        store.refresh()
        if request.mode is WriteMode.FAIL_IF_EXISTS and self._target_exists():
            raise WriteError(f"{request.dataset!r} already exists (mode fail_if_exists)")
        # Rows go to memory when the existing data must be merged in at commit.
        self._merge = request.mode is WriteMode.UPSERT or (
            self._single and request.mode is WriteMode.APPEND
        )
        self._buffer: list[pa.RecordBatch] = []
        self._rows = 0
        self._staging: str | None = None
        self._final: str | None = None  # a new part file's name once committed
        self._file: str | None = None
        self._fh: Any = None
        self._writer: formats.Writer | None = None
        self._done = False

    # --- helpers ---------------------------------------------------------------------------

    def _target_exists(self) -> bool:
        if not self._store.exists(self._target):
            return False
        if self._single:
            return True
        return bool(self._store.find(self._target))

    def _part_name(self) -> str:
        return f"part-{uuid.uuid4().hex[:16]}{formats.DEFAULT_EXTENSION[self._fmt]}"

    def _open(self, schema: pa.Schema) -> None:
        if self._single:
            self._staging = _stage_name(self._target)
            self._file = self._staging
        elif self._request.mode is WriteMode.APPEND:
            self._final = posixpath.join(self._target, self._part_name())
            self._staging = _stage_name(self._final)
            self._file = self._staging
        else:
            self._staging = _stage_name(self._target)
            self._file = posixpath.join(self._staging, self._part_name())
        self._store.makedirs(posixpath.dirname(self._file))
        if self._store.local:  # the staging entries of writers that died (killed) go
            staging.sweep(posixpath.dirname(self._staging))
        self._fh = self._store.open_write(self._file)
        self._writer = formats.Writer(self._fh, self._fmt, schema, self._settings.delimiter)

    def _close_writer(self, durable: bool = False) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._fh is not None:
            if durable and self._store.local:
                staging.fsync_file(self._fh)  # on disk before it is renamed into place
            self._fh.close()
            self._fh = None

    def _existing(self) -> pa.Table | None:
        try:
            plan = plan_read(self._store, ReadRequest(self._request.dataset), self._settings)
        except DatasetNotFoundError:
            return None
        return pa.Table.from_batches([b for t in plan.tasks for b in t.read()], schema=plan.schema)

    def _merged(self) -> pa.Table:
        new = pa.Table.from_batches(self._buffer, schema=self._request.schema)
        old = self._existing()
        if old is None:
            return new
        schema = unify_schemas([old.schema, new.schema])
        tables = [old.cast(schema) if old.schema != schema else old, _conform(new, schema)]
        if self._request.mode is not WriteMode.UPSERT:
            return pa.concat_tables(tables)
        import polars as pl

        frame = pl.concat([to_polars(t) for t in tables], how="vertical_relaxed")
        frame = frame.unique(subset=list(self._request.keys), keep="last", maintain_order=True)
        return from_polars(frame).cast(schema)

    # --- Sink --------------------------------------------------------------------------------

    def write(self, batch: pa.RecordBatch) -> None:
        if self._done:
            raise WriteError("the write was already committed or aborted")
        batch = conform_batch(batch, self._request.schema)
        self._rows += batch.num_rows
        if self._merge:
            self._buffer.append(batch)
            return
        try:
            if self._writer is None:
                self._open(self._request.schema)
            assert self._writer is not None
            self._writer.write(batch)
        except Exception as exc:
            self.abort()
            raise WriteError(f"writing {self._request.dataset!r} failed: {exc}") from exc

    def commit(self) -> WriteResult:
        if self._done:
            raise WriteError("the write was already committed or aborted")
        try:
            rows = self._rows
            if self._merge:
                table = self._merged()
                self._open(table.schema)
                assert self._writer is not None
                for batch in table.to_batches():
                    self._writer.write(batch)
            elif self._writer is None:
                self._open(self._request.schema)  # an empty write still creates the target
            self._close_writer(durable=True)
            assert self._staging is not None
            assert self._file is not None
            size = self._store.fs.size(self._file)
            self._publish()
        except WriteError:
            self.abort()
            raise
        except Exception as exc:
            self.abort()
            raise WriteError(f"writing {self._request.dataset!r} failed: {exc}") from exc
        self._done = True
        return WriteResult(
            self._request.dataset, rows, bytes_written=size, schema=self._request.schema
        )

    def _publish(self) -> None:
        fs = self._store.fs
        assert self._staging is not None
        if self._request.mode is WriteMode.FAIL_IF_EXISTS and self._target_exists():
            raise WriteError(f"{self._request.dataset!r} already exists (mode fail_if_exists)")
        if self._single:
            if _is_ftp(fs) and fs.exists(self._target):
                fs.rm_file(self._target)  # FTP servers may refuse to rename over a file
            self._store.move(self._staging, self._target)
        elif self._request.mode is WriteMode.APPEND:
            assert self._final is not None
            self._store.move(self._staging, self._final)
        else:
            self._swap_directory()
        self._staging = None
        self._store.refresh()

    def _swap_directory(self) -> None:
        fs = self._store.fs
        assert self._staging is not None
        old: str | None = None
        if fs.exists(self._target):
            old = _stage_name(self._target, staging.OLD_SUFFIX)
            self._store.move_tree(self._target, old)
        try:
            self._store.move_tree(self._staging, self._target)
        except Exception:
            if old is not None:
                self._store.move_tree(old, self._target)
            raise
        if old is not None and fs.exists(old):
            fs.rm(old, recursive=True)

    def _discard(self, path: str) -> None:
        fs = self._store.fs
        self._store.refresh()
        if not fs.exists(path):
            return
        if path == self._file:  # a single staged file
            fs.rm_file(path)
        else:
            fs.rm(path, recursive=True)

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        with contextlib.suppress(Exception):
            self._close_writer()
        if self._staging is not None:
            self._discard(self._staging)
        self._staging = None
        self._buffer.clear()


def _is_ftp(fs: Any) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
    return "ftp" in protocols


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_batches(
        [conform_batch(b, schema) for b in table.to_batches()], schema=schema
    )
