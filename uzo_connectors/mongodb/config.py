"""MongoDB connection settings: the config model, endpoint checks and secret-free errors.

A connection is given either as a URI (``mongodb://`` or ``mongodb+srv://``,
kept as a secret because it may embed a password) or as host/port/credentials.
Every host the client will reach is checked with the SSRF policy before
connecting: each seed of a ``mongodb://`` URI, each target of the SRV records
of a ``mongodb+srv://`` URI (also when pymongo re-polls them), and, after
connecting, each member the server reports (replica-set discovery). pymongo
resolves names itself, so a connection cannot be pinned to the checked
addresses; the member re-checks are what holds.

The URI's options are checked against an allow-list when the config is
validated (:mod:`uzo_connectors.mongodb.uri_options`); a mechanism that would
use the UZO server's own identity is refused when the client is built unless
the operator allows ambient credentials for ``mongodb``. Every socket
operation times out (``socket_timeout_ms``, or the URI's bounded
``socketTimeoutMS``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import quote, quote_plus, unquote

from pydantic import Field, SecretStr, field_validator, model_validator

from uzo_connectors.base import ConnectorConfig
from uzo_connectors.errors import BlockedEndpointError, ConfigError, MissingDependencyError
from uzo_connectors.mongodb.uri_options import check_uri_options, uses_ambient_identity
from uzo_connectors.options import host_name, plain_text
from uzo_connectors.registry import import_optional
from uzo_connectors.sql.engine import check_hosts, scrub

if TYPE_CHECKING:
    from collections.abc import Iterable

    from uzo_connectors.ssrf import EndpointPolicy

_USERINFO = re.compile(r"(mongodb(?:\+srv)?://)[^@/?#\s]*@", re.IGNORECASE)


class MongoDBConfig(ConnectorConfig):
    endpoint_fields: ClassVar[frozenset[str]] = frozenset({"uri", "host", "port"})

    uri: SecretStr | None = Field(
        default=None,
        description="mongodb:// or mongodb+srv:// connection string (instead of host/port)",
    )
    host: str | None = Field(default=None, description="host name or IP address")
    port: int = Field(default=27017, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    database: str | None = Field(
        default=None, description="database to read and write (default: the URI's database)"
    )
    auth_source: str | None = Field(default=None, description="authentication database")
    tls: bool | None = Field(default=None, description="require TLS (default: the URI's)")
    direct_connection: bool | None = Field(
        default=None,
        description="connect to this one server only, without replica-set discovery",
    )
    timeout_ms: int = Field(default=10_000, ge=100, le=300_000)
    # A read may wait for a long sort or aggregation: up to an hour, never unbounded.
    socket_timeout_ms: int = Field(
        default=300_000,
        ge=1000,
        le=3_600_000,
        description="how long one operation may wait for the server (the URI's wins)",
    )
    nested: Literal["flatten", "struct"] = Field(
        default="flatten",
        description="sub-documents as dotted columns (flatten) or as Arrow structs (struct)",
    )
    sample_size: int = Field(
        default=1000, ge=1, le=100_000, description="documents sampled to infer a schema"
    )
    write_batch_size: int = Field(default=1000, ge=1, le=100_000)

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value()
        if not text.lower().startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("must start with mongodb:// or mongodb+srv://")
        try:
            check_uri_options(text)
        except (ConfigError, MissingDependencyError) as exc:
            raise ValueError(str(exc).removeprefix("uri: ")) from None
        return value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        return None if value is None else host_name(value).strip("[]")

    @field_validator("username", "database", "auth_source")
    @classmethod
    def _names(cls, value: str | None) -> str | None:
        return None if value is None else str(plain_text(128)(value))

    @model_validator(mode="after")
    def _one_endpoint(self) -> MongoDBConfig:
        if (self.uri is None) == (self.host is None):
            raise ValueError("give either `uri` or `host`")
        return self


def secrets_of(config: MongoDBConfig) -> list[str]:
    """Every spelling of a secret that may show up in a driver message."""
    out: list[str] = []
    if config.uri is not None:
        uri = config.uri.get_secret_value()
        out.append(uri)
        userinfo = uri.split("://", 1)[1].split("@", 1)
        if len(userinfo) == 2 and ":" in userinfo[0]:
            raw = userinfo[0].split(":", 1)[1]
            out.append(raw)
            out.append(unquote(raw))
    if config.password is not None:
        pw = config.password.get_secret_value()
        out += [pw, quote(pw, safe=""), quote_plus(pw)]
    return sorted({s for s in out if s}, key=len, reverse=True)


def scrub_message(message: str, config: MongoDBConfig) -> str:
    """``message`` without the URI's userinfo or any spelling of the password."""
    return _USERINFO.sub(r"\1***@", scrub(message, secrets_of(config)))


