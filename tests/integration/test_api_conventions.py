"""The API's conventions, checked over the whole schema so that later routes keep them.

An OpenAPI lint (operation ids, tags, named schemas, problem+json declared where it is
sent), pagination of every list, unknown query parameters refused, the docs pages
served with their assets from the server itself, and the registration setting.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_settings
from tests.factories import TEST_PASSWORD, auth_header, login, register, unique_email
from uzo_api.app import create_app
from uzo_api.settings import AuthSettings

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from uzo_api.db.session import Database

PROBLEM = "application/problem+json"
PROBLEM_REF = "#/components/schemas/ProblemDetail"
METHODS = {"get", "post", "put", "patch", "delete"}
# Resources: <Name>Create/Update/Read and <Name>Page; actions: <Name>Request/Result.
SCHEMA_NAME = re.compile(r"^[A-Z][A-Za-z]+(Create|Update|Read|Page|Request|Result)$")
NOT_RESOURCES = {"ProblemDetail", "FieldError", "LimitDetail"}  # parts of problem+json


@pytest.fixture(scope="module")
def spec(client: TestClient) -> dict[str, Any]:
    resp = client.get("/openapi.json")
    assert resp.status_code == 200
    body: dict[str, Any] = resp.json()
    return body


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def test_operation_ids_are_unique_short_camel_case(spec: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in _operations(spec)]
    assert len(ids) == len(set(ids)), ids
    for op_id in ids:
        assert re.fullmatch(r"[a-z][a-zA-Z0-9]{2,31}", op_id), op_id
    assert "listConnectors" in ids


def test_every_operation_has_a_summary_and_a_described_tag(spec: dict[str, Any]) -> None:
    described = {t["name"] for t in spec["tags"] if t.get("description")}
    for path, method, op in _operations(spec):
        assert op.get("summary"), f"{method} {path} has no summary"
        assert op.get("tags"), f"{method} {path}: {op['tags']}"
        assert set(op["tags"]) <= described, f"{method} {path}: {op['tags']}"


def test_schemas_are_named_components_with_conventional_names(spec: dict[str, Any]) -> None:
    for path, method, op in _operations(spec):
        body = op.get("requestBody", {}).get("content", {})
        for media in body.values():
            assert "$ref" in media["schema"], f"{method} {path}: inline request schema"
        for code, response in op["responses"].items():
            for media_type, media in response.get("content", {}).items():
                schema = media.get("schema", {})
                assert "$ref" in schema, f"{method} {path} {code} {media_type}: inline schema"
                assert "title" not in schema
    names = set(spec["components"]["schemas"])
    for name in names - NOT_RESOURCES:
        assert SCHEMA_NAME.match(name), f"schema {name!r} breaks the naming convention"
    assert not {n for n in names if n.startswith(("Response", "Body_", "HTTPValidation"))}


def test_errors_are_declared_as_problem_json_only_where_a_route_returns_them(
    spec: dict[str, Any],
) -> None:
    for path, method, op in _operations(spec):
        for code, response in op["responses"].items():
            content = response.get("content", {})
            if code.startswith(("4", "5")):
                assert list(content) == [PROBLEM], f"{method} {path} {code}: {list(content)}"
                assert content[PROBLEM]["schema"]["$ref"] == PROBLEM_REF
            elif content:
                assert list(content) == ["application/json"], f"{method} {path} {code}"
        codes = set(op["responses"])
        if op.get("security"):
            assert "401" in codes, f"{method} {path} needs credentials but documents no 401"
        else:
            assert "401" not in codes or path in {"/api/auth/login", "/api/auth/refresh"}
        if "requestBody" in op:
            assert {"413", "422"} <= codes, f"{method} {path}"
    health = spec["paths"]["/healthz"]["get"]["responses"]
    assert set(health) == {"200"}, "the liveness probe cannot fail with 4xx"


def test_documented_media_types_are_what_the_server_sends(
    client: TestClient, spec: dict[str, Any]
) -> None:
    """Every route, called without credentials and with a stray query parameter, answers
    a documented status with the documented media type."""
    for path, method, op in _operations(spec):
        url = re.sub(r"\{[^}]+\}", "00000000-0000-4000-8000-000000000000", path)
        resp = client.request(method, url, params={"stray": "1"}, json={})
        documented = op["responses"]
        assert str(resp.status_code) in documented, f"{method} {path} -> {resp.status_code}"
        content = documented[str(resp.status_code)].get("content", {})
        sent = resp.headers.get("content-type", "").split(";")[0]
        if content:
            assert sent in content, f"{method} {path} sent {sent}, documents {list(content)}"


def test_a_body_that_is_not_utf8_is_a_documented_422_on_every_route(
    client: TestClient, spec: dict[str, Any]
) -> None:
    """Bytes that do not decode are invalid JSON like any other, not an undocumented 400
    (found by the tenancy fuzz)."""
    token = login(client, str(register(client)["email"]))["access_token"]
    headers = {**auth_header(token), "content-type": "application/json"}
    for path, method, op in _operations(spec):
        if "requestBody" not in op:
            continue
        url = re.sub(r"\{[^}]+\}", "00000000-0000-4000-8000-000000000000", path)
        resp = client.request(method, url, content=b'{"name": "\xff"}', headers=headers)
        assert resp.status_code == 422, f"{method} {path} -> {resp.status_code}"
        assert "422" in op["responses"], f"{method} {path}"
        assert resp.headers["content-type"].startswith(PROBLEM)
        assert resp.json()["errors"][0]["code"] == "json_invalid"


def test_unknown_query_parameters_are_refused_on_every_api_route(
    client: TestClient, spec: dict[str, Any]
) -> None:
    tenant = register(client)
    token = login(client, str(tenant["email"]))["access_token"]
    for path, method, _ in _operations(spec):
        if not path.startswith("/api/"):
            continue
        url = re.sub(r"\{[^}]+\}", "00000000-0000-4000-8000-000000000000", path)
        resp = client.request(method, url, params={"limt": "5"}, headers=auth_header(token))
        assert resp.status_code == 422, f"{method} {path} -> {resp.status_code}"
        assert resp.headers["content-type"].startswith(PROBLEM)
        assert resp.json()["field"] == "query.limt"


def test_lists_are_pages_with_a_stable_order_and_a_next_link(client: TestClient) -> None:
    tenant = register(client)
    headers = auth_header(login(client, str(tenant["email"]))["access_token"])
    names = [f"conn-{i}" for i in (4, 1, 3, 0, 2)]
    for name in names:
        made = client.post(
            "/api/connectors",
            headers=headers,
            json={"name": name, "connector_type": "file", "config": {"root": "."}},
        )
        assert made.status_code == 201, made.text
    seen: list[str] = []
    url: str | None = "/api/connectors?limit=2"
    pages = 0
    while url:
        page = client.get(url, headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= 2
        seen += [c["name"] for c in body["items"]]
        url = body["next"]
        if url:
            assert page.headers["link"] == f'<{url}>; rel="next"'
            assert body["next_cursor"] in url
        else:
            assert body["next_cursor"] is None
            assert "link" not in page.headers
        pages += 1
    assert seen == sorted(names)
    assert pages == 3

    # a connector added between pages does not shift the ones already seen
    first = client.get("/api/connectors?limit=2", headers=headers).json()
    client.post(
        "/api/connectors",
        headers=headers,
        json={"name": "conn-00", "connector_type": "file", "config": {"root": "."}},
    )
    rest = client.get(first["next"], headers=headers).json()
    assert [c["name"] for c in rest["items"]] == ["conn-2", "conn-3"]

    for bad, field in (("limit=0", "query.limit"), ("limit=201", "query.limit")):
        resp = client.get(f"/api/connectors?{bad}", headers=headers)
        assert resp.status_code == 422
        assert resp.json()["field"] == field
    forged = client.get("/api/connectors?cursor=not-a-cursor", headers=headers)
    assert forged.status_code == 422
    assert forged.json()["field"] == "query.cursor"

    types = client.get("/api/connector-types?limit=3", headers=headers).json()
    keys = [t["connector_type"] for t in types["items"]]
    after = client.get(types["next"], headers=headers).json()
    assert keys == sorted(keys)
    assert after["items"][0]["connector_type"] > keys[-1]


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href"} and value:
                self.urls.append(value)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_every_asset_from_the_server(client: TestClient, page: str) -> None:
    resp = client.get(page)
    assert resp.status_code == 200
    assert not re.search(r"https?://", resp.text), "the page refers to another host"
    parser = _Assets()
    parser.feed(resp.text)
    assert any(u.endswith(".js") for u in parser.urls), parser.urls
    for url in parser.urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
    assert client.get("/openapi.json").status_code == 200


def _app_with_registration(
    uzo_home: Path, database: Database, policy: str, tokens: str = ""
) -> TestClient:
    settings = make_settings(uzo_home)
    auth = AuthSettings(
        **{
            **settings.auth.model_dump(),
            "jwt_secret": settings.auth.jwt_secret,
            "registration": policy,
            "invite_tokens": tokens,
        }
    )
    return TestClient(create_app(settings.model_copy(update={"auth": auth}), database))


def _register(client: TestClient, **extra: str) -> Any:
    body = {"email": unique_email("reg"), "password": TEST_PASSWORD, "company_name": "R"}
    return client.post("/api/auth/register", json={**body, **extra})


def test_registration_closed_refuses_everyone(uzo_home: Path, database: Database) -> None:
    with _app_with_registration(uzo_home, database, "closed") as client:
        resp = _register(client)
        assert resp.status_code == 403
        assert resp.headers["content-type"].startswith(PROBLEM)
        assert "closed" in resp.json()["detail"]


def test_registration_by_invitation_needs_a_valid_token(uzo_home: Path, database: Database) -> None:
    token = "invite-" + "k" * 20
    with _app_with_registration(uzo_home, database, "invite", token) as client:
        missing = _register(client)
        assert missing.status_code == 403
        assert missing.json()["field"] == "invite_token"
        wrong = _register(client, invite_token="invite-" + "x" * 20)
        assert wrong.status_code == 403
        assert _register(client, invite_token=token).status_code == 201


PUBLIC_ROUTES = {
    ("post", "/api/auth/register"),
    ("post", "/api/auth/login"),
    ("post", "/api/auth/refresh"),
    ("post", "/api/auth/forgot-password"),
    ("post", "/api/auth/reset-password"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/problems/{slug}"),
}


def test_every_route_declares_its_permission(spec: dict[str, Any]) -> None:
    """The authorization seam: each operation states what it requires (x-permission);
    only the routes listed here are public, and a public route takes no credentials."""
    for path, method, op in _operations(spec):
        rule = op.get("x-permission")
        assert rule, f"{method} {path} declares no permission"
        if (method, path) in PUBLIC_ROUTES:
            assert rule == "public", f"{method} {path}"
            assert not op.get("security"), f"{method} {path} is public yet asks for a token"
        else:
            assert rule != "public", f"{method} {path} is public but not listed as such"
            assert op.get("security"), f"{method} {path} needs a permission but no token"
