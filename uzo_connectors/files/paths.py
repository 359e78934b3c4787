"""Where a connector's files live: a filesystem plus a root nothing may escape.

Dataset names are paths relative to the root (``sales/2024.csv``), glob
patterns (``sales/*.csv``) or directories (read recursively; hive-style
``key=value`` directories become columns). Absolute names and ``..`` are
refused. Files and directories whose name starts with ``.`` or ``_`` are
ignored (staging files, ``_SUCCESS`` markers).

On the local filesystem a symlink could lead anywhere, so every path a read,
glob, directory listing or write touches is resolved (realpath) and checked
against the real root: a dataset name that resolves outside is refused
(``ConfigError``); an entry found while listing a directory or matching a glob
that resolves outside, or is not a regular file (a FIFO would block a read), is
skipped and logged, so one planted link cannot expose a file outside the root
or fail a whole directory. Files a sink creates there are private to the
server's user: 0600 files (opened with ``O_EXCL | O_NOFOLLOW``), 0700 directories.
Moves on a local root are renames made durable (:func:`uzo_connectors.files.staging.replace`).
"""

from __future__ import annotations

import functools
import logging
import os
import posixpath
import stat
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from uzo_connectors.errors import ConfigError, DatasetNotFoundError
from uzo_connectors.files import staging

if TYPE_CHECKING:
    import fsspec
    import pyarrow.fs as pafs

GLOB_CHARS = frozenset("*?[")
FILE_MODE = staging.FILE_MODE  # files a sink writes on a local root
DIR_MODE = 0o700  # directories it creates there

log = logging.getLogger(__name__)


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
        if self.local and not self.inside_root(full):
            raise ConfigError(
                f"dataset {dataset!r} leaves the root directory (a symlink leads outside it)"
            )
        return full

    def inside_root(self, path: str) -> bool:
        """Whether ``path``, symlinks resolved, stays under the real root (always true for
        remote filesystems, which have no symlinks to follow)."""
        if not self.local:
            return True
        real_root = os.path.realpath(self.root)
        real = os.path.realpath(path)
        return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)

    def readable(self, path: str) -> bool:
        """For listings and globs: may this entry be read? On a local root only regular
        files whose real path is under the root; others are skipped (and logged)."""
        if not self.local:
            return True
        if not self.inside_root(path):
            log.warning("skipping %s: it resolves outside the root %s", path, self.root)
            return False
        if not os.path.isfile(path):
            log.warning("skipping %s: not a regular file", path)
            return False
        return True

    def listable(self, path: str) -> bool:
        """For discover: may this top-level entry be shown? Local entries that resolve
        outside the root are skipped (and logged)."""
        if self.local and not self.inside_root(path):
            log.warning("skipping %s: it resolves outside the root %s", path, self.root)
            return False
        return True

    def makedirs(self, path: str) -> None:
        """Create ``path`` and its missing parents (0700 on a local root)."""
        if not self.local:
            self.fs.makedirs(path, exist_ok=True)
            return
        missing = []
        current = os.path.abspath(path)
        while not os.path.isdir(current):
            missing.append(current)
            parent = os.path.dirname(current)
            if parent == current:
                break
            current = parent
        for directory in reversed(missing):
            try:
                os.mkdir(directory, DIR_MODE)
            except FileExistsError:
                if not os.path.isdir(directory):
                    raise
                continue
            os.chmod(directory, DIR_MODE)

    def open_write(self, path: str) -> Any:
        """A new file for writing (0600, never through an existing file or symlink, on a
        local root)."""
        if not self.local:
            return self.fs.open(path, "wb")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(path, flags, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
            return os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            raise

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
        if self.local:
            staging.replace(src, dst)  # one durable rename: the old file or the new one
        elif self.renames:
            self.fs.mv(src, dst)
        else:
            self.fs.cp_file(src, dst)
            self.fs.rm_file(src)

    def move_tree(self, src: str, dst: str) -> None:
        """Move a directory to a path that does not exist yet."""
        if self.local:
            if os.path.lexists(dst):  # a rename would replace an empty directory there
                raise FileExistsError(dst)
            staging.replace(src, dst)
            return
        if self.renames:
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
            if info.get("type") == "directory" or is_hidden(rel) or not self.readable(path):
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
                if info.get("type") != "directory"
                and not is_hidden(self.relative(_strip(p)))
                and self.readable(p)
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
        if self.local and not stat.S_ISREG(os.stat(path).st_mode):
            raise DatasetNotFoundError(f"{dataset!r} is not a regular file")
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
