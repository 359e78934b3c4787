"""The ``file`` connector, and the base every filesystem-backed connector shares.

:class:`FilesystemConnector` implements discover/read/write on a
:class:`~uzo_connectors.files.paths.FileStore`; subclasses only say how to
build the filesystem (after checking their endpoints against the SSRF policy).
The ``file`` connector works on a local root directory or an http(s) URL (see
:mod:`uzo_connectors.files.roots`; other protocols have typed connectors).

Errors: UZO's own refusals (``ConfigError``, ``BlockedEndpointError``,
``MissingDependencyError``) propagate unwrapped from ``test_connection``,
``discover`` and ``plan_read``, even when fsspec re-raised them as another
exception; failures of the filesystem itself become ``ConnectionTestError``
(``DatasetNotFoundError`` for a missing file), never a bare ``OSError``.
"""

from __future__ import annotations

import abc
import os
import posixpath
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from uzo_connectors.base import (
    BaseConnector,
    Capabilities,
    Category,
    ConfigT,
    ConnectorConfig,
    DatasetInfo,
    WriteMode,
)
from uzo_connectors.errors import (
    BlockedEndpointError,
    ConfigError,
    ConnectionTestError,
    ConnectorError,
    DatasetNotFoundError,
    MissingDependencyError,
)
from uzo_connectors.files import formats, reader, roots
from uzo_connectors.files.formats import FileFormat  # noqa: TC001 - a pydantic field type
from uzo_connectors.files.http import blocked_cause, http_filesystem
from uzo_connectors.files.paths import FileStore
from uzo_connectors.files.reader import FormatSettings
from uzo_connectors.files.sink import FileSink

if TYPE_CHECKING:
    from uzo_connectors.base import ReadPlan, ReadRequest, Sink, WriteRequest

FILE_CAPABILITIES = Capabilities(
    read=True,
    write=True,
    write_modes=(
        WriteMode.APPEND,
        WriteMode.OVERWRITE,
        WriteMode.UPSERT,
        WriteMode.FAIL_IF_EXISTS,
    ),
    projection_pushdown=True,
    predicate_pushdown=True,
    limit_pushdown=True,
    incremental=True,
    discover=True,
)

# UZO's own refusals: they reach the caller as they are (the API answers 422).
_OWN_REFUSALS = (ConfigError, BlockedEndpointError, MissingDependencyError)


class FormatOptions(ConnectorConfig):
    """How files are parsed; shared by every filesystem-backed connector."""

    format: FileFormat | None = Field(
        default=None, description="File format; inferred from the file extension when empty."
    )
    csv_delimiter: str | None = Field(
        default=None, max_length=1, description="CSV delimiter (default ',' or tab for TSV)."
    )
    sheet: str | None = Field(default=None, description="Excel sheet name (default: the first).")
    partitioning: Literal["hive", "none"] = Field(
        default="hive", description="'hive': key=value directories become columns."
    )

    def format_settings(self) -> FormatSettings:
        return FormatSettings(
            format=self.format,
            delimiter=self.csv_delimiter,
            sheet=self.sheet,
            hive=self.partitioning == "hive",
        )


