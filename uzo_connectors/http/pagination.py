"""Pagination strategies: each walks a resource page by page and yields its records.

``fetch(url, params)`` sends one request: ``url`` None means the resource's own
URL (with its query), otherwise an absolute URL taken from the API (a Link
header's next page), which the transport checks against the SSRF policy like
any other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx

from uzo_connectors.errors import ConnectorError
from uzo_connectors.http.config import (
    CursorPagination,
    LinkHeaderPagination,
    NoPagination,
    OffsetPagination,
    PageNumberPagination,
)
from uzo_connectors.http.jsonpath import extract_one, records_at

if TYPE_CHECKING:
    from uzo_connectors.http.config import Resource

log = logging.getLogger(__name__)

Fetch = Callable[[str | None, dict[str, Any]], httpx.Response]
Records = list[dict[str, Any]]


def _parse(response: httpx.Response, resource: Resource) -> tuple[Any, Records]:
    try:
        body = response.json() if response.content else None
    except ValueError:
        raise ConnectorError(
            f"resource {resource.name!r}: the response is not JSON "
            f"(content-type {response.headers.get('content-type', 'unknown')!r})"
        ) from None
    return body, records_at(body, resource.records_path)


def iter_pages(resource: Resource, fetch: Fetch, limit: int | None = None) -> Iterator[Records]:
    """Yield each page's records until the data, ``limit`` rows or ``max_pages`` runs out."""
    rows = 0
    for pages, records in enumerate(_walk(resource, fetch), start=1):
        if limit is not None and rows + len(records) >= limit:
            yield records[: limit - rows]
            return
        rows += len(records)
        yield records
        if pages >= resource.max_pages:
            log.warning("resource %r: stopped after max_pages=%d", resource.name, pages)
            return


def _walk(resource: Resource, fetch: Fetch) -> Iterator[Records]:
    pagination = resource.pagination
    if isinstance(pagination, NoPagination):
        yield _parse(fetch(None, {}), resource)[1]
    elif isinstance(pagination, PageNumberPagination):
        yield from _page_numbers(resource, pagination, fetch)
    elif isinstance(pagination, OffsetPagination):
        yield from _offsets(resource, pagination, fetch)
    elif isinstance(pagination, CursorPagination):
        yield from _cursors(resource, pagination, fetch)
    else:
        yield from _links(resource, pagination, fetch)


def _page_numbers(resource: Resource, p: PageNumberPagination, fetch: Fetch) -> Iterator[Records]:
    page = p.start_page
    while True:
        params: dict[str, Any] = {p.page_param: page}
        if p.size_param:
            params[p.size_param] = p.page_size
        records = _parse(fetch(None, params), resource)[1]
        if not records:
            return
        yield records
        if p.stop_on_short_page and len(records) < p.page_size:
            return
        page += 1


def _offsets(resource: Resource, p: OffsetPagination, fetch: Fetch) -> Iterator[Records]:
    offset = p.start_offset
    while True:
        params = {p.offset_param: offset, p.limit_param: p.page_size}
        records = _parse(fetch(None, params), resource)[1]
        if not records:
            return
        yield records
        if p.stop_on_short_page and len(records) < p.page_size:
            return
        offset += len(records)


def _cursors(resource: Resource, p: CursorPagination, fetch: Fetch) -> Iterator[Records]:
    cursor: Any = None
    seen: set[str] = set()
    while True:
        params: dict[str, Any] = {}
        if cursor is not None:
            params[p.cursor_param] = cursor
        if p.size_param:
            params[p.size_param] = p.page_size
        body, records = _parse(fetch(None, params), resource)
        if not records:
            return
        yield records
        if p.has_more_path is not None and not extract_one(body, p.has_more_path):
            return
        if p.cursor_path is not None:
            cursor = extract_one(body, p.cursor_path)
        else:
            cursor = records[-1].get(p.cursor_field or "")
        if cursor is None or cursor == "" or str(cursor) in seen:
            return
        seen.add(str(cursor))


def _links(resource: Resource, p: LinkHeaderPagination, fetch: Fetch) -> Iterator[Records]:
    url: str | None = None
    params: dict[str, Any] = {p.size_param: p.page_size} if p.size_param else {}
    seen: set[str] = set()
    while True:
        response = fetch(url, params)
        records = _parse(response, resource)[1]
        if not records:
            return
        yield records
        link = response.links.get(p.rel, {}).get("url")
        if not link:
            return
        try:
            url = str(response.request.url.join(link))
        except httpx.InvalidURL:
            raise ConnectorError(
                f"resource {resource.name!r}: the Link header's {p.rel!r} URL is invalid"
            ) from None
        if url in seen:
            return
        seen.add(url)
        params = {}
