"""Where a connector's files live: a filesystem plus a root nothing may escape.

Dataset names are paths relative to the root (``sales/2024.csv``), glob
patterns (``sales/*.csv``) or directories (read recursively; hive-style
``key=value`` directories become columns). Absolute names and ``..`` are
refused; for the local filesystem the resolved real path (symlinks followed)
must stay under the root too. Files and directories whose name starts with
``.`` or ``_`` are ignored (staging files, ``_SUCCESS`` markers).
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from uzo_connectors.errors import ConfigError, DatasetNotFoundError

if TYPE_CHECKING:
    import fsspec
    import pyarrow.fs as pafs

GLOB_CHARS = frozenset("*?[")


def is_hidden(relative: str) -> bool:
    return any(part.startswith((".", "_")) for part in relative.split("/") if part)


def arrow_filesystem(fs: fsspec.AbstractFileSystem) -> pafs.FileSystem:
    """The pyarrow filesystem for an fsspec one (native for local files)."""
    import pyarrow.fs as pafs
    from fsspec.implementations.local import LocalFileSystem

    if isinstance(fs, LocalFileSystem):
        return pafs.LocalFileSystem()
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs))


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