class FilesystemConnector(BaseConnector[ConfigT], abc.ABC):
    """discover/read/write for any connector whose data lives in files."""

    category: ClassVar[Category] = Category.CLOUD_STORAGE
    capabilities: ClassVar[Capabilities] = FILE_CAPABILITIES
    max_discover_files: ClassVar[int] = 1000

    _store_cache: FileStore | None = None

    @abc.abstractmethod
    def _make_store(self) -> FileStore:
        """Check endpoints against the SSRF policy, then build the filesystem."""

    def _settings(self) -> FormatSettings:
        config: Any = self.config
        assert isinstance(config, FormatOptions)
        return config.format_settings()

    def store(self) -> FileStore:
        if self._store_cache is None:
            self._store_cache = self._make_store()
        return self._store_cache

    def _secrets(self) -> list[str]:
        values = []
        for name in type(self.config).model_fields:
            value = getattr(self.config, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                values.append(value.get_secret_value())
        return values

    def safe_message(self, exc: BaseException) -> str:
        """``exc`` as text with every configured secret masked."""
        text = f"{type(exc).__name__}: {exc}"
        for secret in self._secrets():
            text = text.replace(secret, "********")
        return text

    def _as_connector_error(self, exc: Exception, doing: str) -> ConnectorError:
        """``exc`` as the error the caller should see (secrets masked)."""
        blocked = blocked_cause(exc)
        if blocked is not None:
            return blocked
        if isinstance(exc, (*_OWN_REFUSALS, ConnectionTestError, DatasetNotFoundError)):
            return exc
        if isinstance(exc, ConnectorError):
            return ConnectionTestError(str(exc))
        if isinstance(exc, PermissionError):
            return ConnectionTestError(f"{doing}: permission denied ({self.safe_message(exc)})")
        return ConnectionTestError(f"{doing}: {self.safe_message(exc)}")

    def _require_root(self, store: FileStore) -> None:
        """A local root must exist before it is read (a missing one is a config error)."""
        if not store.local:
            return
        if not os.path.exists(store.root):
            raise ConfigError(f"root: local root {store.label} does not exist")
        if not os.path.isdir(store.root):
            raise ConfigError(f"root: local root {store.label} is not a directory")

    def test_connection(self) -> None:
        try:
            store = self.store()
            self._require_root(store)
            self._probe(store)
        except Exception as exc:
            raise self._as_connector_error(exc, f"cannot reach {self.describe()}") from None

    def _probe(self, store: FileStore) -> None:
        """Reach the filesystem and check the root is there (raises on failure)."""
        store.refresh()
        if not store.is_dir(store.root):
            raise ConnectionTestError(f"{store.label} does not exist or is not a directory")
        store.fs.ls(store.root, detail=False)

    def describe(self) -> str:
        return self.type_key

    def discover(self) -> list[DatasetInfo]:
        try:
            store = self.store()
            self._require_root(store)
            store.refresh()
            entries: list[dict[str, Any]] = store.fs.ls(store.root, detail=True)
            return self._datasets(store, entries)
        except Exception as exc:
            raise self._as_connector_error(exc, f"cannot list {self.describe()}") from None

    def _datasets(self, store: FileStore, entries: list[dict[str, Any]]) -> list[DatasetInfo]:
        settings = self._settings()
        infos = []
        for info in sorted(entries, key=lambda i: str(i["name"]))[: self.max_discover_files]:
            path = str(info["name"]).rstrip("/")
            name = posixpath.basename(path)
            if name.startswith((".", "_")) or not store.listable(path):
                continue
            is_dir = info.get("type") == "directory"
            if not is_dir and settings.format is None and formats.format_of(name) is None:
                continue
            try:
                schema = reader.dataset_schema(store, name, settings)
            except (ConnectorError, OSError, ValueError) as exc:
                # one unreadable entry leaves its schema empty; a refusal fails the listing
                if blocked_cause(exc) is not None or isinstance(exc, MissingDependencyError):
                    raise
                schema = None
            infos.append(
                DatasetInfo(
                    name=name,
                    kind="file",
                    schema=schema,
                    size_bytes=None if is_dir else info.get("size"),
                )
            )
        return infos

    def plan_read(self, request: ReadRequest) -> ReadPlan:
        try:
            store = self.store()
            self._require_root(store)
            return reader.plan_read(store, request, self._settings())
        except (ConnectorError, OSError) as exc:
            if isinstance(exc, FileNotFoundError) and blocked_cause(exc) is None:
                raise DatasetNotFoundError(
                    f"{request.dataset!r} does not exist under {self.describe()}"
                ) from None
            raise self._as_connector_error(exc, f"cannot read {request.dataset!r}") from None

    def open_sink(self, request: WriteRequest) -> Sink:
        if request.mode not in self.capabilities.write_modes:
            raise ConfigError(f"{self.type_key!r} does not support write mode {request.mode}")
        return FileSink(self.store(), request, self._settings())

    def close(self) -> None:
        self._store_cache = None


class FileConfig(FormatOptions):
    endpoint_fields: ClassVar[frozenset[str]] = frozenset({"root"})

    root: str = Field(
        description="Base directory or an http(s) URL; datasets are paths below it. A relative"
        " directory is inside the subscription's own files directory. Object stores and file"
        " servers have their own connectors (s3, gcs, azure_blob, sftp, ftp)."
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="For http(s) roots only: block_size (bytes, 0 = stream), simple_links,"
        " same_scheme. Nothing else (headers and secrets: use the http connector).",
    )
    timeout: float = Field(
        default=30.0,
        gt=0,
        le=300,
        description="http(s) roots: seconds to connect, and to wait for each read.",
    )

    @field_validator("root")
    @classmethod
    def _check_root(cls, value: str) -> str:
        return roots.check_root(value)

    @field_validator("storage_options")
    @classmethod
    def _check_storage_options(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        root = info.data.get("root")
        if root is None:  # the root itself is invalid: that error is reported
            return value
        try:
            return roots.check_storage_options(root, value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None


class FileConnector(FilesystemConnector[FileConfig]):
    type_key: ClassVar[str] = "file"
    display_name: ClassVar[str] = "Files"
    category: ClassVar[Category] = Category.FILE
    config_model: ClassVar[type[ConnectorConfig]] = FileConfig
    description: ClassVar[str] = (
        "CSV, TSV, JSON, NDJSON, Parquet, Arrow IPC and Excel files in a local directory or"
        " under an http(s) URL; globs and hive-partitioned directories."
    )

    def describe(self) -> str:
        return self.config.root

    def open_sink(self, request: WriteRequest) -> Sink:
        if roots.root_kind(self.config.root) == "http":
            raise ConfigError("root: http(s) roots are read-only (write to a local root)")
        return super().open_sink(request)

    def _make_store(self) -> FileStore:
        import fsspec

        root = self.config.root
        policy = self.context.endpoint_policy
        if roots.root_kind(root) == "local":
            if not posixpath.isabs(root) and not self.context.local_roots:
                raise ConfigError(
                    f"root: {root!r} is relative, and only a subscription's connectors have a "
                    "files directory to resolve it in: give an absolute path"
                )
            local = self.context.check_local_path(root)
            return FileStore(fsspec.filesystem("file"), local, local=True, label=root)
        policy.check_url(root)  # early and clear; every request is checked again (pinned)
        fs = http_filesystem(policy, self.config.timeout, dict(self.config.storage_options))
        return FileStore(fs, root.rstrip("/"), label=root)
