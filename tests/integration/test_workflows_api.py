"""Jobs, job packages and workflows through the API, against the real database.

Diagrams as ReactFlow exports them come back as sent; an invalid one is a 422 listing
every error; drafts; no secrets in diagrams; versions (ETag / If-Match); the plan's
workflow limit under concurrent creation; tenants and grants.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tests.factories import TEST_PASSWORD, auth_header, login, register, unique_email
from uzo_api.auth.crypto import hash_password
from uzo_api.auth.principal import Principal
from uzo_api.context import RequestContext
from uzo_api.db.models import DeletionLog, Folder, ObjectPermission, User, Workflow, Workspace
from uzo_api.errors import Conflict, PlanLimitReached

if TYPE_CHECKING:
    from fastapi.testclient import TestClient
    from httpx import Response

    from uzo_api.db.session import Database

PROBLEM = "application/problem+json"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reactflow"
STANDARD_PLAN_WORKFLOWS = 10


def reactflow(version: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / f"{version}.json").read_text())
    return doc


def small_diagram() -> dict[str, Any]:
    return {
        "nodes": [
            {
                "id": "rows",
                "type": "uzoSource",
                "position": {"x": 0, "y": 0},
                "data": {"nodeType": "values", "config": {"rows": [{"id": 1, "amount": 5}]}},
                "selected": True,
            },
            {
                "id": "keep",
                "position": {"x": 200, "y": 0},
                "data": {"nodeType": "filter", "config": {"condition": "amount > 1"}},
                "measured": {"width": 120, "height": 40},
            },
        ],
        "edges": [{"id": "e1", "source": "rows", "target": "keep", "animated": True}],
        "viewport": {"x": 0, "y": 0, "zoom": 1},
    }


@dataclass
class Tenant:
    subscription_id: uuid.UUID
    user_id: uuid.UUID
    headers: dict[str, str]
    folder_id: uuid.UUID


def _tenant_session(database: Database, subscription_id: uuid.UUID) -> Session:
    """A session of the owner role, in the tenant (FORCE RLS applies to it too)."""
    s = Session(database.owner_engine)
    s.begin()
    s.execute(
        text("SELECT set_config('app.subscription_id', :s, true)"), {"s": str(subscription_id)}
    )
    return s


def new_tenant(client: TestClient, database: Database, company: str = "Acme") -> Tenant:
    account = register(client, company=company)
    user = account["user"]
    assert isinstance(user, dict)
    sid, uid = uuid.UUID(user["subscription_id"]), uuid.UUID(user["id"])
    headers = auth_header(login(client, str(account["email"]))["access_token"])
    with _tenant_session(database, sid) as s:
        workspace = Workspace(subscription_id=sid, workspace_name="Main", created_by=uid)
        s.add(workspace)
        s.flush()
        folder = Folder(
            subscription_id=sid, workspace_id=workspace.id, folder_name="ETL", created_by=uid
        )
        s.add(folder)
        s.commit()
        folder_id = folder.id
    return Tenant(sid, uid, headers, folder_id)


def member(client: TestClient, database: Database, tenant: Tenant) -> tuple[uuid.UUID, dict]:
    """A second user of the tenant, with no grants, inserted directly; logged in."""
    email = unique_email("member")
    with _tenant_session(database, tenant.subscription_id) as s:
        user = User(
            subscription_id=tenant.subscription_id,
            username=email.split("@")[0],
            email=email,
            password_hash=hash_password(TEST_PASSWORD),
            is_active=True,
        )
        s.add(user)
        s.commit()
        user_id = user.id
    return user_id, auth_header(login(client, email)["access_token"])


def grant(
    database: Database, tenant: Tenant, user_id: uuid.UUID, kind: str, object_id: Any, level: str
) -> None:
    with _tenant_session(database, tenant.subscription_id) as s:
        s.add(
            ObjectPermission(
                subscription_id=tenant.subscription_id,
                object_type=kind,
                object_id=uuid.UUID(str(object_id)),
                user_id=user_id,
                permission_level=level,
            )
        )
        s.commit()


def problem(resp: Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = resp.json()
    return body


@pytest.fixture
def tenant(client: TestClient, database: Database) -> Tenant:
    return new_tenant(client, database)


def make_job(client: TestClient, tenant: Tenant, name: str = "nightly") -> dict[str, Any]:
    resp = client.post(
        f"/api/folders/{tenant.folder_id}/jobs", headers=tenant.headers, json={"name": name}
    )
    assert resp.status_code == 201, resp.text
    job: dict[str, Any] = resp.json()
    return job


def make_workflow(
    client: TestClient,
    tenant: Tenant,
    job_id: str,
    diagram: dict[str, Any] | None = None,
    name: str = "load",
) -> Response:
    body: dict[str, Any] = {"name": name}
    if diagram is not None:
        body["diagram"] = diagram
    return client.post(f"/api/jobs/{job_id}/workflows", headers=tenant.headers, json=body)


# -- jobs ---------------------------------------------------------------------------------------


def test_jobs_crud_pages_filter_and_versions(client: TestClient, tenant: Tenant) -> None:
    names = ["b_job", "a%job", "c job", "a_job", "d"]
    for name in names:
        made = client.post(
            f"/api/folders/{tenant.folder_id}/jobs", headers=tenant.headers, json={"name": name}
        )
        assert made.status_code == 201, made.text
        assert made.headers["location"] == f"/api/jobs/{made.json()['id']}"
        assert made.headers["etag"].startswith('"')
    url: str | None = f"/api/folders/{tenant.folder_id}/jobs?limit=2"
    seen: list[str] = []
    while url:
        page = client.get(url, headers=tenant.headers)
        assert page.status_code == 200, page.text
        seen += [j["name"] for j in page.json()["items"]]
        url = page.json()["next"]
    assert seen == sorted(names)
    # LIKE wildcards in ?name= are literal
    for needle, expected in (("%", ["a%job"]), ("_", ["a_job", "b_job"]), ("JOB", names[:4])):
        found = client.get(
            f"/api/folders/{tenant.folder_id}/jobs", headers=tenant.headers, params={"name": needle}
        )
        assert sorted(j["name"] for j in found.json()["items"]) == sorted(expected), needle

    job = make_job(client, tenant, "versioned")
    read = client.get(f"/api/jobs/{job['id']}", headers=tenant.headers)
    tag = read.headers["etag"]
    changed = client.patch(
        f"/api/jobs/{job['id']}",
        headers=tenant.headers | {"If-Match": tag},
        json={"name": "renamed", "description": "d"},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "renamed"
    assert changed.headers["etag"] != tag
    stale = client.patch(
        f"/api/jobs/{job['id']}", headers=tenant.headers | {"If-Match": tag}, json={"name": "x"}
    )
    body = problem(stale, 412)
    assert body["type"] == "/problems/precondition-failed"
    assert stale.headers["etag"] == changed.headers["etag"]
    cleared = client.patch(
        f"/api/jobs/{job['id']}", headers=tenant.headers, json={"description": None}
    )
    assert cleared.json()["description"] is None
    assert cleared.json()["name"] == "renamed"
    null_name = client.patch(f"/api/jobs/{job['id']}", headers=tenant.headers, json={"name": None})
    assert problem(null_name, 422)["field"] == "body.name"


def test_deleting_a_job_deletes_its_workflows_at_the_same_time(
    client: TestClient, database: Database, tenant: Tenant
) -> None:
    job = make_job(client, tenant)
    ids = [make_workflow(client, tenant, job["id"], name=f"w{i}").json()["id"] for i in range(2)]
    assert client.delete(f"/api/jobs/{job['id']}", headers=tenant.headers).status_code == 204
    assert problem(client.get(f"/api/jobs/{job['id']}", headers=tenant.headers), 404)
    for workflow_id in ids:
        problem(client.get(f"/api/workflows/{workflow_id}", headers=tenant.headers), 404)
    listed = client.get(f"/api/folders/{tenant.folder_id}/jobs", headers=tenant.headers)
    assert job["id"] not in [j["id"] for j in listed.json()["items"]]
    with _tenant_session(database, tenant.subscription_id) as s:
        rows = s.scalars(select(Workflow).where(Workflow.job_id == uuid.UUID(job["id"]))).all()
        log = s.scalars(
            select(DeletionLog).where(DeletionLog.resource_id == uuid.UUID(job["id"]))
        ).one()
    assert {r.deleted_at for r in rows} == {log.deleted_at}
    assert {r.deleted_by for r in rows} == {tenant.user_id}
    assert log.cascaded_counts == {"workflows": 2}
    assert sorted(log.cascaded_ids["workflows"]) == sorted(ids)


# -- workflows: documents -----------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v11", "v12"])
def test_a_reactflow_export_comes_back_as_sent(
    client: TestClient, tenant: Tenant, version: str
) -> None:
    doc = reactflow(version)
    job = make_job(client, tenant)
    made = make_workflow(client, tenant, job["id"], doc)
    assert made.status_code == 201, made.text
    assert made.json()["diagram"] == doc
    assert made.json()["is_draft"] is False
    read = client.get(f"/api/workflows/{made.json()['id']}", headers=tenant.headers)
    assert read.json()["diagram"] == doc
    assert json.dumps(read.json()["diagram"], sort_keys=True) == json.dumps(doc, sort_keys=True)
    # saved again over the other version's document, also as sent
    other = reactflow("v12" if version == "v11" else "v11")
    patched = client.patch(
        f"/api/workflows/{made.json()['id']}",
        headers=tenant.headers | {"If-Match": read.headers["etag"]},
        json={"diagram": other},
    )
    assert patched.status_code == 200, patched.text
    again = client.get(f"/api/workflows/{made.json()['id']}", headers=tenant.headers)
    assert again.json()["diagram"] == other
    listed = client.get(f"/api/jobs/{job['id']}/workflows", headers=tenant.headers).json()
    assert [w["id"] for w in listed["items"]] == [made.json()["id"]]
    assert "diagram" not in listed["items"][0]


def test_an_invalid_diagram_is_refused_with_every_error(client: TestClient, tenant: Tenant) -> None:
    doc = reactflow("v12")
    doc["nodes"][3]["data"]["config"]["conditon"] = "amount > 1"  # typo: unknown field
    doc["nodes"][4]["data"]["nodeType"] = "limt"  # unknown node type
    doc["edges"][0]["targetHandle"] = "middle"  # no such port on a join
    doc["nodes"][1]["position"]["x"] = "40"  # a coordinate must be a number
    job = make_job(client, tenant)
    resp = make_workflow(client, tenant, job["id"], doc)
    body = problem(resp, 422)
    found = {(e["node_id"], e["field"], e["code"]) for e in body["errors"]}
    assert ("big", "body.diagram.nodes.3.data.config.conditon", "invalid_config") in found
    assert ("top", "body.diagram.nodes.4.data.nodeType", "unknown_node_type") in found
    assert ("join", "body.diagram.edges.0.targetHandle", "extra_input") in found
    assert ("customers", "body.diagram.nodes.1.position.x", "invalid_document") in found
    assert body["field"] == body["errors"][0]["field"]
    assert body["detail"].startswith(f"the diagram has {len(body['errors'])} error(s)")
    listed = client.get(f"/api/jobs/{job['id']}/workflows", headers=tenant.headers).json()
    assert listed["items"] == []  # nothing was stored
    not_a_document = make_workflow(client, tenant, job["id"], {"nodes": {}, "egdes": []})
    fields = {e["field"] for e in problem(not_a_document, 422)["errors"]}
    assert fields == {"body.diagram.nodes", "body.diagram.egdes"}
    # even a draft must be storable: PostgreSQL's JSONB holds no NUL character
    unstorable = small_diagram()
    unstorable["nodes"][0]["data"]["label"] = "a\x00b"
    resp = client.post(
        f"/api/jobs/{job['id']}/workflows?draft=true",
        headers=tenant.headers,
        json={"name": "nul", "diagram": unstorable},
    )
    assert problem(resp, 422)["field"] == "body.diagram.nodes.0.data.label"


def test_a_draft_saves_an_invalid_diagram_and_cannot_run(
    client: TestClient, database: Database, tenant: Tenant
) -> None:
    unfinished = small_diagram()
    unfinished["nodes"][1]["data"]["config"] = {}  # the filter has no condition yet
    job = make_job(client, tenant)
    made = client.post(
        f"/api/jobs/{job['id']}/workflows?draft=true",
        headers=tenant.headers,
        json={"name": "wip", "diagram": unfinished},
    )
    assert made.status_code == 201, made.text
    assert made.json()["is_draft"] is True
    assert made.json()["diagram"] == unfinished
    workflow_id = uuid.UUID(made.json()["id"])
    services = client.app.state.services  # type: ignore[attr-defined]
    owner = Principal(tenant.user_id, tenant.subscription_id, "jwt", is_owner=True)
    with database.tenant(tenant.subscription_id) as s, pytest.raises(Conflict, match="draft"):
        services.workflows.runnable_diagram(RequestContext.of(owner, s), workflow_id)
    # saved without draft: it must validate now
    still = client.patch(
        f"/api/workflows/{workflow_id}", headers=tenant.headers, json={"diagram": unfinished}
    )
    assert problem(still, 422)["errors"][0]["node_id"] == "keep"
    # a rename keeps the draft state
    renamed = client.patch(
        f"/api/workflows/{workflow_id}", headers=tenant.headers, json={"name": "wip 2"}
    )
    assert renamed.json()["is_draft"] is True
    done = client.patch(
        f"/api/workflows/{workflow_id}", headers=tenant.headers, json={"diagram": small_diagram()}
    )
    assert done.status_code == 200, done.text
    assert done.json()["is_draft"] is False
    with database.tenant(tenant.subscription_id) as s:
        runnable = services.workflows.runnable_diagram(RequestContext.of(owner, s), workflow_id)
    assert runnable == small_diagram()


@pytest.mark.parametrize("draft", [False, True])
def test_secrets_in_a_diagram_are_refused(client: TestClient, tenant: Tenant, draft: bool) -> None:
    doc = small_diagram()
    doc["nodes"].append(
        {
            "id": "pg",
            "position": {"x": 0, "y": 100},
            "data": {
                "nodeType": "source",
                "config": {
                    "connector": "postgres",
                    "config": {"host": "db", "user": "etl", "password": "hunter2"},
                    "dataset": "public.orders",
                },
            },
        }
    )
    doc["nodes"].append(
        {
            "id": "ask",
            "position": {"x": 0, "y": 200},
            "data": {
                "nodeType": "llm",
                "config": {"template": "{id}", "api_key": "sk-live", "config": {"api_key": "k"}},
            },
        }
    )
    doc["nodes"].append(
        {
            "id": "typo",
            "position": {"x": 0, "y": 300},
            "data": {"nodeType": "sourc", "config": {"config": {"secret_access_key": "abc"}}},
        }
    )
    job = make_job(client, tenant)
    resp = client.post(
        f"/api/jobs/{job['id']}/workflows",
        headers=tenant.headers,
        params={"draft": "true"} if draft else {},
        json={"name": "leaky", "diagram": doc},
    )
    body = problem(resp, 422)
    secrets = {
        (e["node_id"], e["field"]) for e in body["errors"] if e["code"] == "secret_in_diagram"
    }
    assert secrets == {
        ("pg", "body.diagram.nodes.2.data.config.config.password"),
        ("ask", "body.diagram.nodes.3.data.config.api_key"),
        ("ask", "body.diagram.nodes.3.data.config.config.api_key"),
        ("typo", "body.diagram.nodes.4.data.config.config.secret_access_key"),
    }
    assert "hunter2" not in resp.text
    assert "sk-live" not in resp.text
    # a saved connector by id is how a node gets its credentials
    doc["nodes"] = doc["nodes"][:3]
    doc["nodes"][2]["data"]["config"]["config"] = {"host": "db"}
    doc["nodes"][2]["data"]["config"]["connector_id"] = str(uuid.uuid4())
    ok = client.post(
        f"/api/jobs/{job['id']}/workflows?draft=true",
        headers=tenant.headers,
        json={"name": "by reference", "diagram": doc},
    )
    assert ok.status_code == 201, ok.text


def test_if_match_guards_workflow_changes(client: TestClient, tenant: Tenant) -> None:
    job = make_job(client, tenant)
    made = make_workflow(client, tenant, job["id"], small_diagram())
    workflow_id, first = made.json()["id"], made.headers["etag"]
    read = client.get(f"/api/workflows/{workflow_id}", headers=tenant.headers)
    assert read.headers["etag"] == first
    url = f"/api/workflows/{workflow_id}"
    # two editors read the same version; the first to write wins, the second gets 412
    alice = client.patch(url, headers=tenant.headers | {"If-Match": first}, json={"name": "a"})
    assert alice.status_code == 200, alice.text
    bob = client.patch(url, headers=tenant.headers | {"If-Match": first}, json={"name": "b"})
    body = problem(bob, 412)
    assert body["type"] == "/problems/precondition-failed"
    assert client.get(url, headers=tenant.headers).json()["name"] == "a"
    current = alice.headers["etag"]
    weakened = client.patch(
        url, headers=tenant.headers | {"If-Match": f'"stale", W/{current}'}, json={"name": "c"}
    )
    assert weakened.status_code == 200, weakened.text
    anything = client.patch(url, headers=tenant.headers | {"If-Match": "*"}, json={"name": "d"})
    assert anything.status_code == 200
    unchanged = client.patch(url, headers=tenant.headers, json={"name": "d"})
    assert unchanged.headers["etag"] == anything.headers["etag"]  # nothing changed


def test_the_workflow_limit_holds_under_concurrent_creation(
    client: TestClient, database: Database, tenant: Tenant
) -> None:
    """Threads race for the last free slot of the Standard plan: exactly one gets it."""
    job = make_job(client, tenant)
    for i in range(STANDARD_PLAN_WORKFLOWS - 1):
        assert make_workflow(client, tenant, job["id"], name=f"w{i}").status_code == 201
    services = client.app.state.services  # type: ignore[attr-defined]
    owner = Principal(tenant.user_id, tenant.subscription_id, "jwt", is_owner=True)
    racers = 6
    barrier = threading.Barrier(racers)
    outcomes: list[str] = []
    lock = threading.Lock()

    def race(n: int) -> None:
        barrier.wait()
        try:
            with database.tenant(tenant.subscription_id) as s:
                services.workflows.create(
                    RequestContext.of(owner, s),
                    uuid.UUID(job["id"]),
                    name=f"racer {n}",
                    description=None,
                    diagram=None,
                )
            outcome = "created"
        except PlanLimitReached:
            outcome = "refused"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["created"] + ["refused"] * (racers - 1)
    listed = client.get(f"/api/jobs/{job['id']}/workflows?limit=50", headers=tenant.headers)
    assert len(listed.json()["items"]) == STANDARD_PLAN_WORKFLOWS
    over = problem(make_workflow(client, tenant, job["id"], name="one more"), 403)
    assert over["type"] == "/problems/plan-limit"
    assert over["limit"]["allowed"] == STANDARD_PLAN_WORKFLOWS
    # a deleted workflow frees its slot
    victim = listed.json()["items"][0]["id"]
    assert client.delete(f"/api/workflows/{victim}", headers=tenant.headers).status_code == 204
    assert make_workflow(client, tenant, job["id"], name="again").status_code == 201


# -- job packages -------------------------------------------------------------------------------


def test_job_packages_keep_their_jobs_in_order(client: TestClient, tenant: Tenant) -> None:
    jobs = [make_job(client, tenant, f"job {i}")["id"] for i in range(3)]
    made = client.post("/api/jobpackages", headers=tenant.headers, json={"name": "daily"})
    assert made.status_code == 201, made.text
    package = made.json()
    assert package["job_ids"] == []
    url = f"/api/jobpackages/{package['id']}/jobs"
    order = [jobs[2], jobs[0], jobs[1]]
    put = client.put(
        url, headers=tenant.headers | {"If-Match": made.headers["etag"]}, json={"job_ids": order}
    )
    assert put.status_code == 200, put.text
    assert put.json()["job_ids"] == order
    assert problem(
        client.put(url, headers=tenant.headers | {"If-Match": made.headers["etag"]},
                   json={"job_ids": jobs}), 412
    )  # fmt: skip
    read = client.get(f"/api/jobpackages/{package['id']}", headers=tenant.headers)
    assert read.json()["job_ids"] == order
    assert read.headers["etag"] == put.headers["etag"]
    twice = problem(client.put(url, headers=tenant.headers, json={"job_ids": [jobs[0]] * 2}), 422)
    assert twice["errors"][0]["field"] == "body.job_ids.1"
    missing = problem(
        client.put(url, headers=tenant.headers, json={"job_ids": [jobs[0], str(uuid.uuid4())]}),
        422,
    )
    assert missing["field"] == "body.job_ids.1"
    # a deleted job leaves the package
    assert client.delete(f"/api/jobs/{jobs[0]}", headers=tenant.headers).status_code == 204
    after = client.get(f"/api/jobpackages/{package['id']}", headers=tenant.headers).json()
    assert after["job_ids"] == [jobs[2], jobs[1]]
    listed = client.get("/api/jobpackages?name=DAI", headers=tenant.headers).json()
    assert [p["id"] for p in listed["items"]] == [package["id"]]
    renamed = client.patch(
        f"/api/jobpackages/{package['id']}", headers=tenant.headers, json={"name": "nightly"}
    )
    assert renamed.json()["name"] == "nightly"
    gone = client.delete(f"/api/jobpackages/{package['id']}", headers=tenant.headers)
    assert gone.status_code == 204
    problem(client.get(f"/api/jobpackages/{package['id']}", headers=tenant.headers), 404)


# -- tenants, grants, mass assignment ----------------------------------------------------------


def test_another_tenants_objects_are_not_found(client: TestClient, database: Database) -> None:
    a = new_tenant(client, database, "A")
    b = new_tenant(client, database, "B")
    job = make_job(client, a)
    workflow = make_workflow(client, a, job["id"], small_diagram()).json()
    package = client.post("/api/jobpackages", headers=a.headers, json={"name": "p"}).json()
    for method, url, body in (
        ("get", f"/api/folders/{a.folder_id}/jobs", None),
        ("post", f"/api/folders/{a.folder_id}/jobs", {"name": "x"}),
        ("get", f"/api/jobs/{job['id']}", None),
        ("patch", f"/api/jobs/{job['id']}", {"name": "x"}),
        ("delete", f"/api/jobs/{job['id']}", None),
        ("get", f"/api/jobs/{job['id']}/workflows", None),
        ("post", f"/api/jobs/{job['id']}/workflows", {"name": "x"}),
        ("get", f"/api/workflows/{workflow['id']}", None),
        ("patch", f"/api/workflows/{workflow['id']}", {"name": "x"}),
        ("delete", f"/api/workflows/{workflow['id']}", None),
        ("get", f"/api/jobpackages/{package['id']}", None),
        ("patch", f"/api/jobpackages/{package['id']}", {"name": "x"}),
        ("put", f"/api/jobpackages/{package['id']}/jobs", {"job_ids": []}),
        ("delete", f"/api/jobpackages/{package['id']}", None),
    ):
        resp = client.request(method, url, headers=b.headers, json=body)
        assert problem(resp, 404)["type"] == "/problems/not-found", (method, url)
    own = client.post("/api/jobpackages", headers=b.headers, json={"name": "mine"}).json()
    stolen = client.put(
        f"/api/jobpackages/{own['id']}/jobs", headers=b.headers, json={"job_ids": [job["id"]]}
    )
    assert problem(stolen, 422)["errors"][0]["message"] == "no such job"
    assert client.get("/api/jobpackages", headers=b.headers).json()["items"] == [own]
    assert client.get(f"/api/workflows/{workflow['id']}", headers=a.headers).status_code == 200


def test_a_member_without_grants_is_refused_naming_the_level(
    client: TestClient, database: Database, tenant: Tenant
) -> None:
    job = make_job(client, tenant)
    workflow = make_workflow(client, tenant, job["id"], small_diagram()).json()
    package = client.post("/api/jobpackages", headers=tenant.headers, json={"name": "p"}).json()
    user_id, headers = member(client, database, tenant)

    def detail(resp: Response) -> str:
        body = problem(resp, 403)
        assert body["type"] == "/problems/forbidden"
        return str(body["detail"])

    assert "read on the job" in detail(client.get(f"/api/jobs/{job['id']}", headers=headers))
    assert "read on the workflow" in detail(
        client.get(f"/api/workflows/{workflow['id']}", headers=headers)
    )
    assert "read on the jobpackage" in detail(
        client.get(f"/api/jobpackages/{package['id']}", headers=headers)
    )
    assert "read_write on the folder" in detail(
        client.post(f"/api/folders/{tenant.folder_id}/jobs", headers=headers, json={"name": "x"})
    )
    assert "read_write on every jobpackage" in detail(
        client.post("/api/jobpackages", headers=headers, json={"name": "x"})
    )
    # lists hold only what the member may read
    jobs = client.get(f"/api/folders/{tenant.folder_id}/jobs", headers=headers)
    assert jobs.status_code == 200
    assert jobs.json()["items"] == []
    assert client.get("/api/jobpackages", headers=headers).json()["items"] == []

    grant(database, tenant, user_id, "job", job["id"], "read")
    assert client.get(f"/api/jobs/{job['id']}", headers=headers).status_code == 200
    # read on the job is inherited by its workflows
    assert client.get(f"/api/workflows/{workflow['id']}", headers=headers).status_code == 200
    listed = client.get(f"/api/folders/{tenant.folder_id}/jobs", headers=headers).json()
    assert [j["id"] for j in listed["items"]] == [job["id"]]
    assert "read_write on the workflow; you have read" in detail(
        client.patch(f"/api/workflows/{workflow['id']}", headers=headers, json={"name": "x"})
    )
    assert "read_write on the job" in detail(
        client.post(f"/api/jobs/{job['id']}/workflows", headers=headers, json={"name": "x"})
    )
    grant(database, tenant, user_id, "folder", tenant.folder_id, "read_write")
    made = client.post(f"/api/folders/{tenant.folder_id}/jobs", headers=headers, json={"name": "m"})
    assert made.status_code == 201, made.text
    assert (
        client.patch(
            f"/api/workflows/{workflow['id']}", headers=headers, json={"name": "ok"}
        ).status_code
        == 200
    )
    assert "admin on the job" in detail(client.delete(f"/api/jobs/{job['id']}", headers=headers))
    assert "admin on the workflow" in detail(
        client.delete(f"/api/workflows/{workflow['id']}", headers=headers)
    )
    # a package may only hold jobs its editor can read
    grant(database, tenant, user_id, "jobpackage", package["id"], "read_write")
    hidden = client.post(
        f"/api/folders/{tenant.folder_id}/jobs", headers=tenant.headers, json={"name": "h"}
    ).json()
    with _tenant_session(database, tenant.subscription_id) as s:  # out of the member's reach
        s.execute(
            text("DELETE FROM object_permissions WHERE object_id = :f AND user_id = :u"),
            {"f": str(tenant.folder_id), "u": str(user_id)},
        )
        s.commit()
    refused = client.put(
        f"/api/jobpackages/{package['id']}/jobs",
        headers=headers,
        json={"job_ids": [job["id"], hidden["id"]]},
    )
    assert problem(refused, 403)["field"] == "body.job_ids.1"
    allowed = client.put(
        f"/api/jobpackages/{package['id']}/jobs", headers=headers, json={"job_ids": [job["id"]]}
    )
    assert allowed.status_code == 200, allowed.text


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("post", "jobs", {"name": "x", "subscription_id": str(uuid.uuid4())}, "subscription_id"),
        ("post", "jobs", {"name": "x", "created_by": str(uuid.uuid4())}, "created_by"),
        ("post", "jobs", {"name": "x", "id": str(uuid.uuid4())}, "id"),
        ("post", "jobs", {"name": "x", "job_name": "y"}, "job_name"),
        ("patch", "job", {"folder_id": str(uuid.uuid4())}, "folder_id"),
        ("patch", "job", {"deleted_at": "2024-01-01T00:00:00Z"}, "deleted_at"),
        ("post", "workflows", {"name": "x", "is_draft": True}, "is_draft"),
        ("post", "workflows", {"name": "x", "workflow_diagram": {}}, "workflow_diagram"),
        ("patch", "workflow", {"job_id": str(uuid.uuid4())}, "job_id"),
        ("patch", "workflow", {"current_version": 9}, "current_version"),
        ("patch", "workflow", {"is_checked_out": True}, "is_checked_out"),
        ("post", "jobpackages", {"name": "x", "subscription_id": str(uuid.uuid4())},
         "subscription_id"),
    ],
)  # fmt: skip
def test_mass_assignment_is_refused(
    client: TestClient, tenant: Tenant, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    job = make_job(client, tenant)
    workflow = make_workflow(client, tenant, job["id"]).json()
    url = {
        "jobs": f"/api/folders/{tenant.folder_id}/jobs",
        "job": f"/api/jobs/{job['id']}",
        "workflows": f"/api/jobs/{job['id']}/workflows",
        "workflow": f"/api/workflows/{workflow['id']}",
        "jobpackages": "/api/jobpackages",
    }[path]
    resp = client.request(method, url, headers=tenant.headers, json=copy.deepcopy(body))
    refused = problem(resp, 422)
    assert refused["field"] == f"body.{field}"
    assert refused["errors"][0]["code"] == "extra_forbidden"
    unknown_query = client.get(url, headers=tenant.headers, params={"is_draft": "true"})
    assert problem(unknown_query, 422)["field"] == "query.is_draft"
