"""Retries honour Retry-After, the rate limit is a moving window, internal targets are refused."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pyarrow as pa
import pytest
import stamina

from tests.integration.connectors_http.helpers import connector, read_all
from tests.integration.connectors_http.server import METADATA_URL
from uzo_connectors.base import ConnectorContext, WriteMode, WriteRequest
from uzo_connectors.errors import (
    BlockedEndpointError,
    ConfigError,
    ConnectorError,
)
from uzo_connectors.http.transport import RateLimiter, rate_window
from uzo_connectors.ssrf import EndpointPolicy

if TYPE_CHECKING:
    from tests.integration.connectors_http.conftest import LocalServer
    from tests.integration.connectors_http.server import ServerState

pytestmark = pytest.mark.integration


def test_retry_honours_retry_after(
    http_server: LocalServer, state: ServerState, loopback: ConnectorContext
) -> None:
    conn = connector(
        loopback,
        http_server.url,
        retries={"backoff_base": 0.01},  # backoff alone would retry after ~10 ms
        resources=[{"name": "r", "path": "/flaky/once", "columns": {"id": "int64"}}],
    )
    state.flaky_failures["once"] = 1
    started = time.monotonic()
    table = read_all(conn, "r")
    elapsed = time.monotonic() - started
    assert table.num_rows == 2
    assert state.calls["flaky:once"] == 2
    first, second = state.request_times["flaky:once"]
    assert second - first >= 1.0  # Retry-After: 1
    assert elapsed >= 1.0


def test_retries_give_up_after_max_attempts(
    http_server: LocalServer, state: ServerState, loopback: ConnectorContext
) -> None:
    conn = connector(
        loopback,
        http_server.url,
        retries={"max_attempts": 2, "max_retry_after": 5},
        resources=[{"name": "r", "path": "/flaky/always", "columns": {"id": "int64"}}],
    )
    state.flaky_failures["always"] = 5
    with pytest.raises(ConnectorError, match="HTTP 429"):
        read_all(conn, "r")
    assert state.calls["flaky:always"] == 2


def test_too_long_retry_after_fails_fast(
    http_server: LocalServer, state: ServerState, loopback: ConnectorContext
) -> None:
    conn = connector(
        loopback,
        http_server.url,
        retries={"max_retry_after": 0.5},
        resources=[{"name": "r", "path": "/flaky/long", "columns": {"id": "int64"}}],
    )
    state.flaky_failures["long"] = 1
    with pytest.raises(ConnectorError, match="asks to retry after"):
        read_all(conn, "r")


def test_rate_limit_is_a_moving_window(
    http_server: LocalServer, state: ServerState, loopback: ConnectorContext
) -> None:
    resource = {
        "name": "r",
        "path": "/items/page",
        "pagination": {"type": "page", "page_size": 5},
        "columns": {"id": "int64"},  # declared: no sampling request
    }
    conn = connector(loopback, http_server.url, rate_limit=2, resources=[resource])
    assert read_all(conn, "r").num_rows == 35
    times = state.request_times["page"]
    assert len(times) == 8  # seven pages of 5 and an empty one
    # at most 2 request starts in any second (arrival times at the server jitter a little;
    # unlimited, the eight pages take ~20 ms in all)
    for i, t in enumerate(times):
        assert sum(1 for u in times[i:] if u - t < 0.95) <= 2
    assert times[-1] - times[0] >= 2.9  # pairs at 0, 1, 2 and 3 s


@pytest.mark.parametrize(
    ("rate", "window"),
    [
        (5, (5, 1)),
        (2.5, (5, 2)),
        (0.5, (1, 2)),
        (0.3, (3, 10)),
        (1000, (1000, 1)),
        (0.001, (1, 1000)),
    ],
)
def test_rates_become_whole_requests_per_whole_seconds(
    rate: float, window: tuple[int, int]
) -> None:
    assert rate_window(rate) == window
    amount, seconds = rate_window(rate)
    assert amount / seconds <= rate + 1e-9


def test_rate_limiter_waits_for_the_window() -> None:
    limiter = RateLimiter(20)  # 20 per second
    started = time.monotonic()
    for _ in range(20):
        limiter.acquire()
    assert time.monotonic() - started < 0.5  # a full window's worth at once
    limiter.acquire()
    assert time.monotonic() - started >= 0.95  # the 21st waits for the first to leave it


def test_retry_policy_is_deterministic_under_stamina_test_mode(
    http_server: LocalServer, state: ServerState, loopback: ConnectorContext
) -> None:
    conn = connector(
        loopback,
        http_server.url,
        retries={"max_attempts": 3, "backoff_base": 30},
        resources=[{"name": "r", "path": "/flaky/capped", "columns": {"id": "int64"}}],
    )
    state.flaky_failures["capped"] = 2  # 429 with Retry-After: 1, twice
    started = time.monotonic()
    with stamina.set_testing(True, attempts=10, cap=True):
        assert read_all(conn, "r").num_rows == 2
    assert time.monotonic() - started < 1  # neither the backoff nor Retry-After was slept
    assert state.calls["flaky:capped"] == 3


def test_redirect_to_metadata_address_is_refused(
    http_server: LocalServer, loopback: ConnectorContext
) -> None:
    conn = connector(loopback, http_server.url, resources=[{"name": "r", "path": "/redirect/evil"}])
    with pytest.raises(BlockedEndpointError, match=r"169\.254\.169\.254"):
        read_all(conn, "r")


def test_redirect_on_the_same_server_is_followed(
    http_server: LocalServer, loopback: ConnectorContext
) -> None:
    conn = connector(loopback, http_server.url, resources=[{"name": "r", "path": "/redirect/ok"}])
    assert read_all(conn, "r").num_rows == 10


def test_link_header_to_metadata_address_is_refused(
    http_server: LocalServer, loopback: ConnectorContext
) -> None:
    resource = {"name": "r", "path": "/items/link-evil", "pagination": {"type": "link"}}
    conn = connector(loopback, http_server.url, resources=[resource])
    with pytest.raises(BlockedEndpointError, match="link-local"):
        read_all(conn, "r")


def test_default_policy_refuses_the_loopback_server(http_server: LocalServer) -> None:
    strict = ConnectorContext(endpoint_policy=EndpointPolicy())
    conn = connector(strict, http_server.url, resources=[{"name": "r", "path": "/items/page"}])
    with pytest.raises(BlockedEndpointError, match="loopback"):
        conn.test_connection()  # UZO's refusal, not a failed connection (the API: 422)


def test_oauth_token_url_is_checked(http_server: LocalServer, loopback: ConnectorContext) -> None:
    auth = {
        "type": "oauth2_client_credentials",
        "token_url": METADATA_URL + "token",
        "client_id": "x",
        "client_secret": "y-secret-value",
    }
    conn = connector(
        loopback, http_server.url, auth=auth, resources=[{"name": "r", "path": "/auth/oauth"}]
    )
    with pytest.raises(BlockedEndpointError, match=r"169\.254\.169\.254"):
        conn.test_connection()


def test_sink_posts_rows_as_json_batches(
    http_server: LocalServer, state: ServerState, loopback: ConnectorContext
) -> None:
    resource = {"name": "out", "path": "/sink", "readable": False, "write": {"batch_size": 4}}
    conn = connector(loopback, http_server.url, resources=[resource])
    table = pa.table({"id": list(range(10)), "name": [f"n{i}" for i in range(10)]})
    with conn.open_sink(WriteRequest(dataset="out", schema=table.schema)) as sink:
        for batch in table.to_batches(max_chunksize=3):
            sink.write(batch)
        result = sink.commit()
    assert result.rows_written == 10
    assert state.sunk == table.to_pylist()

    aborted = conn.open_sink(WriteRequest(dataset="out", schema=table.schema))
    aborted.write(table.to_batches()[0])
    aborted.abort()
    assert len(state.sunk) == 10  # nothing sent before commit

    with pytest.raises(ConfigError, match="only appends"):
        conn.open_sink(WriteRequest(dataset="out", schema=table.schema, mode=WriteMode.UPSERT))
