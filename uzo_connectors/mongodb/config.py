"""MongoDB connection settings: the config model, endpoint checks and secret-free errors.

A connection is given either as a URI (``mongodb://`` or ``mongodb+srv://``,
kept as a secret because it may embed a password) or as host/port/credentials.
Every host the client will reach is checked with the SSRF policy before
connecting: each seed of a ``mongodb://`` URI, each target of the SRV records
of a ``mongodb+srv://`` URI (also when pymongo re-polls them), and, after
connecting, each member the server reports (replica-set discovery).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, quote_plus, unquote

from pydantic import Field, SecretStr, model_validator

from uzo_connectors.base import ConnectorConfig
from uzo_connectors.errors import BlockedEndpointError, ConfigError
from uzo_connectors.registry import import_optional
from uzo_connectors.sql.engine import check_hosts, scrub

if TYPE_CHECKING:
    from collections.abc import Iterable

    from uzo_connectors.ssrf import EndpointPolicy

_USERINFO = re.compile(r"(mongodb(?:\+srv)?://)[^@/?#\s]*@", re.IGNORECASE)


class MongoDBConfig(ConnectorConfig):
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
    nested: Literal["flatten", "struct"] = Field(
        default="flatten",
        description="sub-documents as dotted columns (flatten) or as Arrow structs (struct)",
    )
    sample_size: int = Field(
        default=1000, ge=1, le=100_000, description="documents sampled to infer a schema"
    )
    write_batch_size: int = Field(default=1000, ge=1, le=100_000)

    @model_validator(mode="after")
    def _one_endpoint(self) -> MongoDBConfig:
        if (self.uri is None) == (self.host is None):
            raise ValueError("give either `uri` or `host`")
        if self.uri is not None:
            text = self.uri.get_secret_value()
            if not text.lower().startswith(("mongodb://", "mongodb+srv://")):
                raise ValueError("`uri` must start with mongodb:// or mongodb+srv://")
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
    if config.uri is not None:
        uri = config.uri.get_secret_value()
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
    return kwargs
