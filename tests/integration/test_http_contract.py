"""Problem+json everywhere, request ids, health and readiness."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.exc import DBAPIError

from uzo_api.app import create_app, open_database
from uzo_api.settings import DatabaseSettings

if TYPE_CHECKING:
    from uzo_api.db.session import Database
    from uzo_api.settings import Settings

PROBLEM = "application/problem+json"


def test_unknown_route_is_a_problem(client: TestClient) -> None:
    resp = client.get("/api/nothing-here")
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith(PROBLEM)
    assert resp.json()["type"] == "/problems/not-found"
    assert resp.json()["instance"] == "/api/nothing-here"


def test_wrong_method_is_a_problem(client: TestClient) -> None:
    resp = client.get("/api/auth/login")
    assert resp.status_code == 405
    assert resp.json()["type"] == "/problems/method-not-allowed"


def test_malformed_json_is_a_422_problem(client: TestClient) -> None:
    resp = client.post(
        "/api/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith(PROBLEM)
    assert resp.json()["field"].startswith("body")


def test_wrong_types_name_the_field(client: TestClient) -> None:
    resp = client.post("/api/auth/login", json={"email": ["x"], "password": 5})
    assert resp.status_code == 422
    fields = {e["field"] for e in resp.json()["errors"]}
    assert fields == {"body.email", "body.password"}


def test_bad_path_parameter_names_it(client: TestClient) -> None:
    resp = client.delete("/api/auth/api-keys/not-a-uuid", headers={"Authorization": "Bearer uzo_x"})
    assert resp.status_code in {401, 422}
    if resp.status_code == 422:
        assert resp.json()["field"] == "path.key_id"


def test_request_id_is_generated_and_echoed(client: TestClient) -> None:
    generated = client.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32
    echoed = client.get("/healthz", headers={"X-Request-ID": "trace-abc.123"})
    assert echoed.headers["x-request-id"] == "trace-abc.123"
    unsafe = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert unsafe.headers["x-request-id"] != "bad id\twith spaces"
    problem = client.get("/nope", headers={"X-Request-ID": "req-42"})
    assert problem.json()["request_id"] == "req-42"


def test_unexpected_errors_are_a_500_problem_without_trace(
    settings: Settings, database: Database
) -> None:
    app = create_app(settings, database)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    @app.get("/boom-db")
    def boom_db() -> None:
        # a database error that is not a lost connection (a commit refused, say)
        raise DBAPIError("COMMIT", {}, RuntimeError("secret internal detail"))

    for path in ("/boom", "/boom-db"):
        with TestClient(app, raise_server_exceptions=False) as c:
            resp = c.get(path)
        assert resp.status_code == 500
        assert resp.headers["content-type"].startswith(PROBLEM)
        assert "secret internal detail" not in resp.text
        assert "Traceback" not in resp.text
        # named once: the error handler's header is not repeated by the request-id layer
        assert resp.headers.get_list("x-request-id") == [resp.json()["request_id"]], path


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["schema_revision"]


def test_not_ready_when_database_is_unreachable(settings: Settings) -> None:
    broken = settings.model_copy(
        update={
            "database": DatabaseSettings(
                url=SecretStr("postgresql://nobody@127.0.0.1:1/none"),
                app_url=SecretStr("postgresql://nobody@127.0.0.1:1/none"),
            )
        }
    )
    db = open_database(broken)
    try:
        with TestClient(create_app(broken, db)) as c:
            resp = c.get("/readyz")
        assert resp.status_code == 503
        assert resp.headers["content-type"].startswith(PROBLEM)
        assert "database unreachable" in resp.json()["detail"]
    finally:
        db.dispose()


def test_problem_types_are_documented(client: TestClient) -> None:
    assert client.get("/problems/rate-limited").json()["title"] == "Too many requests"
    assert client.get("/problems/unheard-of").status_code == 404
