"""Object stores connect to the address the SSRF policy checked, not to a second DNS answer.

Each server listens on 127.0.0.1 and is named ``<kind>.test``, a name only the test
policy's resolver knows (the system resolver cannot resolve ``.test`` names). A
round trip through a connector therefore proves that the SDK was given the checked
address (http endpoints: substituted into the URL; FTP/SFTP: connected by address).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

from tests.integration.connectors.conftest import PASSWORD, USER
from uzo_connectors.base import ConnectorContext, WriteMode
from uzo_connectors.errors import BlockedEndpointError
from uzo_connectors.registry import create_connector
from uzo_connectors.ssrf import EndpointPolicy, resolve
from uzo_connectors.testing import make_sample_table, read_all, same_rows, write_table

if TYPE_CHECKING:
    from tests.integration.connectors.conftest import (
        AzureServer,
        FTPServer,
        GCSServer,
        S3Server,
        SSHServer,
    )


def pinned_to_loopback(name: str) -> ConnectorContext:
    policy = EndpointPolicy(
        allowed=(name,), resolver=lambda host: ["127.0.0.1"] if host == name else resolve(host)
    )
    return ConnectorContext(policy)


def round_trip(type_key: str, name: str, config: dict[str, Any]) -> None:
    with pytest.raises(BlockedEndpointError, match="cannot resolve"):
        resolve(name)  # only the policy's resolver knows the name
    connector = create_connector(type_key, config, pinned_to_loopback(name))
    try:
        connector.test_connection()
        table = make_sample_table(6)
        write_table(connector, "p/t.parquet", table, WriteMode.OVERWRITE)
        assert same_rows(read_all(connector, "p/t.parquet"), table)
    finally:
        connector.close()


def unique() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def test_s3_http_endpoint_is_pinned(s3_server: S3Server) -> None:
    port = s3_server.endpoint.rsplit(":", 1)[1]
    round_trip(
        "s3",
        "s3.test",
        {
            "bucket": s3_server.bucket,
            "prefix": unique(),
            "endpoint_url": f"http://s3.test:{port}",
            "region": "us-west-2",
            "access_key_id": s3_server.key_id,
            "secret_access_key": s3_server.secret,
        },
    )


def test_azure_http_endpoint_is_pinned(azure_server: AzureServer) -> None:
    endpoint = azure_server.endpoint.replace("127.0.0.1", "azurite.test")
    round_trip(
        "azure_blob",
        "azurite.test",
        {
            "container": azure_server.container,
            "prefix": unique(),
            "account_name": azure_server.account,
            "account_key": azure_server.key,
            "endpoint_url": endpoint,
        },
    )


def test_gcs_http_endpoint_is_pinned(gcs_server: GCSServer) -> None:
    round_trip(
        "gcs",
        "gcs.test",
        {
            "bucket": gcs_server.bucket,
            "prefix": unique(),
            "anonymous": True,
            "endpoint_url": gcs_server.endpoint.replace("127.0.0.1", "gcs.test"),
        },
    )


def test_ftp_connects_to_the_checked_address(ftp_server: FTPServer) -> None:
    name = unique()
    (ftp_server.root / name).mkdir()
    round_trip(
        "ftp",
        "ftp.test",
        {
            "host": "ftp.test",
            "port": ftp_server.port,
            "username": USER,
            "password": PASSWORD,
            "root": f"/{name}",
        },
    )


def test_sftp_connects_to_the_checked_address(sftp_server: SSHServer) -> None:
    name = unique()
    (sftp_server.root / name).mkdir()
    round_trip(
        "sftp",
        "sftp.test",
        {
            "host": "sftp.test",
            "port": sftp_server.port,
            "username": USER,
            "password": PASSWORD,
            "root": f"/{name}",
        },
    )


def test_pinned_endpoint_substitutes_http_addresses_only() -> None:
    from uzo_connectors.object_store.common import pinned_endpoint

    v6 = EndpointPolicy(allowed=("v6.test", "tls.test"), resolver=lambda host: ["::1"])
    assert pinned_endpoint(v6, "http://v6.test:9000/acct") == "http://[::1]:9000/acct"
    assert pinned_endpoint(v6, "http://v6.test/") == "http://[::1]/"
    # https keeps the name: certificate verification ties the connection to it
    assert pinned_endpoint(v6, "https://tls.test:9000") == "https://tls.test:9000"
    with pytest.raises(BlockedEndpointError, match="loopback"):
        pinned_endpoint(EndpointPolicy(), "https://127.0.0.1:9000")
