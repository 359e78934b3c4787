"""Where a connector's files live: a filesystem plus a root nothing may escape.

Dataset names are paths relative to the root (``sales/2024.csv``), glob
patterns (``sales/*.csv``) or directories (read recursively; hive-style
``key=value`` directories become columns). Absolute names and ``..`` are
refused; for the local filesystem the resolved real path (symlinks followed)
must stay under the root too. Files and directories whose name starts with
``.`` or ``_`` are ignored (staging files, ``_SUCCESS`` markers).
"""

from __future__ import annotations

import functools
import os
import posixpath
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from uzo_connectors.errors import ConfigError, DatasetNotFoundError

if TYPE_CHECKING:
    import fsspec
    import pyarrow.fs as pafs

GLOB_CHARS = frozenset("*?[")


def is_hidden(relative: str) -> bool:
    return any(part.startswith((".", "_")) for part in relative.split("/") if part)


def arrow_filesystem(
    fs: fsspec.AbstractFileSystem, serial: bool = False, native: Any = None
) -> pafs.FileSystem:
    """The pyarrow filesystem for an fsspec one (native for local files).

    ``serial``: every call and every read goes through one lock, for filesystems
    that multiplex one connection and are not thread-safe (paramiko SFTP,
    ftplib), since Arrow scans read from several threads.
    """
    import pyarrow.fs as pafs
    from fsspec.implementations.local import LocalFileSystem

    if native is not None:
        return native
    if isinstance(fs, LocalFileSystem):
        return pafs.LocalFileSystem()
    if serial:
        return pafs.PyFileSystem(_serial_handler()(fs))
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs))


@functools.cache
def _serial_handler() -> type[Any]:
    import pyarrow as pa
    import pyarrow.fs as pafs

    class SerialHandler(pafs.FSSpecHandler):  # type: ignore[misc]
        def __init__(self, fs: fsspec.AbstractFileSystem) -> None:
            super().__init__(fs)
            self.lock = threading.RLock()

        def open_input_stream(self, path: str) -> Any:
            return self.open_input_file(path)

        def open_input_file(self, path: str) -> Any:
            # The whole file is fetched under the lock: a remote file handle read
            # from Arrow's threads (and closed by their finalizers) races on the
            # one connection. So an SFTP/FTP read task holds one file in memory.
            with self.lock:
                if not self.fs.isfile(path):
                    raise FileNotFoundError(path)
                data = self.fs.cat_file(path)
            return pa.BufferReader(data)

    def locked(name: str) -> Any:
        method = getattr(pafs.FSSpecHandler, name)

        def call(self: Any, *args: Any) -> Any:
            with self.lock:
                return method(self, *args)

        return call

    for name in ("get_file_info", "get_file_info_selector", "normalize_path"):
        setattr(SerialHandler, name, locked(name))
    return SerialHandler


@dataclass(frozen=True)
class FileEntry:
    path: str  # full path in the filesystem
    size: int | None


@dataclass(frozen=True)
class FileStore:
    """A filesystem and the root directory (protocol stripped) the connector works under."""

    fs: fsspec.AbstractFileSystem
    root: str
    local: bool = False
    label: str = ""  # shown in messages, e.g. "s3://bucket/prefix"
    renames: bool = False  # the filesystem renames files and directories in place (SFTP, FTP)
    serial: bool = False  # one connection that is not thread-safe: serialise Arrow's reads
    arrow_fs: Any = None  # a native pyarrow filesystem for reads (S3), else fsspec is wrapped

    def resolve(self, dataset: str) -> str:
        """The full path for a dataset name; refuses names that leave the root."""
        name = dataset.replace("\\", "/").strip()
        if not name or name in {".", "/"}:
            return self.root
        if name.startswith("/") or "://" in name or (len(name) > 1 and name[1] == ":"):
            raise ConfigError(f"dataset {dataset!r} must be a path relative to the root")
        normalized = posixpath.normpath(name)
        if normalized == ".." or normalized.startswith("../"):
            raise ConfigError(f"dataset {dataset!r} leaves the root directory")
        full = posixpath.join(self.root, normalized) if self.root else normalized
        if self.local:
            real_root = os.path.realpath(self.root)
            real = os.path.realpath(full)
            if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
                raise ConfigError(f"dataset {dataset!r} leaves the root directory")
        return full

    def relative(self, path: str) -> str:
        root = self.root.rstrip("/")
        if root and path.startswith(root + "/"):
            return path[len(root) + 1 :]
        return path.lstrip("/")

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(path))

    def is_dir(self, path: str) -> bool:
        return bool(self.fs.isdir(path))

    def move(self, src: str, dst: str) -> None:
        """Move one file: a rename where the filesystem has one, else copy + delete.

        Object stores are copied explicitly: some emulators and stores lack a native
        move (gcsfs's ``moveTo`` is retried for half a minute before it falls back).
        """
        if self.local or self.renames:
            self.fs.mv(src, dst)
        else:
            self.fs.cp_file(src, dst)
            self.fs.rm_file(src)

    def move_tree(self, src: str, dst: str) -> None:
        """Move a directory to a path that does not exist yet."""
        if self.local or self.renames:
            self.fs.mv(src, dst)
            return
        base = src.rstrip("/")
        for path in self.fs.find(base):
            if path.rstrip("/") == base:
                continue
            dest = posixpath.join(dst, path[len(base) + 1 :])
            self.fs.cp_file(path, dest)
        if self.fs.exists(base):
            self.fs.rm(base, recursive=True)

    def refresh(self) -> None:
        self.fs.invalidate_cache()

    def find(self, base: str) -> list[FileEntry]:
        """Visible files below ``base`` (recursive), sorted by path."""
        found: dict[str, Any] = self.fs.find(base, detail=True)
        entries = []
        for path, info in found.items():
            rel = path[len(base.rstrip("/")) + 1 :] if path.startswith(base.rstrip("/")) else path
            if info.get("type") == "directory" or is_hidden(rel):
                continue
            entries.append(FileEntry(path=_strip(path), size=info.get("size")))
        return sorted(entries, key=lambda e: e.path)

    def expand(self, dataset: str) -> tuple[list[FileEntry], str]:
        """The files a dataset name denotes, and the base directory for partition columns."""
        path = self.resolve(dataset)
        if GLOB_CHARS & set(dataset):
            base = _glob_base(path)
            found: dict[str, Any] = self.fs.glob(path, detail=True)
            entries = [
                FileEntry(path=_strip(p), size=info.get("size"))
                for p, info in sorted(found.items())
                if info.get("type") != "directory" and not is_hidden(self.relative(_strip(p)))
            ]
            if not entries:
                raise DatasetNotFoundError(f"no file matches {dataset!r}")
            return entries, base
        if self.is_dir(path):
            entries = self.find(path)
            if not entries:
                raise DatasetNotFoundError(f"directory {dataset!r} holds no files")
            return entries, path
        try:
            info: dict[str, Any] = self.fs.info(path)
        except FileNotFoundError:
            raise DatasetNotFoundError(f"{dataset!r} does not exist under {self.label}") from None
        return [FileEntry(path=path, size=info.get("size"))], posixpath.dirname(path)


def _strip(path: str) -> str:
    return path.rstrip("/")


def _glob_base(pattern: str) -> str:
    parts = []
    for part in pattern.split("/"):
        if GLOB_CHARS & set(part):
            break
        parts.append(part)
    return "/".join(parts)
