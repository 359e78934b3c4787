"""Database files (SQLite, DuckDB): a path confined to the configured root directory.

The root is ``UZO_CONNECTORS_DATABASE_ROOT`` (built on demand, never at import);
with no root configured, file databases are refused. Paths are resolved
(symlinks followed) and must stay inside the root.
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from uzo_connectors.errors import ConfigError


class DatabaseFileSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="UZO_CONNECTORS_", extra="ignore", frozen=True)

    database_root: Path | None = None


def resolve_database_path(
    path: str, root: Path | None = None, local_roots: tuple[str, ...] | None = None
) -> Path:
    """``path`` (relative to the root, or absolute inside it), resolved; else ConfigError.

    When the caller restricts local access (``ConnectorContext.local_roots``, as the API
    does), the file must also lie inside one of those directories.
    """
    if root is None:
        root = DatabaseFileSettings().database_root
    if root is None and local_roots:
        root = Path(local_roots[0])
    if root is None:
        raise ConfigError(
            "path: database files are disabled; an administrator enables them by setting "
            "UZO_CONNECTORS_DATABASE_ROOT to the directory that holds them"
        )
    base = root.expanduser().resolve()
    if not path or "\x00" in path or path.startswith(("file:", ":memory:")):
        raise ConfigError("path: give a database file path inside the database root")
    target = (base / path).resolve()
    if target != base and base not in target.parents:
        raise ConfigError(f"path: {path!r} is outside the database root")
    if target == base or target.is_dir():
        raise ConfigError(f"path: {path!r} is a directory, not a database file")
    if local_roots is not None and not any(
        target == Path(r).resolve() or Path(r).resolve() in target.parents for r in local_roots
    ):
        raise ConfigError(f"path: {path!r} is outside the directories this server allows")
    return target
