"""Factories for test data: registered tenants, logged-in users, auth headers."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

TEST_PASSWORD = "correct horse battery staple"


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


def register(
    client: TestClient, email: str | None = None, company: str = "Acme"
) -> dict[str, object]:
    email = email or unique_email()
    resp = client.post(
        "/api/auth/register",
        json={"email": email, "password": TEST_PASSWORD, "company_name": company},
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, object] = resp.json()
    body["email"] = email
    return body


def login(client: TestClient, email: str, password: str = TEST_PASSWORD) -> dict[str, object]:
    resp = client.post("/api/auth/login", json={"email": email, "password": password})
    assert resp.status_code == 200, resp.text
    tokens: dict[str, object] = resp.json()
    return tokens


def auth_header(token: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
