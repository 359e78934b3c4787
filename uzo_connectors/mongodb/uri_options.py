"""Which options a tenant's MongoDB URI may carry.

pymongo takes a lot from the URI's query string, and some options make it use
the UZO server's own resources: ``authMechanism=MONGODB-AWS`` without a key
(credentials from the environment or instance metadata), ``GSSAPI`` (the
server's Kerberos tickets), ``MONGODB-OIDC`` with ``ENVIRONMENT:azure|gcp|k8s``
(managed identity, a local token file), ``MONGODB-X509`` and the ``tls*File``
options (key, CA and CRL files on the server), ``proxyHost`` (a proxy the
endpoint check never sees). The options are split from the URI without any
DNS lookup (as pymongo does, not normalised, not validated) and checked
against an allow-list, with bounds on every timeout and pool size. The
mechanisms that use the server's identity are allowed only when the operator
allows ambient credentials for ``mongodb`` (checked when the client is built).
"""

from __future__ import annotations

import re
from typing import Any

from uzo_connectors.errors import ConfigError
from uzo_connectors.options import (
    CREDENTIAL_SOURCE,
    LOCAL_FILE,
    PROXY,
    Check,
    check_options,
    integer,
    one_of,
    plain_text,
)
from uzo_connectors.registry import import_optional

_BOOL = one_of("true", "false")
_name = plain_text(128)
_SRV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,62}$")

# Mechanisms that authenticate with the config's own user name and password.
OWN_MECHANISMS = ("SCRAM-SHA-1", "SCRAM-SHA-256", "PLAIN")
# Mechanisms that may use the UZO server's identity (MONGODB-AWS only without a key).
AMBIENT_MECHANISMS = ("MONGODB-AWS", "GSSAPI", "MONGODB-OIDC")


def _mechanism(value: Any) -> str:
    text = str(value)
    if text.upper() == "MONGODB-X509":
        raise ValueError(
            "MONGODB-X509 needs a client certificate file on the UZO server; use "
            + ", ".join(OWN_MECHANISMS)
        )
    return str(one_of(*OWN_MECHANISMS, *AMBIENT_MECHANISMS)(text))


_PROPERTIES: dict[str, Check] = {
    "SERVICE_NAME": _name,
    "SERVICE_REALM": _name,
    "CANONICALIZE_HOST_NAME": one_of("false", "none", "true", "forward", "forwardAndReverse"),
    "AWS_SESSION_TOKEN": plain_text(4096, forbidden=","),
    "ENVIRONMENT": one_of("azure", "gcp", "k8s"),
    "TOKEN_RESOURCE": _name,
}


def _properties(value: Any) -> str:
    """``authMechanismProperties``: ``KEY:value,KEY:value``, keys from the allow-list."""
    text = str(value)
    pairs: dict[str, str] = {}
    for item in filter(None, text.split(",")):
        key, sep, prop = item.partition(":")
        if not sep:
            raise ValueError(f"{item!r} is not KEY:value")
        pairs[key] = prop
    check_options(
        pairs,
        _PROPERTIES,
        field="uri",
        what="authMechanismProperties key",
        refused={"OIDC_CALLBACK": CREDENTIAL_SOURCE, "SERVICE_HOST": CREDENTIAL_SOURCE},
    )
    return text


def _tags(value: Any) -> Any:
    values = value if isinstance(value, list) else [value]
    for tag in values:
        plain_text(256)(tag)
    return value


def _compressors(value: Any) -> str:
    text = str(value)
    for name in filter(None, text.split(",")):
        one_of("snappy", "zlib", "zstd")(name)
    return text


def _srv_service(value: Any) -> str:
    text = str(value)
    if not _SRV_NAME.match(text):
        raise ValueError("must be a service name (letters, digits, _ and -)")
    return text


