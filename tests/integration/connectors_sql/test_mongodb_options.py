"""A MongoDB URI's options are allow-listed: no local files, proxies or server identity."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from pydantic import ValidationError

from uzo_connectors.base import ConnectorContext
from uzo_connectors.errors import ConfigError
from uzo_connectors.mongodb import config as cfg
from uzo_connectors.mongodb.config import MongoDBConfig
from uzo_connectors.mongodb.connector import MongoDBConnector
from uzo_connectors.ssrf import EndpointPolicy

if TYPE_CHECKING:
    from tests.integration.connectors_sql.conftest import MongoServer

pytestmark = pytest.mark.integration

LOOPBACK = ConnectorContext(endpoint_policy=EndpointPolicy.permissive_for_tests())


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("tlsCertificateKeyFile=/etc/uzo/client.pem", "tlsCertificateKeyFile"),
        ("tlsCAFile=/etc/ssl/private/ca.pem", "tlsCAFile"),
        ("tlsCRLFile=/etc/x.crl", "tlsCRLFile"),
        ("TLSCAFILE=/etc/x", "TLSCAFILE"),  # option names are case-insensitive
        ("proxyHost=169.254.169.254&proxyPort=80", "proxyHost"),
        ("authMechanism=MONGODB-X509", "MONGODB-X509"),
        ("authMechanism=MONGODB-OIDC&authMechanismProperties=ENVIRONMENT:test", "ENVIRONMENT"),
        ("authMechanism=GSSAPI&authMechanismProperties=SERVICE_HOST:kdc.internal", "SERVICE_HOST"),
        ("socketTimeoutMS=0", "socketTimeoutMS"),  # 0 = wait forever
        ("socketTimeoutMS=99999999999", "socketTimeoutMS"),
        ("connectTimeoutMS=1e308", "connectTimeoutMS"),
        ("maxPoolSize=1000000", "maxPoolSize"),
        ("waitQueueTimeoutMS=0", "waitQueueTimeoutMS"),
        ("somethingNew=1", "somethingNew"),
    ],
)
def test_refused_uri_options_name_the_option(query: str, key: str) -> None:
    uri = f"mongodb://u:secret-pw@db.example.com/d?{query}"
    with pytest.raises(ValidationError) as info:
        MongoDBConfig.model_validate({"uri": uri})
    error = info.value.errors()[0]
    assert error["loc"] == ("uri",)
    assert key in error["msg"]
    assert "secret-pw" not in error["msg"]


def test_allowed_options_pass() -> None:
    uri = (
        "mongodb://u:p@a.example.com,b.example.com/d?replicaSet=rs&authSource=admin"
        "&authMechanism=SCRAM-SHA-256&tls=true&tlsAllowInvalidHostnames=false&retryWrites=true"
        "&w=majority&readPreference=secondaryPreferred&readPreferenceTags=dc:ny,rack:1"
        "&readPreferenceTags=&readConcernLevel=majority&compressors=zstd,zlib&appname=x"
        "&socketTimeoutMS=60000&maxPoolSize=20&srvMaxHosts=0"
    )
    MongoDBConfig.model_validate({"uri": uri})


@pytest.mark.parametrize(
    ("uri", "over"),
    [
        ("mongodb://db.example.com/d?authMechanism=MONGODB-AWS", {}),
        ("mongodb://db.example.com/d?authMechanism=GSSAPI", {"username": "svc@REALM"}),
        (
            "mongodb://db.example.com/d?authMechanism=MONGODB-OIDC"
            "&authMechanismProperties=ENVIRONMENT:azure,TOKEN_RESOURCE:api",
            {},
        ),
    ],
)
def test_server_identity_mechanisms_need_the_operator(uri: str, over: dict[str, Any]) -> None:
    config = MongoDBConfig.model_validate({"uri": uri, **over})
    connector = MongoDBConnector(config, LOOPBACK)
    with pytest.raises(ConfigError, match="UZO server's own identity"):
        connector.test_connection()
    assert connector._client is None  # refused before any client or DNS lookup
    cfg.check_ambient(config, allowed=True)  # fine where the operator allows it


def test_aws_with_an_explicit_key_is_not_ambient() -> None:
    config = MongoDBConfig.model_validate(
        {"uri": "mongodb://AKIAEXAMPLE:secret@db.example.com/d?authMechanism=MONGODB-AWS"}
    )
    cfg.check_ambient(config, allowed=False)


def test_socket_timeout_is_always_bounded() -> None:
    policy = EndpointPolicy()
    typed = MongoDBConfig(host="db.example.com")
    assert cfg.client_kwargs(typed, policy)["socketTimeoutMS"] == 300_000
    uri = MongoDBConfig.model_validate({"uri": "mongodb://db.example.com/d?socketTimeoutMS=5000"})
    assert "socketTimeoutMS" not in cfg.client_kwargs(uri, policy)  # the URI's (bounded) wins
    with pytest.raises(ValidationError, match="socket_timeout_ms"):
        MongoDBConfig.model_validate({"host": "db.example.com", "socket_timeout_ms": 1e308})
    with pytest.raises(ValidationError, match="host"):
        MongoDBConfig.model_validate({"host": "db.example.com/x?proxyHost=evil"})
    assert MongoDBConfig.endpoint_fields == frozenset({"uri", "host", "port"})


def test_a_uri_with_allowed_options_still_works(mongo_server: MongoServer) -> None:
    uri = (
        f"mongodb://127.0.0.1:{mongo_server.port}/uzo_opts?directConnection=true"
        "&socketTimeoutMS=20000&retryWrites=false&appname=tenant"
    )
    connector = MongoDBConnector(MongoDBConfig.model_validate({"uri": uri}), LOOPBACK)
    try:
        connector.test_connection()
    finally:
        connector.close()
