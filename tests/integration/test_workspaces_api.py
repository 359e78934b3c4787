"""Workspaces and folders: CRUD, lists, nesting, moves, soft delete, tenancy and grants."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tests.factories import auth_header, login, register, unique_email
from uzo_api.auth.crypto import hash_password
from uzo_api.db.models import (
    Folder,
    Job,
    ObjectPermission,
    Permission,
    Role,
    User,
    UserRole,
    Workflow,
    Workspace,
)

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from uzo_api.db.session import Database

PROBLEM = "application/problem+json"
MEMBER_PASSWORD = "another correct horse battery"


@dataclass(frozen=True)
class Caller:
    headers: dict[str, str]
    user_id: uuid.UUID
    subscription_id: uuid.UUID


@pytest.fixture
def owner(client: TestClient) -> Caller:
    email = unique_email("ws")
    user = register(client, email=email)["user"]
    assert isinstance(user, dict)
    return Caller(
        auth_header(login(client, email)["access_token"]),
        uuid.UUID(str(user["id"])),
        uuid.UUID(str(user["subscription_id"])),
    )


@pytest.fixture
def member(client: TestClient, database: Database, owner: Caller) -> Caller:
    """A second user of the owner's subscription, with no grant and no role."""
    email = unique_email("member")
    with Session(database.owner_engine) as s, s.begin():
        user = User(
            subscription_id=owner.subscription_id,
            username=email.split("@")[0],
            email=email,
            password_hash=hash_password(MEMBER_PASSWORD),
        )
        s.add(user)
        s.flush()
        user_id = user.id
    tokens = login(client, email, MEMBER_PASSWORD)
    return Caller(auth_header(tokens["access_token"]), user_id, owner.subscription_id)


@pytest.fixture
def stranger(client: TestClient) -> Caller:
    """The owner of another subscription."""
    email = unique_email("other")
    user = register(client, email=email, company="Other Tenant")["user"]
    assert isinstance(user, dict)
    return Caller(
        auth_header(login(client, email)["access_token"]),
        uuid.UUID(str(user["id"])),
        uuid.UUID(str(user["subscription_id"])),
    )


def _grant(database: Database, to: Caller, object_type: str, object_id: str, level: str) -> None:
    with Session(database.owner_engine) as s, s.begin():
        existing = s.scalar(
            select(ObjectPermission).where(
                ObjectPermission.object_id == uuid.UUID(object_id),
                ObjectPermission.user_id == to.user_id,
            )
        )
        if existing is not None:
            existing.permission_level = level
            return
        s.add(
            ObjectPermission(
                subscription_id=to.subscription_id,
                object_type=object_type,
                object_id=uuid.UUID(object_id),
                user_id=to.user_id,
                permission_level=level,
            )
        )


