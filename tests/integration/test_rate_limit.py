"""Login throttling per account and per client IP."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi.testclient import TestClient

from tests.conftest import make_settings
from tests.factories import register, unique_email
from uzo_api.app import create_app

if TYPE_CHECKING:
    from pathlib import Path

    from uzo_api.db.session import Database


def _strict_client(home: Path, database: Database, **limits: str) -> TestClient:
    return TestClient(create_app(make_settings(home, **limits), database))


def test_login_is_limited_per_account(uzo_home: Path, database: Database) -> None:
    with _strict_client(uzo_home, database, login_limit_per_account="3/minute") as client:
        email = unique_email("limited")
        register(client, email=email)
        codes = [
            client.post("/api/auth/login", json={"email": email, "password": "wrong!"}).status_code
            for _ in range(4)
        ]
        assert codes == [401, 401, 401, 429]
        # even the right password is refused while the account is throttled
        blocked = client.post(
            "/api/auth/login", json={"email": email, "password": "correct horse battery staple"}
        )
        assert blocked.status_code == 429
        assert blocked.headers["content-type"].startswith("application/problem+json")
        assert int(blocked.headers["retry-after"]) >= 1
        assert blocked.json()["type"] == "/problems/rate-limited"
        # another account from the same IP is not affected by this account's limit
        other = unique_email("other")
        register(client, email=other)
        ok = client.post(
            "/api/auth/login", json={"email": other, "password": "correct horse battery staple"}
        )
        assert ok.status_code == 200


def test_login_is_limited_per_ip(uzo_home: Path, database: Database) -> None:
    with _strict_client(uzo_home, database, login_limit_per_ip="5/minute") as client:
        codes = [
            client.post(
                "/api/auth/login", json={"email": unique_email(), "password": "guess"}
            ).status_code
            for _ in range(6)
        ]
        assert codes == [401] * 5 + [429]


def test_forgot_password_is_limited(uzo_home: Path, database: Database) -> None:
    with _strict_client(uzo_home, database, login_limit_per_account="2/minute") as client:
        email = unique_email()
        codes = [
            client.post("/api/auth/forgot-password", json={"email": email}).status_code
            for _ in range(3)
        ]
        assert codes == [202, 202, 429]
