"""The connector contract: configs, capabilities, read tasks and sinks.

A connector is declared by a pydantic config model (secret fields typed as
``SecretStr``) and a class implementing :class:`BaseConnector`. Reads are
planned as :class:`ReadTask` objects, each streaming Arrow record batches with
bounded memory; writes go through a :class:`Sink` (start/write/commit/abort), so
a failed write leaves the target as it was.
"""

from __future__ import annotations

import abc
import enum
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from uzo_connectors.errors import BlockedEndpointError, ConnectorError
from uzo_connectors.ssrf import EndpointPolicy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import pyarrow as pa


class Category(enum.StrEnum):
    DATABASE = "database"
    NOSQL = "nosql"
    FILE = "file"
    CLOUD_STORAGE = "cloud storage"
    API = "api"
    GENAI = "genai"


class WriteMode(enum.StrEnum):
    APPEND = "append"
    OVERWRITE = "overwrite"
    UPSERT = "upsert"  # merge on keys
    FAIL_IF_EXISTS = "fail_if_exists"


class ConnectorConfig(BaseModel):
    """Base of every connector config: unknown fields are errors.

    ``endpoint_fields`` names the fields that choose where the connector connects
    (host, port, URL, account, root directory...): changing one of them on a saved
    connector requires its secrets again, so a stored password is never sent to a
    server its owner did not choose for it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint_fields: ClassVar[frozenset[str]] = frozenset()


class Capabilities(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    read: bool = True
    write: bool = False
    write_modes: tuple[WriteMode, ...] = ()
    projection_pushdown: bool = False
    predicate_pushdown: bool = False
    limit_pushdown: bool = False
    incremental: bool = False
    discover: bool = True


@dataclass(frozen=True)
class DatasetInfo:
    """A table, file or collection the connector can read."""

    name: str
    kind: Literal["table", "view", "file", "collection", "endpoint"]
    schema: pa.Schema | None = None
    num_rows: int | None = None
    size_bytes: int | None = None


@dataclass(frozen=True)
class Incremental:
    """Read only rows whose ``column`` is greater than ``after`` (None: everything)."""

    column: str
    after: Any = None


@dataclass(frozen=True)
class ReadRequest:
    dataset: str
    columns: tuple[str, ...] | None = None  # projection
    predicate: str | None = None  # a SQL boolean expression over the dataset's columns
    limit: int | None = None
    incremental: Incremental | None = None
    batch_size: int = 65_536
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReadTask:
    """One independently executable part of a read (a file, a key range, a page range).

    ``read`` must be picklable: tasks may run in Ray workers.
    """

    read: Callable[[], Iterator[pa.RecordBatch]]
    schema: pa.Schema
    estimated_rows: int | None = None
    estimated_bytes: int | None = None
    description: str = ""


@dataclass(frozen=True)
class ReadPlan:
    schema: pa.Schema  # after projection
    tasks: tuple[ReadTask, ...]
    pushed_down: frozenset[str] = frozenset()  # subset of {"projection","predicate","limit"}
    # For an incremental read: the greatest watermark value the tasks return (they read
    # nothing beyond it), to pass as ``Incremental.after`` next time. None: nothing new, or
    # the source cannot tell before reading (then the caller takes the max of what it read).
    high_water_mark: Any = None


@dataclass(frozen=True)
class WriteRequest:
    dataset: str
    schema: pa.Schema
    mode: WriteMode = WriteMode.APPEND
    keys: tuple[str, ...] = ()  # required for upsert
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WriteResult:
    dataset: str
    rows_written: int
    bytes_written: int | None = None
    schema: pa.Schema | None = None


class Sink(abc.ABC):
    """A write in progress. ``commit`` makes it visible; ``abort`` leaves the target as it was."""

    @abc.abstractmethod
    def write(self, batch: pa.RecordBatch) -> None: ...

    @abc.abstractmethod
    def commit(self) -> WriteResult: ...

    @abc.abstractmethod
    def abort(self) -> None: ...

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.abort()


@dataclass(frozen=True)
class ConnectorContext:
    """What a connector gets from its caller besides its config."""

    endpoint_policy: EndpointPolicy
    temp_dir: str | None = None
    # Local directories a connector may touch. None: any (the operator's own CLI runs);
    # the API passes the subscription's own roots so a tenant never reaches the server's
    # files or another tenant's; an empty tuple: none at all (``locked_down``).
    local_roots: tuple[str, ...] | None = None
    # Connector types that may fall back on the server's own identity when the config
    # gives no credentials (instance metadata, environment variables, credential files,
    # SSH agent and default keys, managed identity). Empty by default: a connector then
    # authenticates only with what its config supplies ("*": every type).
    ambient_credentials: frozenset[str] = frozenset()

    @classmethod
    def locked_down(cls) -> ConnectorContext:
        """A context that allows nothing internal: no local directory at all (every local
        path is refused), no loopback or private address, no ambient credentials. The
        default of a caller that says nothing (``uzo_engine.plan.StepContext``)."""
        return cls(endpoint_policy=EndpointPolicy(), local_roots=())

    def scope(self) -> tuple[Any, ...]:
        """What this context lets a connector reach, as plain sorted data: two contexts
        with the same scope read the same things (a cache of what was read is keyed by it,
        so one subscription is never served what another's roots or policy gave)."""
        policy = self.endpoint_policy
        return (
            self.local_roots,
            (policy.allow_loopback, policy.allow_private, tuple(sorted(policy.allowed))),
            tuple(sorted(self.ambient_credentials)),
            self.temp_dir,
        )

    def allows_ambient(self, type_key: str) -> bool:
        return "*" in self.ambient_credentials or type_key in self.ambient_credentials

    def check_local_path(self, path: str) -> str:
        """The resolved path (symlinks followed), if inside an allowed root; else
        BlockedEndpointError. A relative path is relative to the first root (the
        subscription's own directory), or to the working directory when unrestricted."""
        if self.local_roots and not os.path.isabs(path):
            path = os.path.join(self.local_roots[0], path)
        resolved = os.path.realpath(path)
        if self.local_roots is None:
            return resolved
        for root in self.local_roots:
            base = os.path.realpath(root)
            if resolved == base or resolved.startswith(base.rstrip(os.sep) + os.sep):
                return resolved
        raise BlockedEndpointError(
            f"local path {path!r} is outside the directories this subscription may use (its "
            "own files directory, and shared directories an administrator gave it)"
        )


ConfigT = TypeVar("ConfigT", bound=ConnectorConfig)


class BaseConnector(abc.ABC, Generic[ConfigT]):
    """Every connector. Subclasses set the class attributes and implement the methods."""

    type_key: ClassVar[str]
    display_name: ClassVar[str]
    category: ClassVar[Category]
    config_model: ClassVar[type[ConnectorConfig]]
    capabilities: ClassVar[Capabilities]
    description: ClassVar[str] = ""
    #: Import names of the optional packages the type needs (checked, not imported, when
    #: the API lists types: a missing one is reported with the extra that installs it).
    required_packages: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: ConfigT, context: ConnectorContext) -> None:
        self.config = config
        self.context = context

    @abc.abstractmethod
    def test_connection(self) -> None:
        """Raise ConnectionTestError with a clear message (never a secret) if unusable."""

    @abc.abstractmethod
    def discover(self) -> list[DatasetInfo]: ...

    @abc.abstractmethod
    def plan_read(self, request: ReadRequest) -> ReadPlan: ...

    def open_sink(self, request: WriteRequest) -> Sink:
        raise ConnectorError(f"the {self.type_key!r} connector is read-only")

    @property
    def ambient_allowed(self) -> bool:
        """Whether this connector may use the server's ambient credentials (see the context)."""
        return self.context.allows_ambient(self.type_key)

    def close(self) -> None:
        """Release pooled resources (connections, clients)."""
