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
    "s3": lambda host: {
        "bucket": "data",
        "endpoint_url": f"http://{host}:9000",
        "access_key_id": "key",
        "secret_access_key": "secret",
    },
    "azure_blob": lambda host: {
        "container": "data",
        "account_name": "acct",
        "account_key": "a2V5",
        "endpoint_url": f"http://{host}:10000/acct",
    },
    "azure_blob (connection string)": lambda host: {
        "container": "data",
        "connection_string": (
            f"AccountName=acct;AccountKey=a2V5;BlobEndpoint=http://{host}:10000/acct;"
        ),
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


# ----- config validation: what ends up in host names, URLs and commands ----------------------

S3 = {"bucket": "data", "access_key_id": "k", "secret_access_key": "s"}
AZURE = {"container": "data", "account_name": "acct", "account_key": "a2V5"}
SERVER = {"host": "files.example.com", "username": "u", "password": "p"}


@pytest.mark.parametrize(
    ("type_key", "config", "field"),
    [
        ("s3", {**S3, "region": "us-east-1.evil.example"}, "region"),
        ("s3", {**S3, "region": "US-EAST-1"}, "region"),
        ("s3", {**S3, "bucket": "Bad_Bucket"}, "bucket"),
        ("s3", {**S3, "bucket": "a..b"}, "bucket"),
        ("s3", {**S3, "bucket": "192.168.1.1"}, "bucket"),
        ("s3", {**S3, "bucket": "xn--bucket"}, "bucket"),
        ("s3", {**S3, "bucket": "evil.example/x"}, "bucket"),
        ("s3", {**S3, "endpoint_url": "http://user:pw@minio.example"}, "endpoint_url"),
        ("s3", {**S3, "endpoint_url": "http://minio.example/?x-id=1"}, "endpoint_url"),
        ("s3", {**S3, "endpoint_url": "file:///etc/passwd"}, "endpoint_url"),
        ("s3", {**S3, "endpoint_url": "unix:///var/run/docker.sock"}, "endpoint_url"),
        ("gcs", {"bucket": "data", "anonymous": True, "token": "t"}, "only one"),
        ("gcs", {"bucket": "data", "endpoint_url": "gopher://x"}, "endpoint_url"),
        ("gcs", {"bucket": "Data!", "anonymous": True}, "bucket"),
        ("azure_blob", {**AZURE, "account_name": "acct.evil.example"}, "account_name"),
        ("azure_blob", {**AZURE, "container": "a--b"}, "container"),
        ("azure_blob", {**AZURE, "account_key": "not base64!"}, "account_key"),
        ("azure_blob", {**AZURE, "sas_token": "sv=1;BlobEndpoint=http://x"}, "sas_token"),
        ("azure_blob", {**AZURE, "anonymous": True}, "anonymous"),
        ("azure_blob", {**AZURE, "connection_string": "AccountName=acct"}, "not both"),
        ("sftp", {**SERVER, "host": "evil.example;rm"}, "host"),
        ("ftp", {**SERVER, "username": "u\r\nDELE x"}, "username"),
        ("ftp", {**SERVER, "password": "p\r\nDELE x"}, "password"),
        ("ftp", {**SERVER, "root": "/x\r\nDELE y"}, "root"),
    ],
)
def test_configs_refuse_values_that_pick_another_target(
    type_key: str, config: dict[str, Any], field: str
) -> None:
    from uzo_connectors.errors import ConfigError

    with pytest.raises(ConfigError, match=field):
        create_connector(type_key, config, ConnectorContext(EndpointPolicy()))


@pytest.mark.parametrize("type_key", ["sftp", "ftp"])
@pytest.mark.parametrize("timeout", [0, 301, 1e308, float("inf"), float("nan")])
def test_timeouts_are_bounded(type_key: str, timeout: float) -> None:
    from uzo_connectors.errors import ConfigError

    with pytest.raises(ConfigError, match="timeout"):
        create_connector(
            type_key, {**SERVER, "timeout": timeout}, ConnectorContext(EndpointPolicy())
        )


def test_endpoint_fields_name_where_each_connector_connects() -> None:
    from uzo_connectors.registry import get_connector_class

    expected = {
        "file": {"root"},
        "s3": {"endpoint_url"},
        "gcs": {"endpoint_url"},
        "azure_blob": {"account_name", "endpoint_url", "connection_string"},
        "sftp": {"host", "port"},
        "ftp": {"host", "port"},
    }
    for type_key, fields in expected.items():
        model = get_connector_class(type_key).config_model
        assert model.endpoint_fields == fields, type_key
        assert fields <= set(model.model_fields), type_key


def test_no_credentials_is_refused_before_any_connection(no_connections: list[Any]) -> None:
    from uzo_connectors.errors import ConfigError

    policy = EndpointPolicy(allowed=("store.example",), resolver=lambda host: ["203.0.113.7"])
    ctx = ConnectorContext(policy)
    for type_key, config in (
        ("s3", {"bucket": "data", "endpoint_url": "https://store.example"}),
        ("gcs", {"bucket": "data", "endpoint_url": "https://store.example"}),
        (
            "azure_blob",
            {
                "container": "data",
                "account_name": "acct",
                "endpoint_url": "https://store.example/acct",
            },
        ),
    ):
        with pytest.raises(ConfigError, match="anonymous: true"):
            create_connector(type_key, config, ctx).test_connection()
    assert no_connections == []
