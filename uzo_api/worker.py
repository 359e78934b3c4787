"""The application of one process of `uzo serve --workers N`.

uvicorn's supervisor starts each process fresh and calls :func:`build_app` there (it
is named by import path in uzo_api.serving): settings come from the same environment
as the command's, and the database is opened by the application itself, attaching
to the embedded server the command started.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI


def build_app() -> FastAPI:
    from uzo_api.app import create_app
    from uzo_api.observability import configure_logging
    from uzo_api.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    return create_app(settings, release_embedded=True)