def _workspace(client: TestClient, who: Caller, name: str = "Sales") -> dict[str, Any]:
    resp = client.post("/api/workspaces", json={"name": name}, headers=who.headers)
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _folder(
    client: TestClient, who: Caller, workspace_id: str, name: str, parent: str | None = None
) -> dict[str, Any]:
    resp = client.post(
        f"/api/workspaces/{workspace_id}/folders",
        json={"name": name, "parent_folder_id": parent},
        headers=who.headers,
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _names(resp: Any) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [item["name"] for item in resp.json()["items"]]


def _all_pages(client: TestClient, who: Caller, url: str) -> tuple[list[str], int]:
    seen: list[str] = []
    pages = 0
    next_url: str | None = url
    while next_url:
        resp = client.get(next_url, headers=who.headers)
        seen += _names(resp)
        next_url = resp.json()["next"]
        pages += 1
    return seen, pages


def _problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = resp.json()
    return body


# -- workspaces ------------------------------------------------------------------------------


def test_workspace_crud_and_the_creators_owner_grant(
    client: TestClient, owner: Caller, database: Database
) -> None:
    made = client.post(
        "/api/workspaces", json={"name": "  Sales  ", "description": "d"}, headers=owner.headers
    )
    assert made.status_code == 201, made.text
    ws = made.json()
    assert ws["name"] == "Sales"
    assert ws["description"] == "d"
    assert ws["created_by"] == str(owner.user_id)
    with database.owner_engine.connect() as conn:
        grants = conn.execute(
            text(
                "SELECT user_id, permission_level, object_type FROM object_permissions "
                "WHERE object_id = :id"
            ),
            {"id": ws["id"]},
        ).all()
    assert [(str(g.user_id), g.permission_level, g.object_type) for g in grants] == [
        (str(owner.user_id), "owner", "workspace")
    ]

    url = f"/api/workspaces/{ws['id']}"
    assert client.get(url, headers=owner.headers).json()["name"] == "Sales"
    patched = client.patch(url, json={"name": "Sales EU"}, headers=owner.headers)
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "Sales EU"
    assert patched.json()["description"] == "d"  # left out: kept
    cleared = client.patch(url, json={"description": None}, headers=owner.headers)
    assert cleared.json()["description"] is None
    assert cleared.json()["name"] == "Sales EU"
    no_name = _problem(client.patch(url, json={"name": None}, headers=owner.headers), 422)
    assert no_name["field"] == "body.name"
    empty = _problem(client.patch(url, json={"name": ""}, headers=owner.headers), 422)
    assert empty["field"] == "body.name"

    assert "Sales EU" in _names(client.get("/api/workspaces", headers=owner.headers))
    assert client.delete(url, headers=owner.headers).status_code == 204
    _problem(client.get(url, headers=owner.headers), 404)
    _problem(client.patch(url, json={"name": "x"}, headers=owner.headers), 404)
    _problem(client.delete(url, headers=owner.headers), 404)
    assert "Sales EU" not in _names(client.get("/api/workspaces", headers=owner.headers))
    restored = client.post(f"{url}/restore", headers=owner.headers)
    assert restored.status_code == 200, restored.text
    assert restored.json()["name"] == "Sales EU"
    assert client.get(url, headers=owner.headers).status_code == 200
    _problem(client.post(f"{url}/restore", headers=owner.headers), 404)  # not deleted
    with database.owner_engine.connect() as conn:
        actions = conn.execute(
            text("SELECT action FROM audit_logs WHERE resource_id = :id ORDER BY created_at"),
            {"id": ws["id"]},
        ).scalars()
        assert list(actions) == [
            "workspace.create",
            "workspace.update",
            "workspace.update",
            "workspace.delete",
            "workspace.restore",
        ]


def test_mass_assignment_is_refused(client: TestClient, owner: Caller, stranger: Caller) -> None:
    ws = _workspace(client, owner)
    folder = _folder(client, owner, ws["id"], "f")
    other = str(stranger.subscription_id)
    for field, value in (
        ("id", str(uuid.uuid4())),
        ("subscription_id", other),
        ("created_by", str(stranger.user_id)),
        ("deleted_at", "2020-01-01T00:00:00Z"),
        ("deleted_by", str(stranger.user_id)),
        ("workspace_name", "x"),
    ):
        resp = client.patch(
            f"/api/workspaces/{ws['id']}", json={field: value}, headers=owner.headers
        )
        assert _problem(resp, 422)["field"] == f"body.{field}"
    for field, value in (
        ("workspace_id", str(uuid.uuid4())),
        ("ancestor_ids", []),
        ("subscription_id", other),
        ("deleted_at", None),
        ("folder_name", "x"),
    ):
        resp = client.patch(
            f"/api/folders/{folder['id']}", json={field: value}, headers=owner.headers
        )
        assert _problem(resp, 422)["field"] == f"body.{field}"
    created = client.post(
        "/api/workspaces", json={"name": "x", "id": str(uuid.uuid4())}, headers=owner.headers
    )
    assert _problem(created, 422)["field"] == "body.id"
    assert client.get(f"/api/workspaces/{ws['id']}", headers=owner.headers).json() == ws


def test_workspace_pages_follow_the_sort_key(client: TestClient, owner: Caller) -> None:
    names = ["delta", "alpha", "echo", "charlie", "bravo"]
    for name in names:
        _workspace(client, owner, name)
    seen, pages = _all_pages(client, owner, "/api/workspaces?limit=2")
    assert (seen, pages) == (sorted(names), 3)
    seen, pages = _all_pages(client, owner, "/api/workspaces?limit=2&sort=-name")
    assert (seen, pages) == (sorted(names, reverse=True), 3)
    seen, _ = _all_pages(client, owner, "/api/workspaces?limit=2&sort=created_at")
    assert seen == names
    seen, _ = _all_pages(client, owner, "/api/workspaces?limit=3&sort=-created_at")
    assert seen == names[::-1]

    first = client.get("/api/workspaces?limit=2&sort=-name", headers=owner.headers)
    assert "sort=-name" in first.json()["next"]
    assert first.headers["link"] == f'<{first.json()["next"]}>; rel="next"'
    # a cursor of a list sorted by name does not fit a list sorted by time
    cursor = first.json()["next_cursor"]
    misfit = client.get(f"/api/workspaces?sort=created_at&cursor={cursor}", headers=owner.headers)
    assert _problem(misfit, 422)["field"] == "query.cursor"
    bad_sort = client.get("/api/workspaces?sort=size", headers=owner.headers)
    assert _problem(bad_sort, 422)["field"] == "query.sort"


def test_name_filter_is_a_case_insensitive_substring_without_wildcards(
    client: TestClient, owner: Caller
) -> None:
    for name in ("Sales_2024", "Sales-2024", "100% done", "Marketing", "back\\slash"):
        _workspace(client, owner, name)

    def filtered(needle: str) -> list[str]:
        return _names(client.get("/api/workspaces", params={"name": needle}, headers=owner.headers))

    assert set(filtered("sales")) == {"Sales-2024", "Sales_2024"}
    assert filtered("SALES_") == ["Sales_2024"]
    assert filtered("%") == ["100% done"]
    assert filtered("s_2") == ["Sales_2024"]
    assert filtered("\\") == ["back\\slash"]
    assert filtered("nothing") == []
    ws = _workspace(client, owner, "With folders")
    for name in ("Raw_zone", "raw data", "Curated"):
        _folder(client, owner, ws["id"], name)
    folders = client.get(
        f"/api/workspaces/{ws['id']}/folders", params={"name": "RAW"}, headers=owner.headers
    )
    assert set(_names(folders)) == {"Raw_zone", "raw data"}  # their order is the collation's
    only = client.get(
        f"/api/workspaces/{ws['id']}/folders",
        params={"name": "w_", "sort": "-created_at"},
        headers=owner.headers,
    )
    assert _names(only) == ["Raw_zone"]


# -- folders ---------------------------------------------------------------------------------


def test_folders_nest_four_deep_and_list_by_parent(client: TestClient, owner: Caller) -> None:
    ws = _workspace(client, owner)
    a = _folder(client, owner, ws["id"], "a")
    b = _folder(client, owner, ws["id"], "b", a["id"])
    c = _folder(client, owner, ws["id"], "c", b["id"])
    d = _folder(client, owner, ws["id"], "d", c["id"])
    assert a["parent_folder_id"] is None
    assert a["ancestor_ids"] == []
    assert d["parent_folder_id"] == c["id"]
    assert d["ancestor_ids"] == [a["id"], b["id"], c["id"]]
    got = client.get(f"/api/folders/{d['id']}", headers=owner.headers).json()
    assert got == d
    assert got["workspace_id"] == ws["id"]

    base = f"/api/workspaces/{ws['id']}/folders"
    siblings = [_folder(client, owner, ws["id"], f"a{i}")["name"] for i in range(3)]
    seen, pages = _all_pages(client, owner, f"{base}?limit=2")
    assert (seen, pages) == (["a", *siblings], 2)
    for parent, child in ((a, "b"), (b, "c"), (c, "d")):
        resp = client.get(base, params={"parent_folder_id": parent["id"]}, headers=owner.headers)
        assert _names(resp) == [child]
    assert (
        _names(client.get(base, params={"parent_folder_id": d["id"]}, headers=owner.headers)) == []
    )

    other = _workspace(client, owner, "Other")
    wrong = client.post(
        f"/api/workspaces/{other['id']}/folders",
        json={"name": "x", "parent_folder_id": a["id"]},
        headers=owner.headers,
    )
    assert _problem(wrong, 422)["field"] == "parent_folder_id"
    listed = client.get(
        f"/api/workspaces/{other['id']}/folders",
        params={"parent_folder_id": a["id"]},
        headers=owner.headers,
    )
    _problem(listed, 404)
    missing = client.post(
        f"/api/workspaces/{ws['id']}/folders",
        json={"name": "x", "parent_folder_id": str(uuid.uuid4())},
        headers=owner.headers,
    )
    _problem(missing, 404)


def test_moving_a_folder_rewrites_its_subtree_and_refuses_cycles(
    client: TestClient, owner: Caller
) -> None:
    ws = _workspace(client, owner)
    a = _folder(client, owner, ws["id"], "a")
    b = _folder(client, owner, ws["id"], "b", a["id"])
    c = _folder(client, owner, ws["id"], "c", b["id"])
    d = _folder(client, owner, ws["id"], "d", c["id"])
    x = _folder(client, owner, ws["id"], "x")

    def path(folder: dict[str, Any]) -> list[str]:
        resp = client.get(f"/api/folders/{folder['id']}", headers=owner.headers)
        return list(resp.json()["ancestor_ids"])

    def move(folder: dict[str, Any], parent: str | None, **extra: str) -> Any:
        return client.patch(
            f"/api/folders/{folder['id']}",
            json={"parent_folder_id": parent, **extra},
            headers=owner.headers,
        )

    moved = move(b, x["id"], name="b2")
    assert moved.status_code == 200, moved.text
    assert moved.json()["parent_folder_id"] == x["id"]
    assert moved.json()["name"] == "b2"
    assert path(b) == [x["id"]]
    assert path(c) == [x["id"], b["id"]]
    assert path(d) == [x["id"], b["id"], c["id"]]
    assert path(a) == []
    base = f"/api/workspaces/{ws['id']}/folders"
    assert (
        _names(client.get(base, params={"parent_folder_id": a["id"]}, headers=owner.headers)) == []
    )
    assert _names(
        client.get(base, params={"parent_folder_id": x["id"]}, headers=owner.headers)
    ) == ["b2"]

    for target in (b, c, d):  # under itself or one of its own sub-folders
        refused = move(b, target["id"])
        assert _problem(refused, 422)["field"] == "parent_folder_id"
    assert path(d) == [x["id"], b["id"], c["id"]]

    other = _workspace(client, owner, "Other")
    elsewhere = _folder(client, owner, other["id"], "e")
    assert _problem(move(c, elsewhere["id"]), 422)["field"] == "parent_folder_id"
    _problem(move(c, str(uuid.uuid4())), 404)

    top = move(b, None)
    assert top.status_code == 200, top.text
    assert top.json()["parent_folder_id"] is None
    assert path(b) == []
    assert path(c) == [b["id"]]
    assert path(d) == [b["id"], c["id"]]
    assert _names(client.get(base, headers=owner.headers)) == ["a", "b2", "x"]
    # moving to where it already is changes nothing
    assert move(c, b["id"]).json()["ancestor_ids"] == [b["id"]]


def test_a_move_waits_for_the_tree_lock_then_decides_on_the_tree_as_it_is(
    client: TestClient, owner: Caller, database: Database
) -> None:
    """Two moves that would each be fine alone must not make a cycle together."""
    ws = _workspace(client, owner)
    a = _folder(client, owner, ws["id"], "a")
    b = _folder(client, owner, ws["id"], "b", a["id"])
    x = _folder(client, owner, ws["id"], "x")
    with database.owner_engine.connect() as conn, ThreadPoolExecutor(1) as pool:
        held = conn.begin()
        # the lock every change to the shape of this workspace's tree takes first
        conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"uzo:tree:{ws['id']}"},
        )
        move = pool.submit(
            client.patch,
            f"/api/folders/{a['id']}",
            json={"parent_folder_id": x["id"]},
            headers=owner.headers,
        )
        time.sleep(0.5)
        assert not move.done(), "the move did not wait for the tree lock"
        # meanwhile, another change puts x under b (a > b > x) and commits
        conn.execute(
            text(
                "UPDATE folders SET parent_folder_id = CAST(:b AS uuid), "
                "ancestor_ids = ARRAY[CAST(:a AS uuid), CAST(:b AS uuid)] WHERE id = :x"
            ),
            {"a": a["id"], "b": b["id"], "x": x["id"]},
        )
        held.commit()
        refused = move.result(timeout=30)
    assert _problem(refused, 422)["field"] == "parent_folder_id"
    got = client.get(f"/api/folders/{a['id']}", headers=owner.headers).json()
    assert got["ancestor_ids"] == []


