"""Reading a resource: building its requests, walking its pages, turning records into batches.

:class:`ResourceRead` is the picklable body of a read task: it carries the config,
the SSRF policy and the request, opens its own client where it runs (a Ray
worker, say) and streams one or more record batches per page.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from uzo_connectors.errors import ConfigError
from uzo_connectors.http.auth import build_authenticator
from uzo_connectors.http.config import ApiKeyAuth
from uzo_connectors.http.guards import same_origin
from uzo_connectors.http.pagination import iter_pages
from uzo_connectors.http.records import shape, to_batch
from uzo_connectors.http.templates import TemplateProblem, render, render_json
from uzo_connectors.http.transport import HttpRetry, SafeClient, scrub_url
from uzo_connectors.retry import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    import pyarrow as pa

    from uzo_connectors.http.config import HttpConfig, Resource
    from uzo_connectors.http.pagination import Fetch, Records
    from uzo_connectors.ssrf import EndpointPolicy


def open_client(config: HttpConfig, policy: EndpointPolicy) -> SafeClient:
    """A SafeClient configured from ``config`` (auth, retries, rate limit, TLS, redirects)."""
    r = config.retries
    auth = config.auth
    client = SafeClient(
        policy,
        timeout=config.timeout,
        verify=config.verify_tls,
        headers={"Accept": "application/json", **config.headers},
        retry=HttpRetry(
            RetryPolicy(r.max_attempts, r.backoff_base, r.backoff_max),
            statuses=frozenset(r.retry_statuses),
            max_retry_after=r.max_retry_after,
        ),
        rate_limit=config.rate_limit,
        max_redirects=config.max_redirects,
        secrets=config.secrets(),
        sensitive_params=(auth.name,) if isinstance(auth, ApiKeyAuth) else (),
        trusted_origin=config.base_url,
    )
    client.auth = build_authenticator(auth, client)
    return client


def _watermark_text(value: Any) -> str:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _render(resource: Resource, template: str, values: Mapping[str, Any], *, field: str) -> str:
    try:
        return render(template, values, url_path=field == "path")
    except TemplateProblem as exc:
        raise ConfigError(
            f"resource {resource.name!r}: {field} template: {exc} (template values come from"
            " the resource's params and the read options' params)"
        ) from None


def resource_url(
    config: HttpConfig, resource: Resource, values: Mapping[str, Any], template: str | None = None
) -> str:
    """The resource's absolute URL (or ``template``'s), path parameters URL-quoted.

    The result always stays on ``base_url``'s origin (scheme, host, port): values are
    quoted and paths validated, and this is checked again on the final URL, so nothing
    like ``@evil.example/`` or ``//evil.example`` can move a request (and its credentials)
    to another host.
    """
    path = _render(resource, (template or resource.path).lstrip("/"), values, field="path")
    url = f"{config.base_url}/{path}" if path else config.base_url
    try:
        same = same_origin(url, config.base_url)
    except httpx.InvalidURL:
        same = False
    if not same:
        raise ConfigError(
            f"resource {resource.name!r}: its path leaves base_url's host "
            f"({scrub_url(url, config.secrets())}); paths must be relative to base_url"
        )
    return url


def make_fetch(
    config: HttpConfig,
    client: SafeClient,
    resource: Resource,
    values: Mapping[str, Any],
    watermark: Any = None,
) -> Fetch:
    """A function sending one request of ``resource`` (see ``pagination.Fetch``)."""
    url = resource_url(config, resource, values)
    query: dict[str, Any] = {
        k: _render(resource, v, values, field=f"query {k!r}") if isinstance(v, str) else v
        for k, v in resource.query.items()
    }
    if resource.incremental is not None and watermark is not None:
        query[resource.incremental.param] = _watermark_text(watermark)
    try:
        body = render_json(resource.body, values) if resource.body is not None else None
    except TemplateProblem as exc:
        raise ConfigError(f"resource {resource.name!r}: body template: {exc}") from None

    def fetch(next_url: str | None, params: dict[str, Any]) -> httpx.Response:
        if next_url is None:
            response = client.request(
                resource.method,
                url,
                params={**query, **params},
                json=body,
                headers=resource.headers,
            )
        else:
            response = client.request(
                "GET", next_url, params=params or None, headers=resource.headers
            )
        label = f"resource {resource.name!r}: {response.request.method} "
        return client.raise_for_status(response, label + client.scrub(response.request.url))

    return fetch


def _newer(record: Mapping[str, Any], column: str, after: Any) -> bool:
    value = record.get(column)
    if value is None:
        return True
    if isinstance(value, str) and not isinstance(after, str):
        after = _watermark_text(after)
    try:
        return bool(value > after)
    except TypeError:
        return True


def iter_records(
    config: HttpConfig,
    client: SafeClient,
    resource: Resource,
    *,
    values: Mapping[str, Any] | None = None,
    watermark: Any = None,
    limit: int | None = None,
) -> Iterator[Records]:
    """Shaped records of ``resource``, page by page (incremental filter applied)."""
    merged = {**resource.params, **(values or {})}
    fetch = make_fetch(config, client, resource, merged, watermark)
    inc = resource.incremental
    pages = iter_pages(resource, fetch, limit=None if (inc and watermark is not None) else limit)
    left = limit
    for raw in pages:
        records = raw
        if inc is not None and watermark is not None and inc.filter_client_side:
            records = [r for r in records if _newer(r, inc.field, watermark)]
        if left is not None:
            records = records[:left]
            left -= len(records)
        yield shape(records, resource.nested, resource.flatten_separator)
        if left is not None and left <= 0:
            return


def sample_records(
    config: HttpConfig,
    client: SafeClient,
    resource: Resource,
    values: Mapping[str, Any] | None = None,
    watermark: Any = None,
) -> Records:
    """Up to ``config.sample_size`` records, for schema inference."""
    pages = iter_records(
        config, client, resource, values=values, watermark=watermark, limit=config.sample_size
    )
    return list(itertools.chain.from_iterable(pages))


@dataclass(frozen=True)
class ResourceRead:
    """The picklable read of one resource; calling it streams Arrow record batches."""

    config: HttpConfig
    policy: EndpointPolicy
    resource_name: str
    schema: pa.Schema
    values: dict[str, Any] = field(default_factory=dict)
    watermark: Any = None
    limit: int | None = None
    batch_size: int = 65_536

    def __call__(self) -> Iterator[pa.RecordBatch]:
        if self.limit is not None and self.limit <= 0:
            return
        resource = self.config.resource(self.resource_name)
        if resource is None:
            raise ConfigError(f"no resource named {self.resource_name!r}")
        with open_client(self.config, self.policy) as client:
            pages = iter_records(
                self.config,
                client,
                resource,
                values=self.values,
                watermark=self.watermark,
                limit=self.limit,
            )
            for records in pages:
                for start in range(0, len(records), self.batch_size):
                    yield to_batch(records[start : start + self.batch_size], self.schema)
