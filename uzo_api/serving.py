"""How `uzo serve` runs the API under uvicorn (one place, so tests run it the same way)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.supervisors import Multiprocess

if TYPE_CHECKING:
    from fastapi import FastAPI

#: what each worker process of `uzo serve --workers N` imports and calls (uzo_api.worker)
WORKER_APP = "uzo_api.worker:build_app"


def uvicorn_config(app: FastAPI | str, host: str, port: int, **extra: Any) -> uvicorn.Config:
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
        **extra,
    )


def serve_workers(host: str, port: int, workers: int) -> None:
    """Run ``workers`` API processes on one listening socket until stopped.

    Each process builds its own application from the environment (uzo_api.worker): the
    caller has migrated the database and, when embedded, started it; the processes
    attach to it. uvicorn's supervisor restarts a process that dies and stops them all
    on SIGINT or SIGTERM.
    """
    config = uvicorn_config(WORKER_APP, host, port, factory=True, workers=workers)
    socket = config.bind_socket()
    try:
        Multiprocess(config, sockets=[socket]).run()
    finally:
        socket.close()
