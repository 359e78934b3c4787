"""Connector credentials at rest: MultiFernet encryption with key rotation, and redaction.

``UZO_SECRET_KEYS`` holds comma-separated Fernet keys: the first encrypts, every
key decrypts, so a new key is put first and the old ones stay until
:meth:`CredentialVault.rotate` has re-encrypted every stored token. A config is
stored split in two: the public part (shown by the API) and the secret part
(encrypted, never returned), see :func:`split_secrets`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from uzo_connectors.errors import ConfigError, ConnectorError
from uzo_connectors.registry import secret_fields

if TYPE_CHECKING:
    from uzo_connectors.base import ConnectorConfig

MASK = "********"

# Keys that look secret in a config dict whose model is unknown.
_SECRET_WORDS = ("password", "secret", "token", "credential", "private_key", "api_key", "apikey")


class CredentialError(ConnectorError):
    """A stored credential cannot be decrypted (wrong key, corrupted or not a token)."""


def generate_key() -> str:
    """A new random Fernet key (url-safe base64 text), e.g. for UZO_SECRET_KEYS."""
    return Fernet.generate_key().decode("ascii")


def parse_keys(keys: str | Sequence[str]) -> list[str]:
    """``"k1,k2"`` or ``["k1", "k2"]`` -> stripped, non-empty keys (order kept)."""
    items = keys.split(",") if isinstance(keys, str) else list(keys)
    return [k.strip() for k in items if k.strip()]


class CredentialVault:
    """Encrypts credential dicts with the first key; decrypts with any key."""

    def __init__(self, keys: str | Sequence[str]) -> None:
        parsed = parse_keys(keys)
        if not parsed:
            raise ConfigError(
                "UZO_SECRET_KEYS is empty: set it to one or more comma-separated Fernet keys "
                "(generate one with uzo_connectors.credentials.generate_key())"
            )
        fernets = []
        for position, key in enumerate(parsed, start=1):
            try:
                fernets.append(Fernet(key.encode("ascii")))
            except (ValueError, UnicodeEncodeError):
                raise ConfigError(
                    f"UZO_SECRET_KEYS: key #{position} is not a valid Fernet key "
                    "(32 url-safe base64-encoded bytes)"
                ) from None
        self._fernet = MultiFernet(fernets)
        self.key_count = len(fernets)

    def __repr__(self) -> str:
        return f"CredentialVault(keys={self.key_count})"

    @classmethod
    def from_settings(cls) -> CredentialVault:
        from uzo_connectors.settings import get_settings

        return cls(get_settings().secret_key_list())

    def encrypt(self, secrets: Mapping[str, Any]) -> str:
        plain = {k: _plain(v) for k, v in secrets.items()}
        return self._fernet.encrypt(json.dumps(plain, sort_keys=True).encode("utf-8")).decode(
            "ascii"
        )

    def decrypt(self, token: str) -> dict[str, Any]:
        try:
            data = self._fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError, TypeError, ValueError):
            raise CredentialError(
                "stored credentials cannot be decrypted: none of the keys in UZO_SECRET_KEYS "
                "matches (was a key removed before `uzo secrets rotate` ran?) "
                "or the stored value is corrupted"
            ) from None
        value = json.loads(data)
        if not isinstance(value, dict):
            raise CredentialError("stored credentials are not a JSON object")
        return value

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` under the current (first) key."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeEncodeError, TypeError, ValueError):
            raise CredentialError(
                "stored credentials cannot be rotated: none of the keys in UZO_SECRET_KEYS "
                "decrypts them"
            ) from None


def _plain(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def split_secrets(
    config_model: type[ConnectorConfig], config: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(public, secret): the secret part holds the model's SecretStr fields, as plain text."""
    names = set(secret_fields(config_model))
    aliases = {config_model.model_fields[n].alias for n in names} - {None}
    public: dict[str, Any] = {}
    secret: dict[str, Any] = {}
    for key, value in config.items():
        if key in names or key in aliases:
            if value is not None:
                secret[key] = _plain(value)
        else:
            public[key] = value
    return public, secret


def merge_secrets(public: Mapping[str, Any], secret: Mapping[str, Any]) -> dict[str, Any]:
    """The full config again (secrets override anything of the same name in ``public``)."""
    merged = dict(public)
    merged.update(secret)
    return merged


def _looks_secret(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS) or lowered.endswith("_key")


def _redact_value(key: str, value: Any, names: set[str] | None) -> Any:
    if isinstance(value, SecretStr):
        return MASK
    secret = key in names if names is not None else _looks_secret(key)
    if secret and value is not None:
        return MASK
    if isinstance(value, Mapping):
        return {k: _redact_value(str(k), v, None) for k, v in value.items()}
    return value


def redact(
    config: ConnectorConfig | Mapping[str, Any],
    config_model: type[ConnectorConfig] | None = None,
) -> dict[str, Any]:
    """A copy safe to log or return: secret values replaced by ``"********"``.

    With a model (or a config instance) its SecretStr fields are the secrets;
    for a bare dict, keys that look secret (password, token, ..._key) are masked.
    """
    if isinstance(config, Mapping):
        data = dict(config)
    else:
        config_model = type(config)
        data = config.model_dump()
    names = set(secret_fields(config_model)) if config_model is not None else None
    return {k: _redact_value(k, v, names) for k, v in data.items()}
