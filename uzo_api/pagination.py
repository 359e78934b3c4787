"""One pagination convention for every list: keyset cursor + limit, a ``next`` link.

A list answers ``{"items": [...], "next_cursor": "...", "next": "/api/...?cursor=..."}``
in a stable order (the resource's sort key, then its id) and sets an RFC 8288 ``Link``
header with ``rel="next"``. The cursor is opaque to clients: it holds the sort key of
the last item returned, so pages neither skip nor repeat rows when others are added or
removed meanwhile (offsets would). A cursor that does not decode is a 422 naming
``query.cursor``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Request, Response
from pydantic import Field
from sqlalchemy import DateTime, and_, or_

from uzo_api.errors import InvalidInput
from uzo_api.schemas.common import ResponseModel

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy import Select
    from sqlalchemy.orm import InstrumentedAttribute

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
T = TypeVar("T")
Key = tuple[Any, uuid.UUID | str]


class Page(ResponseModel, Generic[T]):
    """A page of a list. Subclass it per resource (``ConnectorPage``) for a named schema."""

    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )
    next: str | None = Field(description="Path and query of the next page; null on the last.")


@dataclass(frozen=True)
class PageRequest:
    """What the client asked for: at most ``limit`` items after the ``after`` key."""

    limit: int
    after: Key | None
    request: Request
    response: Response

    def finish(self, keys: Sequence[Key]) -> tuple[str | None, str | None]:
        """Cursor and link of the next page, given the keys of up to ``limit + 1`` rows
        fetched (one more than asked shows whether another page exists)."""
        if len(keys) <= self.limit:
            return None, None
        cursor = encode_cursor(keys[self.limit - 1])
        url = self.request.url.include_query_params(cursor=cursor, limit=self.limit)
        link = url.path + "?" + url.query
        self.response.headers["Link"] = f'<{link}>; rel="next"'
        return cursor, link


def encode_cursor(key: Key) -> str:
    value, ident = key
    if isinstance(value, dt.datetime):
        raw: list[Any] = ["t", value.isoformat(), str(ident)]
    else:
        raw = ["s", str(value), str(ident)]
    data = json.dumps(raw, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> Key:
    try:
        data = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        kind, value, ident = json.loads(data)
        if kind == "t":
            return dt.datetime.fromisoformat(value), uuid.UUID(ident)
        if kind == "s" and isinstance(value, str) and isinstance(ident, str):
            return value, ident
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        pass
    raise InvalidInput(
        "cursor is not one this server gave out: pass `next_cursor` of the previous page",
        field="query.cursor",
    )


def page_request(
    request: Request,
    response: Response,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Items per page (at most 200).")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(max_length=512, description="`next_cursor` of the previous page."),
    ] = None,
) -> PageRequest:
    after = decode_cursor(cursor) if cursor else None
    return PageRequest(limit=limit, after=after, request=request, response=response)


PageParams = Annotated[PageRequest, Depends(page_request)]


def keyset(
    query: Select[Any],
    page: PageRequest,
    sort: InstrumentedAttribute[Any],
    ident: InstrumentedAttribute[Any],
    *,
    descending: bool = False,
) -> Select[Any]:
    """``query`` ordered by (sort, id), after the cursor, one row more than the limit.

    With ``descending`` both keys run downwards (newest first, Z to A), the id still
    breaking ties, so the order stays total and the cursor keeps working.
    """
    if page.after is not None:
        value, last_id = page.after
        if isinstance(last_id, str):
            try:
                last_id = uuid.UUID(last_id)
            except ValueError:
                raise InvalidInput("cursor does not fit this list", field="query.cursor") from None
        if isinstance(value, dt.datetime) != isinstance(sort.type, DateTime):
            # a cursor of a list sorted by another key (a name where a time is compared)
            raise InvalidInput("cursor does not fit this list", field="query.cursor")
        if descending:
            query = query.where(or_(sort < value, and_(sort == value, ident < last_id)))
        else:
            query = query.where(or_(sort > value, and_(sort == value, ident > last_id)))
    if descending:
        return query.order_by(sort.desc(), ident.desc()).limit(page.limit + 1)
    return query.order_by(sort, ident).limit(page.limit + 1)


def in_memory(items: Sequence[T], page: PageRequest, key: Callable[[T], str]) -> list[T]:
    """Up to ``limit + 1`` of ``items`` (sorted by a unique string key) after the cursor."""
    ordered = sorted(items, key=key)
    if page.after is not None:
        last = str(page.after[0])
        ordered = [i for i in ordered if key(i) > last]
    return ordered[: page.limit + 1]
