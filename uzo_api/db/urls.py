"""Resolve the owner and application connection URLs from settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.engine import URL, make_url

from uzo_api.db.embedded import embedded_owner_url

if TYPE_CHECKING:
    from uzo_api.settings import Settings


@dataclass(frozen=True)
class DatabaseUrls:
    owner: URL
    app: URL
    embedded: bool


def with_driver(url: URL) -> URL:
    """``postgresql://`` URLs use psycopg 3."""
    if url.drivername in {"postgresql", "postgres"}:
        return url.set(drivername="postgresql+psycopg")
    return url


def resolve_urls(settings: Settings) -> DatabaseUrls:
    """Owner URL (migrations) and app URL (requests, workers).

    With ``UZO_DATABASE_URL`` unset, the embedded server is started here.
    """
    db = settings.database
    if db.url is None:
        owner = embedded_owner_url(settings)
        embedded = True
    else:
        owner = with_driver(make_url(db.url.get_secret_value()))
        embedded = False
    if db.app_url is not None:
        app = with_driver(make_url(db.app_url.get_secret_value()))
    else:
        password = db.app_password.get_secret_value() if db.app_password else None
        app = owner.set(username=db.app_role, password=password)
    return DatabaseUrls(owner=owner, app=app, embedded=embedded)
