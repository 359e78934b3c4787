"""Connector errors: each says what went wrong in words a user can act on."""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every connector error. Messages never contain secrets."""


class ConfigError(ConnectorError):
    """The configuration is invalid (names the field)."""


class ConnectionTestError(ConnectorError):
    """The endpoint could not be reached or refused the credentials."""


class MissingDependencyError(ConnectorError):
    """An optional dependency is not installed; the message names the extra (or package)."""

    def __init__(self, package: str, extra: str | None, connector: str) -> None:
        how = (
            f"`uv sync --extra {extra}` (or `pip install 'uzo[{extra}]'`)"
            if extra
            else f"`pip install {package}` in UZO's environment"
        )
        super().__init__(
            f"the {connector!r} connector needs the Python package {package!r}: install it with "
            + how
        )
        self.package = package
        self.extra = extra


class BlockedEndpointError(ConnectorError):
    """An endpoint resolves to an internal address (SSRF protection)."""


class HostNotFoundError(BlockedEndpointError):
    """A host name does not resolve. Nothing is connected to, as for any blocked endpoint,
    but the cause is the name (or DNS), not UZO's policy: the API reports it as a failed
    connection test rather than a refusal."""


class DatasetNotFoundError(ConnectorError):
    """The table, file or collection does not exist."""


class WriteError(ConnectorError):
    """A write failed; the target was left as it was."""