def test_soft_delete_cascades_and_restore_brings_back_that_delete_only(
    client: TestClient, owner: Caller, database: Database
) -> None:
    ws = _workspace(client, owner)
    a = _folder(client, owner, ws["id"], "a")
    b = _folder(client, owner, ws["id"], "b", a["id"])
    c = _folder(client, owner, ws["id"], "c", b["id"])
    with Session(database.owner_engine) as s, s.begin():
        jobs = {}
        for folder in (a, c):
            job = Job(
                subscription_id=owner.subscription_id,
                folder_id=uuid.UUID(folder["id"]),
                job_name=f"job-{folder['name']}",
            )
            s.add(job)
            s.flush()
            s.add(Workflow(subscription_id=owner.subscription_id, job_id=job.id, workflow_name="w"))
            jobs[folder["name"]] = job.id

    def deleted() -> set[str]:
        with Session(database.owner_engine) as s:
            out = set()
            for model, label in ((Folder, "folder_name"), (Job, "job_name")):
                rows = s.scalars(
                    select(model).where(
                        model.subscription_id == owner.subscription_id,
                        model.deleted_at.is_not(None),
                    )
                )
                out |= {getattr(r, label) for r in rows}
            wf = s.scalars(
                select(Workflow).where(
                    Workflow.job_id.in_(jobs.values()), Workflow.deleted_at.is_not(None)
                )
            )
            out |= {f"wf-of-{w.job_id}" for w in wf}
            return out

    h = owner.headers
    # a sub-folder deleted on its own first...
    assert client.delete(f"/api/folders/{c['id']}", headers=h).status_code == 204
    assert deleted() == {"c", "job-c", f"wf-of-{jobs['c']}"}
    _problem(client.get(f"/api/folders/{c['id']}", headers=h), 404)
    # ...then the whole workspace
    assert client.delete(f"/api/workspaces/{ws['id']}", headers=h).status_code == 204
    assert deleted() == {"a", "b", "c", "job-a", "job-c", *{f"wf-of-{j}" for j in jobs.values()}}
    for folder in (a, b):
        _problem(client.get(f"/api/folders/{folder['id']}", headers=h), 404)
    _problem(client.get(f"/api/workspaces/{ws['id']}/folders", headers=h), 404)
    _problem(client.post(f"/api/workspaces/{ws['id']}/folders", json={"name": "n"}, headers=h), 404)
    assert _problem(client.post(f"/api/folders/{c['id']}/restore", headers=h), 409)["detail"]

    assert client.post(f"/api/workspaces/{ws['id']}/restore", headers=h).status_code == 200
    assert deleted() == {"c", "job-c", f"wf-of-{jobs['c']}"}  # deleted earlier: stays deleted
    assert client.get(f"/api/folders/{b['id']}", headers=h).status_code == 200
    restored = client.post(f"/api/folders/{c['id']}/restore", headers=h)
    assert restored.status_code == 200, restored.text
    assert restored.json()["ancestor_ids"] == [a["id"], b["id"]]
    assert deleted() == set()

    # a folder's delete takes its whole subtree; restoring it brings the subtree back
    assert client.delete(f"/api/folders/{a['id']}", headers=h).status_code == 204
    assert deleted() == {"a", "b", "c", "job-a", "job-c", *{f"wf-of-{j}" for j in jobs.values()}}
    _problem(client.post(f"/api/folders/{b['id']}/restore", headers=h), 409)  # parent deleted
    assert client.post(f"/api/folders/{a['id']}/restore", headers=h).status_code == 200
    assert deleted() == set()
    _problem(client.post(f"/api/folders/{a['id']}/restore", headers=h), 404)


