"""How `uzo serve` runs the API under uvicorn (one place, so tests run it the same way)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import uvicorn

if TYPE_CHECKING:
    from fastapi import FastAPI


def uvicorn_config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        # X-Forwarded-For is read by UZO itself, and only from UZO_SERVER_TRUSTED_PROXIES:
        # uvicorn's default believes the header from any local peer
        proxy_headers=False,
        server_header=False,
        # an idle or slow client cannot hold a connection for long
        timeout_keep_alive=5,
        timeout_graceful_shutdown=10,
    )
