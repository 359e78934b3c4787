"""Database files (SQLite, DuckDB): a path confined to its owner's directories.

Where a relative path resolves depends on who runs the connector:

- the API (``ConnectorContext.local_roots`` is a tuple: the subscription's own
  directories, the first one the tenant's own): against that first directory,
  and the file must lie inside one of them. ``UZO_CONNECTORS_DATABASE_ROOT`` is
  ignored there: it is one directory for the whole server, so a tenant would
  reach every other tenant's files through it;
- the operator's own CLI (``local_roots`` is None): against the database root,
  ``UZO_CONNECTORS_DATABASE_ROOT`` (built on demand, never at import); with no
  root configured, file databases are refused.

Paths are resolved (symlinks followed) before the check. A file a connector
creates is readable by the server's user only (0600).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from uzo_connectors.errors import ConfigError
from uzo_connectors.settings import UzoSettings

if TYPE_CHECKING:
    from collections.abc import Callable


class DatabaseFileSettings(UzoSettings):
    """Where the operator's own runs find SQLite and DuckDB files."""

    model_config = SettingsConfigDict(env_prefix="UZO_CONNECTORS_", extra="ignore", frozen=True)

    database_root: Path | None = Field(
        default=None,
        description="Directory of the `sqlite`/`duckdb` files of the operator's own runs "
        "(the CLI); tenants use their own files directory. Unset: file databases are refused "
        "there.",
    )


def _inside(target: Path, base: Path) -> bool:
    return target == base or base in target.parents


def resolve_database_path(
    path: str, root: Path | None = None, local_roots: tuple[str, ...] | None = None
) -> Path:
    """``path`` resolved inside its owner's directories (see the module); else ConfigError."""
    if not path or "\x00" in path or path.startswith(("file:", ":memory:")):
        raise ConfigError("path: give a database file path inside the database root")
    if local_roots is not None:
        if not local_roots:
            raise ConfigError("path: this server allows no local files")
        bases = [Path(r).expanduser().resolve() for r in local_roots]
        target = (bases[0] / path).resolve()
        if not any(_inside(target, base) for base in bases):
            raise ConfigError(
                f"path: {path!r} is outside the directories this server allows (the "
                "subscription's own directory and the shared directories it opted into)"
            )
    else:
        if root is None:
            root = DatabaseFileSettings().database_root
        if root is None:
            raise ConfigError(
                "path: database files are disabled; an administrator enables them by setting "
                "UZO_CONNECTORS_DATABASE_ROOT to the directory that holds them"
            )
        base = root.expanduser().resolve()
        target = (base / path).resolve()
        if not _inside(target, base):
            raise ConfigError(f"path: {path!r} is outside the database root")
        bases = [base]
    if target in bases or target.is_dir():
        raise ConfigError(f"path: {path!r} is a directory, not a database file")
    return target


def create_private(path: Path, initialise: Callable[[Path], None] | None = None) -> None:
    """Create the database file ``path`` (mode 0600) unless it exists.

    The file is made in a private (0700) directory next to it and linked into place,
    so it never exists with wider permissions, whatever the umask. ``initialise``
    writes an empty database at the path it is given (DuckDB refuses an empty file;
    SQLite takes one as a new database, so it needs none). If someone else created
    the file meanwhile, theirs is kept.
    """
    if path.exists():
        return
    if not path.parent.is_dir():
        raise ConfigError(f"path: the directory of {path.name!r} does not exist")
    staging = Path(tempfile.mkdtemp(prefix=".uzo-new-", dir=path.parent))
    try:
        fresh = staging / path.name
        if initialise is None:
            os.close(os.open(fresh, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        else:
            initialise(fresh)
        fresh.chmod(0o600)
        with contextlib.suppress(FileExistsError):  # created meanwhile: keep theirs
            os.link(fresh, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