class SrvHostValidator:
    """pymongo's ``srv_host_validator``: refuses SRV targets the SSRF policy blocks."""

    def __init__(self, policy: EndpointPolicy) -> None:
        self.policy = policy

    def __call__(self, host: str) -> bool:
        try:
            self.policy.check_host(host)
        except BlockedEndpointError:
            return False
        return True


def parse(config: MongoDBConfig, policy: EndpointPolicy) -> dict[str, Any]:
    """The parsed URI (``nodelist``, ``database``, ``options``...); SRV records resolved.

    SRV targets are checked by the policy while resolving; every other host is
    checked by :func:`check_endpoints`.
    """
    if config.uri is None:
        return {"nodelist": [(config.host, config.port)], "database": None, "options": {}}
    uri_parser = import_optional("pymongo.uri_parser", "mongodb")
    uri = config.uri.get_secret_value()
    kwargs: dict[str, Any] = {"connect_timeout": config.timeout_ms / 1000}
    if uri.lower().startswith("mongodb+srv://"):
        kwargs["srv_host_validator"] = SrvHostValidator(policy)
    try:
        parsed: dict[str, Any] = uri_parser.parse_uri(uri, **kwargs)
    except Exception as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "srv_host_validator" in text or "Invalid SRV host" in text:
            raise BlockedEndpointError(
                "an SRV record of the URI points at a refused (internal) host: "
                + scrub_message(text, config)
            ) from None
        raise ConfigError(f"uri: {scrub_message(text, config)}") from None
    return parsed


def check_endpoints(policy: EndpointPolicy, nodes: Iterable[tuple[str, Any]]) -> None:
    """Check every (host, port) with the policy; a unix-socket path counts as loopback."""
    check_hosts(policy, [str(host) for host, _port in nodes])


def check_ambient(config: MongoDBConfig, allowed: bool) -> None:
    """ConfigError if the URI asks for the UZO server's own identity and that is not allowed."""
    uri = config.uri.get_secret_value() if config.uri is not None else None
    mechanism = uses_ambient_identity(uri, config.username)
    if mechanism is not None and not allowed:
        raise ConfigError(
            f"uri: authMechanism {mechanism} would authenticate with the UZO server's own "
            "identity (environment, instance metadata, Kerberos or managed identity), which "
            "this server does not allow; give a username and password (SCRAM-SHA-256)"
        )


def database_name(config: MongoDBConfig, parsed: dict[str, Any]) -> str:
    name = config.database or parsed.get("database")
    if not name:
        raise ConfigError("database: give `database` or put it in the URI path")
    return str(name)


def client_kwargs(config: MongoDBConfig, policy: EndpointPolicy) -> dict[str, Any]:
    """Keyword arguments of ``MongoClient`` for this config (the URI goes in ``host``)."""
    kwargs: dict[str, Any] = {
        "serverSelectionTimeoutMS": config.timeout_ms,
        "connectTimeoutMS": config.timeout_ms,
        "tz_aware": True,
        "appname": "uzo",
    }
    given: set[str] = set()
    if config.uri is not None:
        uri = config.uri.get_secret_value()
        given = {key.lower() for key in check_uri_options(uri)}
        kwargs["host"] = uri
        if uri.lower().startswith("mongodb+srv://"):
            kwargs["srv_host_validator"] = SrvHostValidator(policy)
    else:
        kwargs["host"] = config.host
        kwargs["port"] = config.port
    if config.username is not None:
        kwargs["username"] = config.username
    if config.password is not None:
        kwargs["password"] = config.password.get_secret_value()
    if config.auth_source is not None:
        kwargs["authSource"] = config.auth_source
    if config.tls is not None:
        kwargs["tls"] = config.tls
    if config.direct_connection is not None:
        kwargs["directConnection"] = config.direct_connection
    if "sockettimeoutms" not in given:
        kwargs["socketTimeoutMS"] = config.socket_timeout_ms
    return kwargs