# -- tenancy and grants ----------------------------------------------------------------------


def test_another_tenants_objects_are_404_on_every_route(
    client: TestClient, owner: Caller, stranger: Caller
) -> None:
    ws = _workspace(client, owner, "Secret")
    folder = _folder(client, owner, ws["id"], "f")
    gone_ws = _workspace(client, owner, "Gone")
    gone_folder = _folder(client, owner, ws["id"], "gone")
    for gone in (f"/api/workspaces/{gone_ws['id']}", f"/api/folders/{gone_folder['id']}"):
        assert client.delete(gone, headers=owner.headers).status_code == 204
    w, f = f"/api/workspaces/{ws['id']}", f"/api/folders/{folder['id']}"
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("get", w, None),
        ("patch", w, {"name": "mine"}),
        ("delete", w, None),
        ("post", f"/api/workspaces/{gone_ws['id']}/restore", None),
        ("post", f"{w}/restore", None),
        ("get", f"{w}/folders", None),
        ("post", f"{w}/folders", {"name": "x"}),
        ("get", f, None),
        ("patch", f, {"name": "mine"}),
        ("delete", f, None),
        ("post", f"/api/folders/{gone_folder['id']}/restore", None),
        ("post", f"{f}/restore", None),
    ]
    for method, url, body in calls:
        resp = client.request(method, url, json=body, headers=stranger.headers)
        assert _problem(resp, 404)["type"] == "/problems/not-found", f"{method} {url}"
    mine = _workspace(client, stranger, "Mine")
    into_foreign = client.post(
        f"/api/workspaces/{mine['id']}/folders",
        json={"name": "x", "parent_folder_id": folder["id"]},
        headers=stranger.headers,
    )
    _problem(into_foreign, 404)
    listed = client.get(
        f"/api/workspaces/{mine['id']}/folders",
        params={"parent_folder_id": folder["id"]},
        headers=stranger.headers,
    )
    _problem(listed, 404)
    assert _names(client.get("/api/workspaces", headers=stranger.headers)) == ["Mine"]
    assert client.get(w, headers=owner.headers).json()["name"] == "Secret"


