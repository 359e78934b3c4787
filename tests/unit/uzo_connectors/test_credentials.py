"""Credential encryption (MultiFernet, rotation), split/merge of secrets, redaction, settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from pydantic import SecretStr

from uzo_connectors.credentials import (
    MASK,
    CredentialError,
    CredentialVault,
    generate_key,
    merge_secrets,
    redact,
    split_secrets,
)
from uzo_connectors.errors import ConfigError
from uzo_connectors.object_store.s3 import S3Config
from uzo_connectors.settings import ConnectorSettings, get_settings

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(autouse=True)
def _clean_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_round_trip() -> None:
    vault = CredentialVault([generate_key()])
    token = vault.encrypt({"secret_access_key": SecretStr("s3cr3t"), "n": 1})
    assert "s3cr3t" not in token
    assert vault.decrypt(token) == {"secret_access_key": "s3cr3t", "n": 1}


def test_rotation_keeps_old_tokens_readable_and_rewraps_them() -> None:
    old, new = generate_key(), generate_key()
    token = CredentialVault([old]).encrypt({"password": "pw"})
    both = CredentialVault(f"{new}, {old}")  # comma-separated, new key first
    assert both.decrypt(token) == {"password": "pw"}
    rotated = both.rotate(token)
    assert CredentialVault([new]).decrypt(rotated) == {"password": "pw"}
    with pytest.raises(CredentialError):
        CredentialVault([old]).decrypt(rotated)


def test_wrong_key_or_garbage_gives_a_clear_error_without_leaking() -> None:
    token = CredentialVault([generate_key()]).encrypt({"password": "pw"})
    other_key = generate_key()
    for bad in (token, "not-a-token", "ünïcode"):
        with pytest.raises(CredentialError, match="cannot be decrypted") as info:
            CredentialVault([other_key]).decrypt(bad)
        assert other_key not in str(info.value)
        assert info.value.__cause__ is None
        assert info.value.__suppress_context__
    with pytest.raises(CredentialError, match="cannot be rotated"):
        CredentialVault([other_key]).rotate(token)


def test_invalid_keys_are_config_errors_naming_the_position() -> None:
    with pytest.raises(ConfigError, match="empty"):
        CredentialVault("")
    with pytest.raises(ConfigError, match="key #2") as info:
        CredentialVault([generate_key(), "short-key"])
    assert "short-key" not in str(info.value)
    assert repr(CredentialVault([generate_key()])) == "CredentialVault(keys=1)"


def test_vault_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    key = generate_key()
    monkeypatch.setenv("UZO_SECRET_KEYS", f"{key},{generate_key()}")
    vault = CredentialVault.from_settings()
    assert vault.key_count == 2
    assert key not in repr(get_settings())


def test_split_and_merge_secrets() -> None:
    config = {
        "bucket": "data",
        "access_key_id": "AKIA",
        "secret_access_key": "s3cr3t",
        "session_token": None,
    }
    public, secret = split_secrets(S3Config, config)
    assert public == {"bucket": "data", "access_key_id": "AKIA"}
    assert secret == {"secret_access_key": "s3cr3t"}
    assert merge_secrets(public, secret) == {k: v for k, v in config.items() if v is not None}


def test_redact_with_a_model_and_with_a_bare_dict() -> None:
    model = S3Config(bucket="data", access_key_id="AKIA", secret_access_key=SecretStr("s3cr3t"))
    redacted = redact(model)
    assert redacted["secret_access_key"] == MASK
    assert redacted["session_token"] is None  # unset stays unset
    assert redacted["access_key_id"] == "AKIA"
    assert "s3cr3t" not in repr(model)
    loose = redact(
        {
            "host": "h",
            "password": "pw",
            "api_key": "k",
            "nested": {"token": "t", "x": 1},
            "wrapped": SecretStr("w"),
        }
    )
    assert loose == {
        "host": "h",
        "password": MASK,
        "api_key": MASK,
        "nested": {"token": MASK, "x": 1},
        "wrapped": MASK,
    }
    assert redact({"bucket": "b", "secret_access_key": "x"}, S3Config)["secret_access_key"] == MASK


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UZO_CONNECTORS_ALLOW_LOOPBACK", "true")
    monkeypatch.setenv("UZO_CONNECTORS_ALLOWED_HOSTS", "db.internal, 10.1.0.0/16")
    settings = get_settings()
    assert settings.allowed_hosts == ["db.internal", "10.1.0.0/16"]
    policy = settings.endpoint_policy()
    assert policy.allow_loopback
    assert not policy.allow_private
    assert policy.allowed == ("db.internal", "10.1.0.0/16")
    assert ConnectorSettings(allowed_hosts='["a", "b"]').allowed_hosts == ["a", "b"]  # type: ignore[arg-type]
    assert ConnectorSettings().secret_key_list() == []
