"""Every object-store endpoint goes through the SSRF policy before anything connects."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from uzo_connectors.base import ConnectorContext, ReadRequest
from uzo_connectors.errors import BlockedEndpointError
from uzo_connectors.registry import create_connector
from uzo_connectors.ssrf import EndpointPolicy

CONFIGS: dict[str, Any] = {
    "s3": lambda host: {"bucket": "data", "endpoint_url": f"http://{host}:9000"},
    "azure_blob": lambda host: {
        "container": "data",
        "account_name": "acct",
        "account_key": "a2V5",
        "endpoint_url": f"http://{host}:10000/acct",
    },
    "azure_blob (connection string)": lambda host: {
        "container": "data",
        "connection_string": f"AccountName=a;AccountKey=k;BlobEndpoint=http://{host}:10000/a;",
    },
    "gcs": lambda host: {"bucket": "data", "anonymous": True, "endpoint_url": f"http://{host}"},
    "sftp": lambda host: {"host": host, "username": "u", "password": "p"},
    "ftp": lambda host: {"host": host, "username": "u", "password": "p"},
    "file": lambda host: {"root": f"http://{host}/files"},
}


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record (and refuse) every outgoing TCP connection."""
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise AssertionError(f"connection attempted to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


@pytest.mark.parametrize("host", ["127.0.0.1", "169.254.169.254", "2130706433", "[::1]"])
@pytest.mark.parametrize("kind", list(CONFIGS))
def test_default_policy_refuses_internal_endpoints_before_connecting(
    kind: str, host: str, no_connections: list[Any]
) -> None:
    type_key = kind.split(" ")[0]
    plain_host = host.strip("[]")
    config = CONFIGS[kind](host if type_key not in ("sftp", "ftp") else plain_host)
    connector = create_connector(type_key, config, ConnectorContext(EndpointPolicy()))
    with pytest.raises(BlockedEndpointError, match="internal endpoints are refused"):
        connector.test_connection()
    with pytest.raises(BlockedEndpointError):
        connector.plan_read(ReadRequest("x.parquet"))
    assert no_connections == []


def test_loopback_allowed_only_when_the_policy_says_so(no_connections: list[Any]) -> None:
    policy = EndpointPolicy(allow_loopback=True)
    connector = create_connector("ftp", CONFIGS["ftp"]("127.0.0.1"), ConnectorContext(policy))
    with pytest.raises(Exception, match="connection attempted"):
        connector.store()
    assert no_connections  # it got past the policy and tried to connect
    metadata = create_connector("s3", CONFIGS["s3"]("169.254.169.254"), ConnectorContext(policy))
    with pytest.raises(BlockedEndpointError, match="link-local"):
        metadata.test_connection()
