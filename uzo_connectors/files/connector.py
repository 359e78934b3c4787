"""The ``file`` connector, and the base every filesystem-backed connector shares.

:class:`FilesystemConnector` implements discover/read/write on a
:class:`~uzo_connectors.files.paths.FileStore`; subclasses only say how to
build the filesystem (after checking their endpoints against the SSRF policy).
The ``file`` connector works on a local root directory or any fsspec URL.
"""

from __future__ import annotations

import abc
import posixpath
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

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
    MissingDependencyError,
)
from uzo_connectors.files import formats, reader
from uzo_connectors.files.formats import FileFormat  # noqa: TC001 - a pydantic field type
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

# Protocols whose root URL names a network host the SSRF policy must check.
_HOST_PROTOCOLS = frozenset({"http", "https", "ftp", "sftp", "ssh", "webdav", "dav", "hdfs"})
# Protocols a tenant may name when the context restricts local access (the API).
_TENANT_PROTOCOLS = frozenset(
    {
        None,
        "file",
        "local",
        "s3",
        "s3a",
        "gs",
        "gcs",
        "abfs",
        "az",
        "sftp",
        "ssh",
        "ftp",
        "http",
        "https",
    }
)


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

    def test_connection(self) -> None:
        try:
            self._probe(self.store())
        except (ConnectionTestError, BlockedEndpointError, MissingDependencyError):
            raise
        except ConnectorError as exc:
            raise ConnectionTestError(str(exc)) from None
        except Exception as exc:
            raise ConnectionTestError(
                f"cannot reach {self.describe()}: {self.safe_message(exc)}"
            ) from None

    def _probe(self, store: FileStore) -> None:
        """Reach the filesystem and check the root is there (raises on failure)."""
        store.refresh()
        if not store.is_dir(store.root):
            raise ConnectionTestError(f"{store.label} does not exist or is not a directory")
        store.fs.ls(store.root, detail=False)

    def describe(self) -> str:
        return self.type_key

    def discover(self) -> list[DatasetInfo]:
        store = self.store()
        store.refresh()
        settings = self._settings()
        infos = []
        entries: list[dict[str, Any]] = store.fs.ls(store.root, detail=True)
        for info in sorted(entries, key=lambda i: str(i["name"]))[: self.max_discover_files]:
            path = str(info["name"]).rstrip("/")
            name = posixpath.basename(path)
            if name.startswith((".", "_")):
                continue
            is_dir = info.get("type") == "directory"
            if not is_dir and settings.format is None and formats.format_of(name) is None:
                continue
            try:
                schema = reader.dataset_schema(store, name, settings)
            except (ConnectorError, OSError, ValueError):
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
        return reader.plan_read(self.store(), request, self._settings())

    def open_sink(self, request: WriteRequest) -> Sink:
        if request.mode not in self.capabilities.write_modes:
            raise ConfigError(f"{self.type_key!r} does not support write mode {request.mode}")
        return FileSink(self.store(), request, self._settings())

    def close(self) -> None:
        self._store_cache = None


class FileConfig(FormatOptions):
    root: str = Field(
        description="Base directory (absolute local path) or fsspec URL, e.g. s3://bucket/prefix;"
        " datasets are paths below it."
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec options for URL roots (not for secrets: use a typed connector).",
    )

    @field_validator("root")
    @classmethod
    def _check_root(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("root must not be empty")
        if "://" not in value and not posixpath.isabs(value):
            raise ValueError("a local root must be an absolute path")
        return value


class FileConnector(FilesystemConnector[FileConfig]):
    type_key: ClassVar[str] = "file"
    display_name: ClassVar[str] = "Files"
    category: ClassVar[Category] = Category.FILE
    config_model: ClassVar[type[ConnectorConfig]] = FileConfig
    description: ClassVar[str] = (
        "CSV, TSV, JSON, NDJSON, Parquet, Arrow IPC and Excel files on a local directory or"
        " any fsspec URL; globs and hive-partitioned directories."
    )

    def describe(self) -> str:
        return self.config.root

    def _make_store(self) -> FileStore:
        import fsspec
        from fsspec.core import split_protocol

        root = self.config.root
        protocol, path = split_protocol(root)
        options = dict(self.config.storage_options)
        policy = self.context.endpoint_policy
        for key in ("endpoint_url", "host"):
            if isinstance(options.get(key), str):
                self._check_endpoint(options[key])
        client_kwargs = options.get("client_kwargs")
        if isinstance(client_kwargs, dict) and isinstance(client_kwargs.get("endpoint_url"), str):
            self._check_endpoint(client_kwargs["endpoint_url"])
        if protocol in _HOST_PROTOCOLS:
            policy.check_url(root, schemes=(protocol,))
        if self.context.local_roots is not None and (
            "::" in root or protocol not in _TENANT_PROTOCOLS
        ):
            raise BlockedEndpointError(
                f"root: protocol {protocol or 'file'!r} is not allowed here; use a local path "
                f"or one of {', '.join(sorted(p for p in _TENANT_PROTOCOLS if p))}"
            )
        if protocol in (None, "file", "local"):
            local = self.context.check_local_path(path)
            return FileStore(fsspec.filesystem("file"), local, local=True, label=root)
        fs = fsspec.filesystem(protocol, **options)
        return FileStore(fs, fs._strip_protocol(root).rstrip("/"), label=root)

    def _check_endpoint(self, value: str) -> None:
        policy = self.context.endpoint_policy
        if "://" in value:
            policy.check_url(value)
        else:
            policy.check_host(value)
