"""Which connector types exist, and how to build one from a config dict.

Built-ins are declared as lazy ``"module:Class"`` strings and third-party
packages add theirs through the entry-point group ``uzo.connectors``; nothing
is imported until a type is used. A connector whose optional dependency is
missing fails on use with :class:`MissingDependencyError`, which names the
extra to install.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, get_args

from pydantic import BaseModel, SecretStr, ValidationError

from uzo_connectors.base import BaseConnector
from uzo_connectors.errors import ConfigError, ConnectorError, MissingDependencyError

if TYPE_CHECKING:
    from types import ModuleType

    from uzo_connectors.base import ConnectorConfig, ConnectorContext

ENTRY_POINT_GROUP = "uzo.connectors"

BUILTINS: dict[str, str] = {
    "file": "uzo_connectors.files.connector:FileConnector",
    "s3": "uzo_connectors.object_store.s3:S3Connector",
    "azure_blob": "uzo_connectors.object_store.azure:AzureBlobConnector",
    "gcs": "uzo_connectors.object_store.gcs:GCSConnector",
    "sftp": "uzo_connectors.object_store.sftp:SFTPConnector",
    "ftp": "uzo_connectors.object_store.ftp:FTPConnector",
    "postgres": "uzo_connectors.postgres.connector:PostgresConnector",
    "mysql": "uzo_connectors.mysql.connector:MySqlConnector",
    "sqlite": "uzo_connectors.sqlite.connector:SqliteConnector",
    "duckdb": "uzo_connectors.duckdb.connector:DuckDBConnector",
    "sqlalchemy": "uzo_connectors.sql.generic:SqlAlchemyConnector",
    "mongodb": "uzo_connectors.mongodb.connector:MongoDBConnector",
    "http": "uzo_connectors.http.connector:HttpConnector",
    "openai": "uzo_connectors.genai.connector:OpenAIConnector",
}

# Top-level import name of an optional dependency -> the extra that installs it.
EXTRAS: dict[str, str] = {
    "s3fs": "s3",
    "aiobotocore": "s3",
    "botocore": "s3",
    "adlfs": "azure",
    "azure": "azure",
    "gcsfs": "gcs",
    "sshfs": "sftp",
    "asyncssh": "sftp",
    "paramiko": "sftp",
    "pymysql": "mysql",
    "pymongo": "mongodb",
    "bson": "mongodb",
    "openpyxl": "excel",
    "fastexcel": "excel",
}


@dataclass(frozen=True)
class ConnectorTypeInfo:
    """What the API publishes about a connector type (for the config form and the catalog)."""

    name: str
    display_name: str
    category: str
    description: str
    config_schema: dict[str, Any]
    capabilities: dict[str, Any]
    secret_fields: tuple[str, ...] = field(default=())
    required_packages: tuple[str, ...] = field(default=())
    missing_packages: tuple[str, ...] = field(default=())

    @property
    def installed(self) -> bool:
        return not self.missing_packages

    @property
    def extra(self) -> str | None:
        """The extra that installs the missing packages (or all of them, if none is)."""
        for package in self.missing_packages or self.required_packages:
            if package in EXTRAS:
                return EXTRAS[package]
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "installed": self.installed,
            "extra": self.extra,
            "missing_packages": list(self.missing_packages),
            "display_name": self.display_name,
            "category": self.category,
            "description": self.description,
            "config_schema": self.config_schema,
            "capabilities": self.capabilities,
            "secret_fields": list(self.secret_fields),
        }


def missing_dependency(exc: ImportError, connector: str) -> MissingDependencyError | None:
    """The helpful error for an ImportError of a known optional package (else None)."""
    name = getattr(exc, "name", None) or ""
    top = name.split(".", 1)[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    return MissingDependencyError(top, extra, connector)


def import_optional(module: str, connector: str) -> ModuleType:
    """Import an optional dependency on use; a missing one names the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        error = missing_dependency(exc, connector)
        if error is None:
            raise
        raise error from None


@functools.cache
def _entry_points() -> dict[str, str]:
    found: dict[str, str] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def available_types() -> dict[str, str]:
    """Every known type key -> ``"module:Class"``. Built-ins win over entry points."""
    return {**_entry_points(), **BUILTINS}


