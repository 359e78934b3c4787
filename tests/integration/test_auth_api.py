"""The authentication API end to end, against the real database."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from sqlalchemy import text

from tests.factories import TEST_PASSWORD, auth_header, login, register, unique_email

if TYPE_CHECKING:
    from pathlib import Path

    from fastapi.testclient import TestClient

    from uzo_api.db.session import Database

PROBLEM = "application/problem+json"


def _outbox_token(home: Path, email: str, timeout: float = 10.0) -> str:
    """The reset token of the newest mail to ``email`` (mails are sent off the request path)."""
    deadline = time.monotonic() + timeout
    while True:
        mails = sorted((home / "outbox").glob("*.json"))
        for path in reversed(mails):
            mail = json.loads(path.read_text())
            if mail["to"] == email:
                return str(mail["body"].split("token: ", 1)[1].split()[0])
        if time.monotonic() > deadline:
            raise AssertionError(f"no mail to {email}")
        time.sleep(0.02)


def test_register_login_me_api_key_flow(client: TestClient) -> None:
    email = unique_email("flow")
    created = register(client, email=email, company="Flow Inc")
    assert created["subscription"]["plan_key"] == "standard"  # type: ignore[index]
    assert created["user"]["is_subscription_owner"] is True  # type: ignore[index]
    assert "password" not in json.dumps(created)

    tokens = login(client, email)
    assert tokens["token_type"] == "bearer"
    me = client.get("/api/auth/me", headers=auth_header(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json()["user"]["email"] == email
    assert me.json()["auth_method"] == "jwt"

    made = client.post(
        "/api/auth/api-keys", json={"name": "ci"}, headers=auth_header(tokens["access_token"])
    )
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    assert key.startswith("uzo_")

    via_key = client.get("/api/auth/me", headers=auth_header(key))
    assert via_key.status_code == 200
    assert via_key.json()["auth_method"] == "api_key"
    assert via_key.json()["user"]["id"] == me.json()["user"]["id"]

    listed = client.get("/api/auth/api-keys", headers=auth_header(key)).json()["items"]
    assert [k["id"] for k in listed] == [made.json()["id"]]
    assert "key" not in listed[0]
    assert key not in json.dumps(listed)

    revoked = client.delete(f"/api/auth/api-keys/{made.json()['id']}", headers=auth_header(key))
    assert revoked.status_code == 204
    after = client.get("/api/auth/me", headers=auth_header(key))
    assert after.status_code == 401
    assert after.headers["content-type"].startswith(PROBLEM)


def test_api_keys_are_stored_hashed(client: TestClient, database: Database) -> None:
    email = unique_email()
    register(client, email=email)
    access = login(client, email)["access_token"]
    key = client.post("/api/auth/api-keys", json={"name": "k"}, headers=auth_header(access))
    secret = key.json()["key"]
    with database.owner_engine.connect() as conn:
        stored = conn.execute(
            text("SELECT key_hash, prefix FROM api_keys WHERE id = :id"), {"id": key.json()["id"]}
        ).one()
    assert secret not in stored.key_hash
    assert stored.prefix in secret


def test_tampered_or_unknown_api_key_is_refused(client: TestClient) -> None:
    email = unique_email()
    register(client, email=email)
    access = login(client, email)["access_token"]
    key = client.post("/api/auth/api-keys", json={"name": "k"}, headers=auth_header(access))
    secret = key.json()["key"]
    tampered = secret[:-3] + ("aaa" if not secret.endswith("aaa") else "bbb")
    assert client.get("/api/auth/me", headers=auth_header(tampered)).status_code == 401
    assert client.get("/api/auth/me", headers=auth_header("uzo_000000000000_x")).status_code == 401


def test_expired_api_key_is_refused(client: TestClient, database: Database) -> None:
    email = unique_email()
    register(client, email=email)
    access = login(client, email)["access_token"]
    key = client.post(
        "/api/auth/api-keys", json={"name": "k", "expires_in_days": 1}, headers=auth_header(access)
    ).json()
    assert client.get("/api/auth/me", headers=auth_header(key["key"])).status_code == 200
    with database.owner_engine.begin() as conn:
        conn.execute(
            text("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = :id"),
            {"id": key["id"]},
        )
    assert client.get("/api/auth/me", headers=auth_header(key["key"])).status_code == 401


def test_duplicate_email_is_a_conflict_naming_the_field(client: TestClient) -> None:
    email = unique_email()
    register(client, email=email)
    again = client.post(
        "/api/auth/register",
        json={"email": email.upper(), "password": TEST_PASSWORD, "company_name": "Other"},
    )
    assert again.status_code == 409
    assert again.headers["content-type"].startswith(PROBLEM)
    assert again.json()["field"] == "email"
    assert again.json()["type"] == "/problems/conflict"


def test_register_rejects_unknown_fields_and_weak_passwords(client: TestClient) -> None:
    resp = client.post(
        "/api/auth/register",
        json={
            "email": unique_email(),
            "password": TEST_PASSWORD,
            "company_name": "X",
            "is_admin": True,
        },
    )
    assert resp.status_code == 422
    body = resp.json()
    assert body["field"] == "body.is_admin"
    assert body["errors"][0]["message"] == "unknown field"
    weak = client.post(
        "/api/auth/register",
        json={"email": unique_email(), "password": "short", "company_name": "X"},
    )
    assert weak.status_code == 422
    assert weak.json()["field"] == "body.password"
    bad_email = client.post(
        "/api/auth/register",
        json={"email": "not-an-email", "password": TEST_PASSWORD, "company_name": "X"},
    )
    assert bad_email.json()["field"] == "body.email"


def test_wrong_password_and_unknown_email_look_the_same(client: TestClient) -> None:
    email = unique_email()
    register(client, email=email)
    wrong = client.post("/api/auth/login", json={"email": email, "password": "not the password"})
    unknown = client.post(
        "/api/auth/login", json={"email": unique_email(), "password": "not the password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]


def test_refresh_rotates_and_reuse_revokes_the_family(client: TestClient) -> None:
    email = unique_email()
    register(client, email=email)
    first = login(client, email)
    second = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert (
        client.get("/api/auth/me", headers=auth_header(rotated["access_token"])).status_code == 200
    )

    # an attacker replays the spent token: refused, and the whole session dies
    replay = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    legit = client.post("/api/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert legit.status_code == 401
    me = client.get("/api/auth/me", headers=auth_header(rotated["access_token"]))
    assert me.status_code == 401

    # other sessions of the same user are unaffected
    other = login(client, email)
    assert client.get("/api/auth/me", headers=auth_header(other["access_token"])).status_code == 200


def test_expired_refresh_token_is_refused(client: TestClient, database: Database) -> None:
    email = unique_email()
    register(client, email=email)
    tokens = login(client, email)
    with database.owner_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE refresh_tokens SET expires_at = now() - interval '1 second' "
                "WHERE user_id = (SELECT id FROM users WHERE email = :e)"
            ),
            {"e": email},
        )
    resp = client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert resp.status_code == 401


def test_logout_ends_the_session(client: TestClient) -> None:
    email = unique_email()
    register(client, email=email)
    tokens = login(client, email)
    out = client.post("/api/auth/logout", headers=auth_header(tokens["access_token"]))
    assert out.status_code == 204
    assert (
        client.get("/api/auth/me", headers=auth_header(tokens["access_token"])).status_code == 401
    )
    again = client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 401


def test_forgot_and_reset_password(client: TestClient, settings: object, uzo_home: Path) -> None:
    email = unique_email("reset")
    register(client, email=email)
    session = login(client, email)
    unknown = client.post("/api/auth/forgot-password", json={"email": unique_email()})
    sent = client.post("/api/auth/forgot-password", json={"email": email})
    assert unknown.status_code == sent.status_code == 202
    assert unknown.json() == sent.json()  # no account enumeration

    token = _outbox_token(uzo_home, email)
    new_password = "a brand new passphrase"
    reset = client.post(
        "/api/auth/reset-password", json={"token": token, "new_password": new_password}
    )
    assert reset.status_code == 204
    # single use
    twice = client.post(
        "/api/auth/reset-password", json={"token": token, "new_password": "yet another one!"}
    )
    assert twice.status_code == 422
    assert twice.json()["field"] == "token"
    # the old password and the old sessions are gone, the new password works
    old = client.post("/api/auth/login", json={"email": email, "password": TEST_PASSWORD})
    assert old.status_code == 401
    assert (
        client.get("/api/auth/me", headers=auth_header(session["access_token"])).status_code == 401
    )
    stale = client.post("/api/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert stale.status_code == 401
    login(client, email, new_password)


def test_expired_reset_token_is_refused(
    client: TestClient, database: Database, uzo_home: Path
) -> None:
    email = unique_email("expired")
    register(client, email=email)
    client.post("/api/auth/forgot-password", json={"email": email})
    token = _outbox_token(uzo_home, email)
    with database.owner_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE password_reset_tokens SET expires_at = now() - interval '1 second' "
                "WHERE user_id = (SELECT id FROM users WHERE email = :e)"
            ),
            {"e": email},
        )
    resp = client.post(
        "/api/auth/reset-password", json={"token": token, "new_password": "whatever works now"}
    )
    assert resp.status_code == 422


def test_reset_mail_is_not_logged(client: TestClient, uzo_home: Path, caplog: object) -> None:
    email = unique_email("quiet")
    register(client, email=email)
    client.post("/api/auth/forgot-password", json={"email": email})
    token = _outbox_token(uzo_home, email)
    assert token not in str(getattr(caplog, "text", ""))


def test_foreign_tenant_api_key_is_not_found(client: TestClient) -> None:
    a_email, b_email = unique_email("a"), unique_email("b")
    register(client, email=a_email)
    register(client, email=b_email)
    a = login(client, a_email)["access_token"]
    b = login(client, b_email)["access_token"]
    key = client.post("/api/auth/api-keys", json={"name": "a's"}, headers=auth_header(a)).json()
    resp = client.delete(f"/api/auth/api-keys/{key['id']}", headers=auth_header(b))
    assert resp.status_code == 404
    assert client.get("/api/auth/api-keys", headers=auth_header(b)).json()["items"] == []
    assert client.get("/api/auth/me", headers=auth_header(key["key"])).status_code == 200
