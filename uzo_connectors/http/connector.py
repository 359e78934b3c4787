"""The declarative REST connector (type ``http``).

A config names a base URL, authentication and a list of resources; each resource
is a dataset: ``discover()`` lists them with schemas (declared, or inferred from
a sample), ``plan_read()`` plans one read task per resource streaming a record
batch per page, and a resource with ``write`` settings accepts rows as JSON (append).

Read options (``ReadRequest.options``): ``params`` overrides the resource's
template values, e.g. ``{"params": {"owner": "apache", "repo": "arrow"}}``.
Incremental reads send ``ReadRequest.incremental.after`` as the resource's
``incremental.param``; the engine takes the new high-water mark from the
returned column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

from uzo_connectors.base import (
    BaseConnector,
    Capabilities,
    Category,
    DatasetInfo,
    ReadPlan,
    ReadTask,
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
from uzo_connectors.http.config import HttpConfig
from uzo_connectors.http.reader import ResourceRead, iter_records, open_client, sample_records
from uzo_connectors.http.records import declared_schema, infer_schema
from uzo_connectors.http.sink import HttpSink
from uzo_connectors.http.transport import HttpStatusError

if TYPE_CHECKING:
    from uzo_connectors.base import ConnectorContext, ReadRequest, Sink, WriteRequest
    from uzo_connectors.http.config import Resource
    from uzo_connectors.http.transport import SafeClient


class HttpConnector(BaseConnector[HttpConfig]):
    type_key: ClassVar[str] = "http"
    display_name: ClassVar[str] = "REST API"
    category: ClassVar[Category] = Category.API
    config_model: ClassVar[type[HttpConfig]] = HttpConfig
    capabilities: ClassVar[Capabilities] = Capabilities(
        read=True,
        write=True,
        write_modes=(WriteMode.APPEND,),
        projection_pushdown=True,
        limit_pushdown=True,
        incremental=True,
        discover=True,
    )
    description: ClassVar[str] = (
        "Any JSON REST API described declaratively: auth, resources, pagination, retries."
    )

    def __init__(self, config: HttpConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self._client: SafeClient | None = None

    @property
    def client(self) -> SafeClient:
        if self._client is None:
            self._client = open_client(self.config, self.context.endpoint_policy)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- metadata ---------------------------------------------------------------------

    def _resource(self, name: str) -> Resource:
        resource = self.config.resource(name)
        if resource is None:
            known = ", ".join(r.name for r in self.config.resources) or "none"
            raise DatasetNotFoundError(f"no resource named {name!r} (declared: {known})")
        return resource

    def _schema(self, resource: Resource, values: dict[str, Any], watermark: Any) -> pa.Schema:
        if resource.columns is not None:
            return declared_schema(resource.columns)
        sample = sample_records(self.config, self.client, resource, values, watermark)
        if not sample and watermark is not None:  # nothing new: infer from the full data
            sample = sample_records(self.config, self.client, resource, values)
        return infer_schema(sample)

    def test_connection(self) -> None:
        """One request; the remote side's failures are ConnectionTestError.

        UZO's own refusals (an internal endpoint, a redirect or link to one, a config
        mistake) propagate as they are: they are not a failed connection but an input
        error, which the API answers with 422.
        """
        sources = [r for r in self.config.resources if r.readable]
        try:
            if sources:  # one record of the first resource proves URL, auth and parsing
                next(iter_records(self.config, self.client, sources[0], limit=1), None)
            else:
                response = self.client.request("GET", self.config.base_url)
                if response.status_code in {401, 403} or response.status_code >= 500:
                    self.client.raise_for_status(response, f"GET {self.config.base_url}")
        except (BlockedEndpointError, ConfigError, MissingDependencyError):
            raise
        except HttpStatusError as exc:
            if exc.status in {401, 403}:
                raise ConnectionTestError(
                    f"{self.config.base_url} refused the credentials (HTTP {exc.status}): "
                    "check the auth settings"
                ) from None
            raise ConnectionTestError(str(exc)) from None
        except ConnectorError as exc:
            raise ConnectionTestError(f"{self.config.base_url}: {exc}") from None

    def discover(self) -> list[DatasetInfo]:
        infos = []
        for resource in self.config.resources:
            if not resource.readable:
                schema = declared_schema(resource.columns) if resource.columns else None
            else:
                schema = self._schema(resource, {}, None)
            infos.append(DatasetInfo(name=resource.name, kind="endpoint", schema=schema))
        return infos

    # --- reads and writes -------------------------------------------------------------

    def plan_read(self, request: ReadRequest) -> ReadPlan:
        resource = self._resource(request.dataset)
        if not resource.readable:
            raise ConfigError(f"resource {resource.name!r} is write-only (readable: false)")
        values = dict(request.options.get("params", {}))
        watermark = None
        if request.incremental is not None:
            inc = resource.incremental
            if inc is None:
                raise ConfigError(
                    f"resource {resource.name!r} declares no incremental settings"
                    " (incremental.field and incremental.param)"
                )
            if request.incremental.column != inc.field:
                raise ConfigError(
                    f"resource {resource.name!r} is incremental on {inc.field!r},"
                    f" not {request.incremental.column!r}"
                )
            watermark = request.incremental.after
        schema = self._schema(resource, values, watermark)
        if request.columns is not None:
            missing = [c for c in request.columns if c not in schema.names]
            if missing:
                raise ConfigError(
                    f"resource {resource.name!r} has no column(s) {', '.join(missing)}"
                    f" (columns: {', '.join(schema.names)})"
                )
            schema = pa.schema([schema.field(c) for c in request.columns])
        read = ResourceRead(
            config=self.config,
            policy=self.context.endpoint_policy,
            resource_name=resource.name,
            schema=schema,
            values=values,
            watermark=watermark,
            limit=request.limit,
            batch_size=request.batch_size,
        )
        task = ReadTask(read=read, schema=schema, description=f"{resource.method} {resource.path}")
        return ReadPlan(
            schema=schema, tasks=(task,), pushed_down=frozenset({"projection", "limit"})
        )

    def open_sink(self, request: WriteRequest) -> Sink:
        resource = self._resource(request.dataset)
        if resource.write is None:
            raise ConfigError(f"resource {resource.name!r} is read-only (it declares no write)")
        if request.mode != WriteMode.APPEND:
            raise ConfigError(
                f"the http connector only appends; {request.mode.value!r} is not supported"
            )
        values = dict(request.options.get("params", {}))
        return HttpSink(self.config, self.client, resource, request.schema, values)
