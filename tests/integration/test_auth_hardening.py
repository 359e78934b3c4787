"""Authentication edge cases found by an attack pass: each test failed on the old code."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import TYPE_CHECKING

import jwt
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import make_settings
from tests.factories import TEST_PASSWORD, auth_header, login, register, unique_email
from uzo_api.app import create_app

if TYPE_CHECKING:
    from pathlib import Path

    from uzo_api.db.session import Database
    from uzo_api.settings import Settings

NEW_PASSWORD = "a brand new passphrase"


def _mails_to(home: Path, email: str) -> list[str]:
    tokens = []
    for path in sorted((home / "outbox").glob("*.json")):
        mail = json.loads(path.read_text())
        if mail["to"] == email:
            tokens.append(str(mail["body"].split("token: ", 1)[1].split()[0]))
    return tokens


def _wait_for_mails(home: Path, email: str, count: int, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        tokens = _mails_to(home, email)
        if len(tokens) >= count or time.monotonic() > deadline:
            return tokens
        time.sleep(0.02)


def test_register_is_throttled_per_address(uzo_home: Path, database: Database) -> None:
    settings = make_settings(uzo_home, register_limit_per_ip="2/minute")
    with TestClient(create_app(settings, database)) as client:
        codes = [
            client.post(
                "/api/auth/register",
                json={
                    "email": unique_email("reg"),
                    "password": TEST_PASSWORD,
                    "company_name": "Probe",
                },
            ).status_code
            for _ in range(3)
        ]
    assert codes == [201, 201, 429]


def test_forwarded_for_is_ignored_from_untrusted_peers(uzo_home: Path, database: Database) -> None:
    """Rotating X-Forwarded-For bought a fresh per-address login budget; now it buys nothing."""
    settings = make_settings(uzo_home, login_limit_per_ip="3/minute")
    with TestClient(create_app(settings, database)) as client:
        codes = [
            client.post(
                "/api/auth/login",
                json={"email": unique_email("spoof"), "password": "wrong password"},
                headers={"X-Forwarded-For": f"198.51.100.{i}"},
            ).status_code
            for i in range(4)
        ]
    assert codes == [401, 401, 401, 429]


def test_forgot_password_does_its_work_off_the_request_path(
    client: TestClient, uzo_home: Path
) -> None:
    """The answer comes before any lookup, so known and unknown emails cannot be told apart
    by timing: with the background workers held, the mail for a known account is only
    written once they are released."""
    email = unique_email("offpath")
    register(client, email=email)
    background = client.app.state.services.background  # type: ignore[attr-defined]
    release = threading.Event()
    for _ in range(2):  # occupy both workers
        background.submit("hold", release.wait, 10)
    try:
        for address in (email, unique_email("nobody")):
            resp = client.post("/api/auth/forgot-password", json={"email": address})
            assert resp.status_code == 202
        assert _mails_to(uzo_home, email) == []  # not looked up yet: answered first
    finally:
        release.set()
    assert len(_wait_for_mails(uzo_home, email, 1)) == 1


def test_a_reset_spends_every_outstanding_reset_token(client: TestClient, uzo_home: Path) -> None:
    email = unique_email("twotokens")
    register(client, email=email)
    for _ in range(2):
        assert client.post("/api/auth/forgot-password", json={"email": email}).status_code == 202
    older, newer = _wait_for_mails(uzo_home, email, 2)
    ok = client.post(
        "/api/auth/reset-password", json={"token": newer, "new_password": NEW_PASSWORD}
    )
    assert ok.status_code == 204, ok.text
    reused = client.post(
        "/api/auth/reset-password", json={"token": older, "new_password": "attacker's choice!"}
    )
    assert reused.status_code == 422
    assert reused.json()["field"] == "token"
    login(client, email, NEW_PASSWORD)  # the password is the one set first


def test_api_keys_survive_a_reset_unless_revoked(client: TestClient, uzo_home: Path) -> None:
    email = unique_email("keys")
    register(client, email=email)
    access = login(client, email)["access_token"]
    keys = [
        client.post("/api/auth/api-keys", json={"name": n}, headers=auth_header(access)).json()[
            "key"
        ]
        for n in ("kept", "also")
    ]

    def reset(revoke: bool, password: str) -> None:
        before = len(_mails_to(uzo_home, email))
        client.post("/api/auth/forgot-password", json={"email": email})
        token = _wait_for_mails(uzo_home, email, before + 1)[-1]
        body = {"token": token, "new_password": password, "revoke_api_keys": revoke}
        assert client.post("/api/auth/reset-password", json=body).status_code == 204

    reset(False, NEW_PASSWORD)
    assert all(client.get("/api/auth/me", headers=auth_header(k)).status_code == 200 for k in keys)
    reset(True, "yet another passphrase")
    assert all(client.get("/api/auth/me", headers=auth_header(k)).status_code == 401 for k in keys)


def _token(settings: Settings, **claims: object) -> str:
    now = int(time.time())
    payload: dict[str, object] = {"iss": "uzo", "typ": "access", "iat": now, "exp": now + 300}
    payload.update(claims)
    return jwt.encode(payload, settings.jwt_secret(), algorithm="HS256")


def test_claims_of_the_wrong_type_are_a_401_not_a_500(
    client: TestClient, settings: Settings
) -> None:
    email = unique_email("claims")
    user = register(client, email=email)["user"]
    assert isinstance(user, dict)
    fam = str(uuid.uuid4())
    for claims in (
        {"sub": user["id"], "sid": [user["subscription_id"]], "fam": fam},
        {"sub": {"id": user["id"]}, "sid": user["subscription_id"], "fam": fam},
        {"sub": user["id"], "sid": user["subscription_id"], "fam": 12345},
        {"sub": user["id"], "sid": user["subscription_id"], "fam": fam, "iat": "yesterday"},
    ):
        resp = client.get("/api/auth/me", headers=auth_header(_token(settings, **claims)))
        assert resp.status_code == 401, (claims, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")


def test_a_token_whose_session_no_longer_exists_is_refused(
    client: TestClient, settings: Settings, database: Database
) -> None:
    email = unique_email("nofamily")
    register(client, email=email)
    access = str(login(client, email)["access_token"])
    assert client.get("/api/auth/me", headers=auth_header(access)).status_code == 200
    claims = jwt.decode(access, options={"verify_signature": False})
    with database.owner_engine.begin() as conn:  # the session's rows are gone (e.g. purged)
        conn.execute(text("DELETE FROM refresh_tokens WHERE family_id = :f"), {"f": claims["fam"]})
    resp = client.get("/api/auth/me", headers=auth_header(access))
    assert resp.status_code == 401
    # a validly signed token for a family that never existed is refused the same way
    forged = _token(settings, sub=claims["sub"], sid=claims["sid"], fam=str(uuid.uuid4()))
    assert client.get("/api/auth/me", headers=auth_header(forged)).status_code == 401
