"""libpq's connection parameters, for every path UZO reaches PostgreSQL through.

psycopg (the ``postgres`` connector's metadata, the ``sqlalchemy`` connector's
``postgresql+psycopg``/``psycopg2``) and the ADBC driver (the ``postgres``
connector's rows) all run libpq, and libpq falls back on the identity of the
process it runs in wherever a parameter is not given: ``PGPASSWORD`` and the
other ``PG*`` variables, the password file (``PGPASSFILE``, ``~/.pgpass``), a
client certificate in ``~/.postgresql/``, Kerberos tickets (GSSAPI), services
from ``PGSERVICEFILE``. A tenant's connector must never log in as the UZO
server, so unless the operator allows ambient credentials for the connector
type every such parameter is given explicitly here, pointing nowhere:

- ``password=''`` when the config has none (an explicit value: the environment
  is not read), ``passfile`` at a path that cannot exist;
- ``sslcertmode=disable`` (no client certificate is ever sent) and
  ``sslcert``/``sslkey`` at paths that cannot exist;
- ``gssencmode=disable`` and ``require_auth`` limited to password methods (or
  none), so a server asking for GSSAPI, SSPI or OAuth is refused.

A service (``PGSERVICE``) only fills in parameters that are not given, and
every credential-bearing one is given above. Checked against libpq 18 (psycopg
binary) and the libpq built into adbc-driver-postgresql 1.13.
"""

from __future__ import annotations

from typing import Literal

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
SSL_MODES: tuple[str, ...] = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

# Below /dev/null nothing can exist (it is not a directory), whoever runs the server.
NOWHERE = "/dev/null/uzo-no-ambient-credentials"

# Authentication methods a server may ask for: the ones that use the config's password
# (or none at all, for a server that trusts the connection).
REQUIRE_AUTH = "password,md5,scram-sha-256,none"


def no_ambient_credentials(password: str | None) -> dict[str, str]:
    """libpq parameters that leave it only the config's own credentials."""
    return {
        "password": password or "",
        "passfile": f"{NOWHERE}/pgpass",
        "sslcertmode": "disable",
        "sslcert": f"{NOWHERE}/postgresql.crt",
        "sslkey": f"{NOWHERE}/postgresql.key",
        "gssencmode": "disable",
        "require_auth": REQUIRE_AUTH,
    }


def pinned_host(host: str, addresses: tuple[str, ...]) -> dict[str, str]:
    """``host``/``hostaddr`` for libpq: connect to the checked addresses, verify TLS by name.

    libpq pairs the two lists, so the name is repeated once per address. A unix-socket
    directory (no addresses) stays the ``host``.
    """
    if not addresses:
        return {"host": host}
    return {"host": ",".join([host] * len(addresses)), "hostaddr": ",".join(addresses)}
