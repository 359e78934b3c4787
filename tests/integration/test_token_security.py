"""Forged, expired and malformed access tokens are refused with a 401 problem."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import TYPE_CHECKING

import jwt
import pytest

from tests.factories import auth_header, login, register, unique_email
from uzo_api.auth import crypto

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from uzo_api.settings import Settings


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.fixture
def identity(client: TestClient) -> dict[str, str]:
    email = unique_email("tok")
    reg = register(client, email=email)
    tokens = login(client, email)
    user = reg["user"]
    assert isinstance(user, dict)
    claims = jwt.decode(str(tokens["access_token"]), options={"verify_signature": False})
    return {
        "sub": str(user["id"]),
        "sid": str(user["subscription_id"]),
        "fam": str(claims["fam"]),
        "access": str(tokens["access_token"]),
    }


def _claims(identity: dict[str, str], **overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": "uzo",
        "sub": identity["sub"],
        "sid": identity["sid"],
        "fam": identity["fam"],
        "typ": "access",
        "iat": now,
        "exp": now + 300,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _assert_refused(client: TestClient, token: str) -> None:
    resp = client.get("/api/auth/me", headers=auth_header(token))
    assert resp.status_code == 401, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.headers["www-authenticate"] == "Bearer"
    assert resp.json()["type"] == "/problems/unauthorized"


def test_a_well_formed_token_is_accepted(
    client: TestClient, identity: dict[str, str], settings: Settings
) -> None:
    token = jwt.encode(_claims(identity), settings.jwt_secret(), algorithm="HS256")
    assert client.get("/api/auth/me", headers=auth_header(token)).status_code == 200


def test_alg_none_is_refused(client: TestClient, identity: dict[str, str]) -> None:
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(identity))}."
    _assert_refused(client, token)


def test_other_hmac_algorithm_is_refused(
    client: TestClient, identity: dict[str, str], settings: Settings
) -> None:
    token = jwt.encode(_claims(identity), settings.jwt_secret(), algorithm="HS512")
    _assert_refused(client, token)


def test_missing_exp_is_refused(
    client: TestClient, identity: dict[str, str], settings: Settings
) -> None:
    token = jwt.encode(_claims(identity, exp=None), settings.jwt_secret(), algorithm="HS256")
    _assert_refused(client, token)


def test_expired_token_is_refused(
    client: TestClient, identity: dict[str, str], settings: Settings
) -> None:
    past = int(time.time()) - 3600
    token = jwt.encode(
        _claims(identity, iat=past - 60, exp=past), settings.jwt_secret(), algorithm="HS256"
    )
    _assert_refused(client, token)


def test_tampered_signature_is_refused(client: TestClient, identity: dict[str, str]) -> None:
    header, payload, signature = identity["access"].split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    _assert_refused(client, f"{header}.{payload}.{flipped}")


def test_tampered_payload_is_refused(client: TestClient, identity: dict[str, str]) -> None:
    header, _, signature = identity["access"].split(".")
    forged = _b64(_claims(identity, sid=str(uuid.uuid4())))
    _assert_refused(client, f"{header}.{forged}.{signature}")


def test_token_signed_with_another_key_is_refused(
    client: TestClient, identity: dict[str, str]
) -> None:
    token = jwt.encode(_claims(identity), "someone else's secret" * 3, algorithm="HS256")
    _assert_refused(client, token)


def test_wrong_issuer_or_type_is_refused(
    client: TestClient, identity: dict[str, str], settings: Settings
) -> None:
    key = settings.jwt_secret()
    _assert_refused(client, jwt.encode(_claims(identity, iss="evil"), key, algorithm="HS256"))
    _assert_refused(client, jwt.encode(_claims(identity, typ="refresh"), key, algorithm="HS256"))


def test_token_for_a_user_of_another_tenant_is_refused(
    client: TestClient, identity: dict[str, str], settings: Settings
) -> None:
    other = register(client)
    other_sub = other["user"]["subscription_id"]  # type: ignore[index]
    token = jwt.encode(_claims(identity, sid=other_sub), settings.jwt_secret(), algorithm="HS256")
    _assert_refused(client, token)


def test_garbage_and_missing_credentials(client: TestClient) -> None:
    _assert_refused(client, "not.a.jwt")
    resp = client.get("/api/auth/me")
    assert resp.status_code == 401
    assert resp.json()["detail"] == "missing bearer token"


def test_decoder_requires_exp_directly(settings: Settings) -> None:
    token = jwt.encode(
        {
            "iss": "uzo",
            "sub": str(uuid.uuid4()),
            "sid": str(uuid.uuid4()),
            "fam": "x",
            "typ": "access",
            "iat": int(time.time()),
        },
        settings.jwt_secret(),
        algorithm="HS256",
    )
    with pytest.raises(crypto.InvalidToken, match="exp"):
        crypto.decode_access_token(token, secret=settings.jwt_secret(), issuer="uzo")
