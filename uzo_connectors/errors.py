"""Connector errors: each says what went wrong in words a user can act on."""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every connector error. Messages never contain secrets."""


class ConfigError(ConnectorError):
    """The configuration is invalid (names the field)."""


class ConnectionTestError(ConnectorError):
    """The endpoint could not be reached or refused the credentials."""


class MissingDependencyError(ConnectorError):
    """An optional dependency is not installed; the message names the extra."""

    def __init__(self, package: str, extra: str, connector: str) -> None:
        super().__init__(
            f"the {connector!r} connector needs the Python package {package!r}: "
            f"install it with `uv sync --extra {extra}` (or `pip install 'uzo[{extra}]'`)"
        )
        self.package = package
        self.extra = extra


class BlockedEndpointError(ConnectorError):
    """An endpoint resolves to an internal address (SSRF protection)."""


class DatasetNotFoundError(ConnectorError):
    """The table, file or collection does not exist."""


class WriteError(ConnectorError):
    """A write failed; the target was left as it was."""