ALLOWED: dict[str, Check] = {
    "authSource": _name,
    "authMechanism": _mechanism,
    "authMechanismProperties": _properties,
    "replicaSet": _name,
    "tls": _BOOL,
    "ssl": _BOOL,
    "tlsInsecure": _BOOL,
    "tlsAllowInvalidCertificates": _BOOL,
    "tlsAllowInvalidHostnames": _BOOL,
    "tlsDisableOCSPEndpointCheck": _BOOL,
    "tlsDisableCertificateRevocationCheck": _BOOL,
    "retryWrites": _BOOL,
    "retryReads": _BOOL,
    "journal": _BOOL,
    "directConnection": _BOOL,
    "loadBalanced": _BOOL,
    "w": plain_text(64),
    "wTimeoutMS": integer(0, 300_000),
    "readPreference": one_of(
        "primary", "primaryPreferred", "secondary", "secondaryPreferred", "nearest"
    ),
    "readPreferenceTags": _tags,
    "maxStalenessSeconds": integer(-1, 86_400),
    "readConcernLevel": one_of("local", "majority", "linearizable", "available", "snapshot"),
    "appname": _name,
    "compressors": _compressors,
    "zlibCompressionLevel": integer(-1, 9),
    "connectTimeoutMS": integer(1, 300_000),
    "serverSelectionTimeoutMS": integer(1, 300_000),
    # A read may wait for a long sort or aggregation: up to an hour (never unbounded, 0).
    "socketTimeoutMS": integer(1, 3_600_000),
    "timeoutMS": integer(1, 3_600_000),
    "waitQueueTimeoutMS": integer(1, 300_000),
    "heartbeatFrequencyMS": integer(500, 300_000),
    "localThresholdMS": integer(0, 60_000),
    "maxPoolSize": integer(1, 100),
    "minPoolSize": integer(0, 10),
    "maxConnecting": integer(1, 10),
    "maxIdleTimeMS": integer(0, 3_600_000),
    "srvMaxHosts": integer(0, 100),
    "srvServiceName": _srv_service,
    "uuidRepresentation": one_of(
        "unspecified", "standard", "pythonLegacy", "javaLegacy", "csharpLegacy"
    ),
    "serverMonitoringMode": one_of("auto", "stream", "poll"),
}

REFUSED: dict[str, str] = {
    **dict.fromkeys(
        (
            "tlsCertificateKeyFile",
            "tlsCertificateKeyFilePassword",
            "tlsCAFile",
            "tlsCRLFile",
            "ssl_certfile",
            "ssl_keyfile",
            "ssl_ca_certs",
            "ssl_crlfile",
            "ssl_pem_passphrase",
        ),
        LOCAL_FILE,
    ),
    **dict.fromkeys(("proxyHost", "proxyPort", "proxyUsername", "proxyPassword"), PROXY),
}


def split(uri: str) -> tuple[str | None, dict[str, Any]]:
    """The URI's user name (or None) and its raw options, without any DNS lookup."""
    uri_parser = import_optional("pymongo.uri_parser", "mongodb")
    scheme_free = uri.split("://", 1)[1] if "://" in uri else uri
    hosts_and_db, _, query = scheme_free.partition("?")
    host_part = hosts_and_db.partition("/")[0]
    userinfo, at, _ = host_part.rpartition("@")
    username = userinfo.partition(":")[0] if at else None
    if not query:
        return username or None, {}
    try:
        options = uri_parser.split_options(query, validate=False, warn=False, normalize=False)
    except Exception as exc:
        raise ConfigError(f"uri: the options are not valid ({type(exc).__name__})") from None
    cased = getattr(options, "cased_key", lambda key: key)  # keep the user's spelling
    return username or None, {cased(key): value for key, value in options.items()}


def check_uri_options(uri: str) -> dict[str, Any]:
    """The URI's options, checked; ConfigError naming the first refused one."""
    _user, options = split(uri)
    return check_options(
        options,
        ALLOWED,
        field="uri",
        what="URI option",
        refused=REFUSED,
        case_sensitive=False,
    )


def uses_ambient_identity(uri: str | None, username: str | None) -> str | None:
    """The authMechanism that would use the UZO server's identity, if the config asks for one."""
    if uri is None:
        return None
    uri_user, options = split(uri)
    checked = check_options(
        options, ALLOWED, field="uri", what="URI option", refused=REFUSED, case_sensitive=False
    )
    mechanism = checked.get("authMechanism")
    if mechanism == "MONGODB-AWS" and (username or uri_user):
        return None  # an explicit access key (user name) and secret (password)
    return str(mechanism) if mechanism in AMBIENT_MECHANISMS else None