def refresh() -> None:
    """Forget cached entry points and classes (after installing a plugin, in tests)."""
    _entry_points.cache_clear()
    _load.cache_clear()


@functools.cache
def _load(type_key: str, target: str) -> type[BaseConnector[Any]]:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        error = missing_dependency(exc, type_key)
        if error is None:
            raise ConnectorError(
                f"connector type {type_key!r} cannot be loaded from {module_name!r}: {exc}"
            ) from exc
        raise error from None
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, BaseConnector)):
        raise ConnectorError(f"{target!r} (connector type {type_key!r}) is not a BaseConnector")
    return cls


def get_connector_class(type_key: str) -> type[BaseConnector[Any]]:
    types = available_types()
    target = types.get(type_key)
    if target is None:
        close = difflib.get_close_matches(type_key, list(types), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ConnectorError(
            f"unknown connector type {type_key!r}{hint} (known: {', '.join(sorted(types))})"
        )
    return _load(type_key, target)


def _is_secret(annotation: object) -> bool:
    if annotation is SecretStr:
        return True
    return any(_is_secret(arg) for arg in get_args(annotation))


def _holds_secret(annotation: object, seen: frozenset[type] = frozenset()) -> bool:
    """SecretStr itself, or a model (or union of models) with a SecretStr somewhere inside."""
    if _is_secret(annotation):
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return False
        inner = seen | {annotation}
        return any(_holds_secret(f.annotation, inner) for f in annotation.model_fields.values())
    return any(_holds_secret(arg, seen) for arg in get_args(annotation))


def secret_fields(config_model: type[ConnectorConfig]) -> tuple[str, ...]:
    """Top-level fields holding a secret: SecretStr ones, and nested models containing one
    (an ``auth`` block, say), which are then encrypted and masked as a whole."""
    return tuple(
        name for name, info in config_model.model_fields.items() if _holds_secret(info.annotation)
    )


def config_schema(config_model: type[ConnectorConfig]) -> dict[str, Any]:
    """The config's JSON Schema with every secret field marked write-only password."""
    schema = config_model.model_json_schema()
    props = schema.get("properties", {})
    for name in secret_fields(config_model):
        info = config_model.model_fields[name]
        key = info.alias or name
        if key in props:
            props[key]["writeOnly"] = True
            if _is_secret(info.annotation):
                props[key]["format"] = "password"
    return schema


def type_info(type_key: str) -> ConnectorTypeInfo:
    cls = get_connector_class(type_key)
    return ConnectorTypeInfo(
        name=type_key,
        display_name=cls.display_name,
        category=str(cls.category),
        description=cls.description,
        config_schema=config_schema(cls.config_model),
        capabilities=cls.capabilities.model_dump(mode="json"),
        secret_fields=secret_fields(cls.config_model),
        required_packages=cls.required_packages,
        missing_packages=tuple(p for p in cls.required_packages if not _importable(p)),
    )


def _importable(package: str) -> bool:
    """Whether an import of ``package`` would find it (without importing it)."""
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def list_connector_types(*, skip_unavailable: bool = True) -> list[ConnectorTypeInfo]:
    """Metadata of every type whose code imports (missing extras are skipped by default)."""
    infos = []
    for key in sorted(available_types()):
        try:
            infos.append(type_info(key))
        except MissingDependencyError:
            if not skip_unavailable:
                raise
    return infos


def format_validation_error(exc: ValidationError, type_key: str) -> str:
    """A message naming each bad field, without echoing the (possibly secret) input."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(config)"
        parts.append(f"{loc}: {err['msg']}")
    return f"invalid {type_key!r} connector config: " + "; ".join(parts)


def validate_config(cls: type[BaseConnector[Any]], config: dict[str, Any]) -> ConnectorConfig:
    """Validate a config dict with the type's model; errors become ConfigError."""
    try:
        return cls.config_model.model_validate(config)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, cls.type_key)) from None


def create_connector(
    type_key: str, config: dict[str, Any], context: ConnectorContext
) -> BaseConnector[Any]:
    cls = get_connector_class(type_key)
    return cls(validate_config(cls, config), context)