def test_a_member_without_grants_is_refused_until_granted(
    client: TestClient, owner: Caller, member: Caller, database: Database
) -> None:
    ws = _workspace(client, owner)
    f1 = _folder(client, owner, ws["id"], "f1")
    f2 = _folder(client, owner, ws["id"], "f2")
    sub = _folder(client, owner, ws["id"], "sub", f1["id"])
    h = member.headers
    w = f"/api/workspaces/{ws['id']}"

    assert _names(client.get("/api/workspaces", headers=h)) == []
    assert "read on the workspace" in _problem(client.get(w, headers=h), 403)["detail"]
    assert (
        "admin on every workspace"
        in _problem(client.post("/api/workspaces", json={"name": "x"}, headers=h), 403)["detail"]
    )
    refused = client.post(f"{w}/folders", json={"name": "x"}, headers=h)
    assert "read_write on the workspace" in _problem(refused, 403)["detail"]
    _problem(client.get(f"/api/folders/{f1['id']}", headers=h), 403)
    assert _names(client.get(f"{w}/folders", headers=h)) == []

    # a grant on one folder: that folder (and what is under it) only
    _grant(database, member, "folder", f1["id"], "read")
    assert _names(client.get(f"{w}/folders", headers=h)) == ["f1"]
    assert client.get(f"/api/folders/{sub['id']}", headers=h).status_code == 200
    _problem(client.get(f"/api/folders/{f2['id']}", headers=h), 403)
    _problem(client.get(w, headers=h), 403)

    # read on the workspace: everything in it, listed; no change
    _grant(database, member, "workspace", ws["id"], "read")
    assert _names(client.get("/api/workspaces", headers=h)) == ["Sales"]
    assert client.get(w, headers=h).status_code == 200
    assert _names(client.get(f"{w}/folders", headers=h)) == ["f1", "f2"]
    patch = client.patch(w, json={"name": "Mine"}, headers=h)
    assert "read_write on the workspace; you have read" in _problem(patch, 403)["detail"]
    rename = client.patch(f"/api/folders/{f2['id']}", json={"name": "x"}, headers=h)
    assert "read_write on the folder" in _problem(rename, 403)["detail"]

    # read_write: change and create, but not move, delete or restore
    _grant(database, member, "workspace", ws["id"], "read_write")
    assert client.patch(w, json={"name": "Sales 2"}, headers=h).status_code == 200
    made = client.post(f"{w}/folders", json={"name": "f3", "parent_folder_id": f2["id"]}, headers=h)
    assert made.status_code == 201, made.text
    move = client.patch(
        f"/api/folders/{made.json()['id']}", json={"parent_folder_id": None}, headers=h
    )
    assert "admin on the folder" in _problem(move, 403)["detail"]
    assert "admin on the workspace" in _problem(client.delete(w, headers=h), 403)["detail"]
    _problem(client.delete(f"/api/folders/{f2['id']}", headers=h), 403)

    _grant(database, member, "workspace", ws["id"], "admin")
    again = client.patch(
        f"/api/folders/{made.json()['id']}", json={"parent_folder_id": None}, headers=h
    )
    assert again.status_code == 200, again.text
    assert client.delete(f"/api/folders/{f2['id']}", headers=h).status_code == 204
    assert client.post(f"/api/folders/{f2['id']}/restore", headers=h).status_code == 200
    assert client.delete(w, headers=h).status_code == 204
    assert client.post(f"{w}/restore", headers=h).status_code == 200


