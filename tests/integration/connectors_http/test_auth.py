"""Each auth style works; a wrong credential is a ConnectionTestError that names no secret."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.integration.connectors_http.helpers import connector, read_all
from tests.integration.connectors_http.server import (
    API_KEY,
    CLIENT_ID,
    CLIENT_SECRET,
    PASSWORD,
    TOKEN,
    USER,
)
from uzo_connectors.errors import ConnectionTestError, ConnectorError
from uzo_connectors.http.config import HttpConfig

if TYPE_CHECKING:
    from tests.integration.connectors_http.conftest import LocalServer
    from tests.integration.connectors_http.server import ServerState
    from uzo_connectors.base import ConnectorContext

pytestmark = pytest.mark.integration

WRONG = "wr0ng-s3cret-value"


def _auth_cases(url: str) -> dict[str, tuple[str, dict[str, Any], dict[str, Any], str]]:
    """style -> (path, good auth, bad auth, the secret of the good auth)."""
    oauth = {
        "type": "oauth2_client_credentials",
        "token_url": f"{url}/oauth/token",
        "client_id": CLIENT_ID,
        "scopes": ["read", "write"],
    }
    return {
        "bearer": (
            "/auth/bearer",
            {"type": "bearer", "token": TOKEN},
            {"type": "bearer", "token": WRONG},
            TOKEN,
        ),
        "basic": (
            "/auth/basic",
            {"type": "basic", "username": USER, "password": PASSWORD},
            {"type": "basic", "username": USER, "password": WRONG},
            PASSWORD,
        ),
        "header_key": (
            "/auth/header-key",
            {"type": "api_key", "name": "X-API-Key", "value": API_KEY},
            {"type": "api_key", "name": "X-API-Key", "value": WRONG},
            API_KEY,
        ),
        "query_key": (
            "/auth/query-key",
            {"type": "api_key", "name": "api_key", "value": API_KEY, "location": "query"},
            {"type": "api_key", "name": "api_key", "value": WRONG, "location": "query"},
            API_KEY,
        ),
        "oauth2": (
            "/auth/oauth",
            {**oauth, "client_secret": CLIENT_SECRET},
            {**oauth, "client_secret": WRONG},
            CLIENT_SECRET,
        ),
    }


STYLES = ["bearer", "basic", "header_key", "query_key", "oauth2"]


@pytest.mark.parametrize("style", STYLES)
def test_auth_style_works(style: str, http_server: LocalServer, loopback: ConnectorContext) -> None:
    path, good, _, _ = _auth_cases(http_server.url)[style]
    conn = connector(loopback, http_server.url, auth=good, resources=[{"name": "r", "path": path}])
    conn.test_connection()
    assert read_all(conn, "r").num_rows == 3


@pytest.mark.parametrize("style", STYLES)
def test_wrong_credential_is_a_clear_error_without_the_secret(
    style: str, http_server: LocalServer, loopback: ConnectorContext
) -> None:
    path, _, bad, secret = _auth_cases(http_server.url)[style]
    conn = connector(loopback, http_server.url, auth=bad, resources=[{"name": "r", "path": path}])
    with pytest.raises(ConnectionTestError) as info:
        conn.test_connection()
    message = str(info.value)
    assert "refused the credentials" in message or "refused the client credentials" in message
    assert WRONG not in message
    assert secret not in message
    assert WRONG not in repr(conn.config)  # SecretStr in the config's repr too


def test_secret_in_query_is_scrubbed_from_errors(
    http_server: LocalServer, loopback: ConnectorContext
) -> None:
    auth = {"type": "api_key", "name": "api_key", "value": WRONG, "location": "query"}
    conn = connector(loopback, http_server.url, auth=auth, resources=[{"name": "r", "path": "/x"}])
    with pytest.raises(ConnectorError) as info:
        read_all(conn, "r")
    assert "api_key=%2A%2A%2A" in str(info.value) or "api_key=***" in str(info.value)
    assert WRONG not in str(info.value)


def test_oauth_token_is_cached_and_refreshed_on_401(
    http_server: LocalServer, state: ServerState, loopback: ConnectorContext
) -> None:
    auth = _auth_cases(http_server.url)["oauth2"][1]
    conn = connector(
        loopback, http_server.url, auth=auth, resources=[{"name": "r", "path": "/auth/oauth"}]
    )
    issued = state.tokens_issued
    for _ in range(3):
        conn.test_connection()
    assert state.tokens_issued == issued + 1  # one token, reused
    with state.lock:
        state.tokens.clear()  # the server revokes every token
    conn.test_connection()
    assert state.tokens_issued == issued + 2  # a 401 fetched a fresh one


def test_config_model_keeps_secrets_secret() -> None:
    config = HttpConfig.model_validate(
        {"base_url": "https://api.example.com", "auth": {"type": "bearer", "token": TOKEN}}
    )
    assert TOKEN not in config.model_dump_json()
    assert TOKEN not in repr(config)