def test_a_role_on_workspaces_lets_a_member_create_and_list_them(
    client: TestClient, owner: Caller, member: Caller, database: Database
) -> None:
    theirs = _workspace(client, owner, "Owner's")
    with Session(database.owner_engine) as s, s.begin():
        role = Role(subscription_id=owner.subscription_id, role_name=f"ws-admin-{uuid.uuid4()}")
        s.add(role)
        s.flush()
        s.add(
            Permission(
                subscription_id=owner.subscription_id,
                role_id=role.id,
                resource_type="workspace",
                action="admin",
            )
        )
        s.add(
            UserRole(subscription_id=owner.subscription_id, user_id=member.user_id, role_id=role.id)
        )
    made = _workspace(client, member, "Member's")
    with Session(database.owner_engine) as s:
        level = s.scalar(
            select(ObjectPermission.permission_level).where(
                ObjectPermission.object_id == uuid.UUID(made["id"]),
                ObjectPermission.user_id == member.user_id,
            )
        )
        assert s.get(Workspace, uuid.UUID(made["id"])) is not None
    assert level == "owner"
    assert _names(client.get("/api/workspaces", headers=member.headers)) == ["Member's", "Owner's"]
    assert client.get(f"/api/workspaces/{theirs['id']}", headers=member.headers).status_code == 200
