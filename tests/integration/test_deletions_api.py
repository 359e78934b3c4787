"""Cascading soft delete, restore by the deletion log, hard delete, the log's endpoint,
and soft-deleted objects vanishing from lists, counts, permission checks and limits."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.factories import TEST_PASSWORD, auth_header, login, register, unique_email
from uzo_api.auth.crypto import hash_password
from uzo_api.cli_purge import count_expired, purge_expired
from uzo_api.db import migrate
from uzo_api.db.models import ObjectPermission, User
from uzo_api.schemas.auth import RegisterRequest
from uzo_api.services.platform_admins import create_platform_admin

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from uzo_api.db.session import Database
    from uzo_api.settings import Settings

PROBLEM = "application/problem+json"
MEMBER_PASSWORD = "another correct horse battery"


@dataclass(frozen=True)
class Caller:
    headers: dict[str, str]
    user_id: uuid.UUID
    subscription_id: uuid.UUID


def _owner(client: TestClient, company: str = "Acme") -> Caller:
    email = unique_email("del")
    user: Any = register(client, email=email, company=company)["user"]
    return Caller(
        auth_header(login(client, email)["access_token"]),
        uuid.UUID(user["id"]),
        uuid.UUID(user["subscription_id"]),
    )


@pytest.fixture
def owner(client: TestClient) -> Caller:
    return _owner(client)


@pytest.fixture
def member(client: TestClient, database: Database, owner: Caller) -> Caller:
    email = unique_email("delmember")
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


def _grant(database: Database, to: Caller, object_type: str, object_id: str, level: str) -> None:
    with Session(database.owner_engine) as s, s.begin():
        s.add(
            ObjectPermission(
                subscription_id=to.subscription_id,
                object_type=object_type,
                object_id=uuid.UUID(object_id),
                user_id=to.user_id,
                permission_level=level,
            )
        )


def _made(resp: Any) -> dict[str, Any]:
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = resp.json()
    return body


class Api:
    """Short calls for one caller."""

    def __init__(self, client: TestClient, who: Caller) -> None:
        self.c, self.h = client, who.headers

    def workspace(self, name: str) -> str:
        return str(_made(self.c.post("/api/workspaces", json={"name": name}, headers=self.h))["id"])

    def folder(self, ws: str, name: str, parent: str | None = None) -> str:
        resp = self.c.post(
            f"/api/workspaces/{ws}/folders",
            json={"name": name, "parent_folder_id": parent},
            headers=self.h,
        )
        return str(_made(resp)["id"])

    def job(self, folder: str, name: str) -> str:
        resp = self.c.post(f"/api/folders/{folder}/jobs", json={"name": name}, headers=self.h)
        return str(_made(resp)["id"])

    def workflow(self, job: str, name: str) -> str:
        resp = self.c.post(f"/api/jobs/{job}/workflows", json={"name": name}, headers=self.h)
        return str(_made(resp)["id"])

    def delete(self, path: str) -> None:
        resp = self.c.delete(path, headers=self.h)
        assert resp.status_code == 204, resp.text

    def deletions(self, **params: Any) -> list[dict[str, Any]]:
        resp = self.c.get("/api/audit/deletions", params=params, headers=self.h)
        assert resp.status_code == 200, resp.text
        items: list[dict[str, Any]] = resp.json()["items"]
        return items

    def last_deletion(self, resource_id: str) -> dict[str, Any]:
        return self.deletions(resource_id=resource_id)[0]

    def status(self, path: str) -> int:
        return int(self.c.get(path, headers=self.h).status_code)


def _deleted_ids(database: Database, subscription_id: uuid.UUID) -> set[str]:
    """Every soft-deleted object of the tenant, as the database holds it."""
    with database.owner_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id FROM workspaces WHERE subscription_id = :s AND deleted_at IS NOT NULL "
                "UNION ALL SELECT id FROM folders WHERE subscription_id = :s "
                "AND deleted_at IS NOT NULL "
                "UNION ALL SELECT id FROM jobs WHERE subscription_id = :s "
                "AND deleted_at IS NOT NULL "
                "UNION ALL SELECT id FROM workflows WHERE subscription_id = :s "
                "AND deleted_at IS NOT NULL"
            ),
            {"s": subscription_id},
        ).scalars()
        return {str(r) for r in rows}


# -- cascade and restore ---------------------------------------------------------------------------


def test_cascade_delete_and_restore_counts_on_a_nested_tree(
    client: TestClient, owner: Caller, database: Database
) -> None:
    api = Api(client, owner)
    ws = api.workspace("Tree")
    a = api.folder(ws, "a")
    b = api.folder(ws, "b", a)
    c = api.folder(ws, "c", b)
    d = api.folder(ws, "d")
    job_a, job_c, job_d = api.job(a, "job-a"), api.job(c, "job-c"), api.job(d, "job-d")
    wf_a1, wf_a2 = api.workflow(job_a, "wf-a1"), api.workflow(job_a, "wf-a2")
    wf_c = api.workflow(job_c, "wf-c")
    wf_d = api.workflow(job_d, "wf-d")

    # deleted separately before the cascade: one workflow, and a folder with its job
    api.delete(f"/api/workflows/{wf_a2}")
    api.delete(f"/api/folders/{d}")
    before = {wf_a2, d, job_d, wf_d}
    assert _deleted_ids(database, owner.subscription_id) == before
    folder_log = api.last_deletion(d)
    assert folder_log["cascaded_counts"] == {"folders": 0, "jobs": 1, "workflows": 1}

    api.delete(f"/api/workspaces/{ws}")
    log = api.last_deletion(ws)
    assert log["resource_type"] == "workspace"
    assert log["name"] == "Tree"
    assert log["status"] == "restorable"
    assert log["cascaded_counts"] == {"folders": 3, "jobs": 2, "workflows": 2}
    assert {k: set(v) for k, v in log["cascaded_ids"].items()} == {
        "folders": {a, b, c},
        "jobs": {job_a, job_c},
        "workflows": {wf_a1, wf_c},
    }
    deadline = dt.datetime.fromisoformat(log["restore_deadline"])
    deleted_at = dt.datetime.fromisoformat(log["deleted_at"])
    assert deadline - deleted_at == dt.timedelta(days=30)
    assert _deleted_ids(database, owner.subscription_id) == before | {
        ws,
        a,
        b,
        c,
        job_a,
        job_c,
        wf_a1,
        wf_c,
    }
    for path in (f"/api/workspaces/{ws}", f"/api/folders/{c}", f"/api/workflows/{wf_a1}"):
        assert api.status(path) == 404

    restored = client.post(f"/api/deletions/{log['id']}/restore", headers=owner.headers)
    assert restored.status_code == 200, restored.text
    assert restored.json()["status"] == "restored"
    assert restored.json()["restored_by"] == str(owner.user_id)
    # exactly that set came back; what was deleted on its own before stays deleted
    assert _deleted_ids(database, owner.subscription_id) == before
    for path in (f"/api/workspaces/{ws}", f"/api/folders/{c}", f"/api/workflows/{wf_a1}"):
        assert api.status(path) == 200
    for path in (f"/api/folders/{d}", f"/api/workflows/{wf_a2}", f"/api/jobs/{job_d}"):
        assert api.status(path) == 404
    again = client.post(f"/api/deletions/{log['id']}/restore", headers=owner.headers)
    assert "restored already" in _problem(again, 409)["detail"]

    with database.owner_engine.connect() as conn:
        audit = conn.execute(
            text(
                "SELECT action, changes FROM audit_logs WHERE resource_id = :id "
                "AND action LIKE 'workspace.%' ORDER BY created_at"
            ),
            {"id": ws},
        ).all()
        history = conn.execute(
            text("SELECT count(*) FROM data_change_history WHERE record_id = :id"), {"id": ws}
        ).scalar_one()
    assert [a for a, _ in audit] == ["workspace.create", "workspace.delete", "workspace.restore"]
    assert audit[1][1]["cascaded"] == {"folders": 3, "jobs": 2, "workflows": 2}
    assert audit[2][1]["restored"] == {"folders": 3, "jobs": 2, "workflows": 2}
    assert audit[2][1]["deletion_id"] == log["id"]
    assert history == 3  # the images of the creation, of the delete and of the restore

    # the folder deleted on its own comes back by its own log, under its live workspace
    back = client.post(f"/api/folders/{d}/restore", headers=owner.headers)
    assert back.status_code == 200, back.text
    assert _deleted_ids(database, owner.subscription_id) == {wf_a2}
    wf = client.post(
        f"/api/deletions/{api.last_deletion(wf_a2)['id']}/restore", headers=owner.headers
    )
    assert wf.status_code == 200, wf.text
    assert _deleted_ids(database, owner.subscription_id) == set()


def test_a_job_and_a_job_package_delete_and_restore_by_their_logs(
    client: TestClient, owner: Caller, database: Database
) -> None:
    api = Api(client, owner)
    folder = api.folder(api.workspace("Jobs"), "f")
    job = api.job(folder, "nightly")
    flows = {api.workflow(job, "one"), api.workflow(job, "two")}
    api.delete(f"/api/jobs/{job}")
    log = api.last_deletion(job)
    assert log["cascaded_counts"] == {"workflows": 2}
    assert set(log["cascaded_ids"]["workflows"]) == flows
    package = _made(client.post("/api/jobpackages", json={"name": "p"}, headers=owner.headers))
    api.delete(f"/api/jobpackages/{package['id']}")
    plog = api.last_deletion(package["id"])
    assert (plog["resource_type"], plog["cascaded_counts"]) == ("jobpackage", {})
    assert api.status(f"/api/jobpackages/{package['id']}") == 404
    for deletion in (log, plog):
        resp = client.post(f"/api/deletions/{deletion['id']}/restore", headers=owner.headers)
        assert resp.status_code == 200, resp.text
    assert api.status(f"/api/jobpackages/{package['id']}") == 200
    assert _deleted_ids(database, owner.subscription_id) == set()


def test_restore_refuses_a_deleted_parent_naming_it_and_a_log_taken_in_a_cascade(
    client: TestClient, owner: Caller
) -> None:
    api = Api(client, owner)
    ws = api.workspace("Parents")
    outer = api.folder(ws, "outer")
    inner = api.folder(ws, "inner", outer)
    job = api.job(inner, "j")
    api.delete(f"/api/jobs/{job}")
    job_log = api.last_deletion(job)
    api.delete(f"/api/folders/{outer}")
    refused = client.post(f"/api/deletions/{job_log['id']}/restore", headers=owner.headers)
    detail = _problem(refused, 409)["detail"]
    assert "'inner'" in detail
    assert inner in detail
    # the inner folder went with the outer one: its own restore names that deletion
    outer_log = api.last_deletion(outer)
    taken = _problem(client.post(f"/api/folders/{inner}/restore", headers=owner.headers), 409)
    assert outer_log["id"] in taken["detail"]
    assert "'outer'" in taken["detail"]
    assert client.post(f"/api/folders/{outer}/restore", headers=owner.headers).status_code == 200
    assert (
        client.post(f"/api/deletions/{job_log['id']}/restore", headers=owner.headers).status_code
        == 200
    )
    assert api.status(f"/api/jobs/{job}") == 200


def test_a_name_taken_meanwhile_is_409_and_nothing_is_half_restored(
    client: TestClient, owner: Caller, database: Database
) -> None:
    api = Api(client, owner)
    ws = api.workspace("Names")
    raw = api.folder(ws, "raw")
    sub = api.folder(ws, "sub", raw)
    job = api.job(sub, "load")
    flow = api.workflow(job, "flow")
    api.delete(f"/api/folders/{raw}")
    log = api.last_deletion(raw)
    gone = _deleted_ids(database, owner.subscription_id)
    assert gone == {raw, sub, job, flow}

    newcomer = api.folder(ws, "raw")  # the name is free while the old one is deleted
    refused = client.post(f"/api/deletions/{log['id']}/restore", headers=owner.headers)
    problem = _problem(refused, 409)
    assert "'raw'" in problem["detail"]
    assert newcomer in problem["detail"]
    assert _deleted_ids(database, owner.subscription_id) == gone  # nothing half-restored
    assert api.last_deletion(raw)["status"] == "restorable"

    # names are unique among live siblings: create, rename and move all refuse a duplicate
    dup = client.post(f"/api/workspaces/{ws}/folders", json={"name": "raw"}, headers=owner.headers)
    assert _problem(dup, 409)["field"] == "body.name"
    other = api.folder(ws, "other")
    rename = client.patch(f"/api/folders/{other}", json={"name": "raw"}, headers=owner.headers)
    _problem(rename, 409)
    elsewhere = api.folder(ws, "raw", other)  # another parent: fine
    move = client.patch(
        f"/api/folders/{elsewhere}", json={"parent_folder_id": None}, headers=owner.headers
    )
    _problem(move, 409)
    dup_ws = client.post("/api/workspaces", json={"name": "Names"}, headers=owner.headers)
    _problem(dup_ws, 409)
    other_job = api.job(other, "load")  # same name, another folder: fine
    dup_job = client.patch(f"/api/jobs/{other_job}", json={"name": "load"}, headers=owner.headers)
    assert dup_job.status_code == 200, dup_job.text
    api.workflow(other_job, "flow")
    dup_flow = client.post(
        f"/api/jobs/{other_job}/workflows", json={"name": "flow"}, headers=owner.headers
    )
    _problem(dup_flow, 409)

    assert (
        client.patch(
            f"/api/folders/{newcomer}", json={"name": "raw v2"}, headers=owner.headers
        ).status_code
        == 200
    )
    ok = client.post(f"/api/deletions/{log['id']}/restore", headers=owner.headers)
    assert ok.status_code == 200, ok.text
    assert _deleted_ids(database, owner.subscription_id) == set()


def test_past_the_deadline_a_restore_is_gone(
    client: TestClient, owner: Caller, database: Database
) -> None:
    api = Api(client, owner)
    ws = api.workspace("Old")
    api.delete(f"/api/workspaces/{ws}")
    log = api.last_deletion(ws)
    with database.owner_engine.begin() as conn:
        conn.execute(
            text("UPDATE deletion_logs SET restore_deadline = now() - interval '1 second' "
                 "WHERE id = :id"),
            {"id": log["id"]},
        )  # fmt: skip
    assert api.last_deletion(ws)["status"] == "expired"
    late = client.post(f"/api/deletions/{log['id']}/restore", headers=owner.headers)
    assert "restore window" in _problem(late, 410)["detail"]
    _problem(client.post(f"/api/workspaces/{ws}/restore", headers=owner.headers), 410)
    assert api.status(f"/api/workspaces/{ws}") == 404


# -- hard delete and purge -------------------------------------------------------------------------


def _count(database: Database, table: str, ids: list[str]) -> int:
    with database.owner_engine.connect() as conn:
        return int(
            conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE id = ANY(CAST(:ids AS uuid[]))"),
                {"ids": ids},
            ).scalar_one()
        )


def test_hard_delete_is_admin_only_audited_and_removes_the_rows(
    client: TestClient, owner: Caller, member: Caller, database: Database
) -> None:
    api = Api(client, owner)
    ws = api.workspace("Doomed")
    folder = api.folder(ws, "f")
    job = api.job(folder, "j")
    flow = api.workflow(job, "w")
    _grant(database, member, "workspace", ws, "read_write")
    api.delete(f"/api/workspaces/{ws}")
    log = api.last_deletion(ws)

    refused = client.delete(f"/api/deletions/{log['id']}", headers=member.headers)
    assert "admin" in _problem(refused, 403)["detail"]
    assert _count(database, "workspaces", [ws]) == 1

    done = client.delete(f"/api/deletions/{log['id']}", headers=owner.headers)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "purged"
    assert done.json()["purged_by"] == str(owner.user_id)
    assert _count(database, "workspaces", [ws]) == 0
    assert _count(database, "folders", [folder]) == 0
    assert _count(database, "jobs", [job]) == 0
    assert _count(database, "workflows", [flow]) == 0
    with database.owner_engine.connect() as conn:
        grants = conn.execute(
            text("SELECT count(*) FROM object_permissions WHERE object_id = :id"), {"id": ws}
        ).scalar_one()
        purge = conn.execute(
            text("SELECT changes FROM audit_logs WHERE resource_id = :id AND action = :a"),
            {"id": ws, "a": "workspace.purge"},
        ).scalar_one()
    assert grants == 0
    assert purge["removed"]["workflows"] == 1
    assert purge["removed"]["folders"] == 1
    _problem(client.post(f"/api/deletions/{log['id']}/restore", headers=owner.headers), 410)
    _problem(client.delete(f"/api/deletions/{log['id']}", headers=owner.headers), 410)
    assert api.deletions(resource_id=ws, action="hard")[0]["id"] == log["id"]
    assert api.deletions(resource_id=ws, action="soft") == []


def test_uzo_db_purge_removes_what_is_past_the_window_only(
    client: TestClient, owner: Caller, database: Database
) -> None:
    api = Api(client, owner)
    old_ws, new_ws = api.workspace("Purge old"), api.workspace("Purge new")
    old_folder = api.folder(old_ws, "f")
    old_flow = api.workflow(api.job(old_folder, "j"), "w")
    api.delete(f"/api/workspaces/{old_ws}")
    api.delete(f"/api/workspaces/{new_ws}")
    with database.owner_engine.begin() as conn:
        for table in ("workspaces", "folders", "jobs", "workflows"):
            conn.execute(
                text(f"UPDATE {table} SET deleted_at = deleted_at - interval '31 days' "
                     "WHERE subscription_id = :s AND deleted_at IS NOT NULL "
                     "AND id <> :keep"),
                {"s": owner.subscription_id, "keep": new_ws},
            )  # fmt: skip
    would = count_expired(database.owner_engine, 30)
    assert would["workspaces"] >= 1
    assert would["workflows"] >= 1
    assert _count(database, "workspaces", [old_ws]) == 1  # a dry run removes nothing
    removed = purge_expired(database.owner_engine, 30)
    assert removed["workspaces"] >= 1
    assert _count(database, "workspaces", [old_ws]) == 0
    assert _count(database, "workflows", [old_flow]) == 0
    assert _count(database, "workspaces", [new_ws]) == 1  # inside the window: kept
    assert api.last_deletion(old_ws)["status"] == "purged"
    assert api.last_deletion(old_ws)["purged_by"] is None
    with database.owner_engine.connect() as conn:
        audited = conn.execute(
            text("SELECT user_id, changes FROM audit_logs WHERE resource_id = :id AND action = :a"),
            {"id": old_ws, "a": "workspace.purge"},
        ).one()
    assert audited.user_id is None
    assert audited.changes["deletion_id"] == api.last_deletion(old_ws)["id"]
    assert api.last_deletion(new_ws)["status"] == "restorable"


# -- the log's endpoint ----------------------------------------------------------------------------


def test_deletion_log_filters_pages_and_who_reads_it(
    client: TestClient, owner: Caller, member: Caller, database: Database
) -> None:
    api = Api(client, owner)
    ws = api.workspace("Log")
    folders = [api.folder(ws, f"f{i}") for i in range(5)]
    _grant(database, member, "folder", folders[4], "admin")
    for folder in folders[:4]:
        api.delete(f"/api/folders/{folder}")
    Api(client, member).delete(f"/api/folders/{folders[4]}")
    client.post(f"/api/folders/{folders[0]}/restore", headers=owner.headers)

    every = api.deletions(resource_type="folder", limit=200)
    assert [d["resource_id"] for d in every] == folders[::-1]  # newest first
    seen: list[str] = []
    url: str | None = "/api/audit/deletions?resource_type=folder&limit=2"
    pages = 0
    while url:
        resp = client.get(url, headers=owner.headers)
        assert resp.status_code == 200, resp.text
        seen += [d["resource_id"] for d in resp.json()["items"]]
        url = resp.json()["next"]
        pages += 1
    assert (seen, pages) == (folders[::-1], 3)

    assert [d["resource_id"] for d in api.deletions(user=str(member.user_id))] == [folders[4]]
    assert [d["resource_id"] for d in api.deletions(action="restored")] == [folders[0]]
    assert {d["resource_id"] for d in api.deletions(resource_type="folder", action="soft")} == set(
        folders[1:]
    )
    middle = dt.datetime.fromisoformat(every[2]["deleted_at"])
    since = api.deletions(resource_type="folder", **{"from": middle.isoformat()})
    assert [d["resource_id"] for d in since] == [d["resource_id"] for d in every[:3]]
    until = api.deletions(resource_type="folder", to=middle.isoformat())
    assert [d["resource_id"] for d in until] == [d["resource_id"] for d in every[3:]]
    naive = client.get("/api/audit/deletions?from=2026-01-01T00:00:00", headers=owner.headers)
    assert _problem(naive, 422)["field"] == "query.from"
    assert api.deletions(resource_type="workspace", resource_id=ws) == []  # live, never deleted
    unknown = client.get(f"/api/audit/deletions?resource_id={uuid.uuid4()}", headers=owner.headers)
    assert _problem(unknown, 404)["field"] == "query.resource_id"

    # a member reads the deletions they made; a stranger none of this tenant's
    assert [d["resource_id"] for d in Api(client, member).deletions()] == [folders[4]]
    stranger = _owner(client, "Elsewhere")
    assert Api(client, stranger).deletions() == []
    theirs = client.get(f"/api/audit/deletions?resource_id={folders[1]}", headers=stranger.headers)
    _problem(theirs, 404)  # as for an id that never existed: no existence oracle
    foreign = client.post(f"/api/deletions/{every[1]['id']}/restore", headers=stranger.headers)
    _problem(foreign, 404)
    _problem(client.delete(f"/api/deletions/{every[1]['id']}", headers=stranger.headers), 404)
    refused = client.get("/api/audit/deletions?all_tenants=true", headers=owner.headers)
    assert "platform admin" in _problem(refused, 403)["detail"]


def test_a_platform_admin_lists_the_deletions_of_every_tenant(
    client: TestClient, owner: Caller, database: Database
) -> None:
    api = Api(client, owner)
    ws = api.workspace("Across")
    api.delete(f"/api/workspaces/{ws}")
    email = unique_email("padel")
    create_platform_admin(
        database, RegisterRequest(email=email, password=TEST_PASSWORD, company_name="Platform")
    )
    admin = auth_header(login(client, email)["access_token"])
    own = client.get("/api/audit/deletions", params={"resource_id": ws}, headers=admin)
    _problem(own, 404)  # without all_tenants: their own tenant only, which never had it
    every = client.get(
        "/api/audit/deletions", params={"resource_id": ws, "all_tenants": "true"}, headers=admin
    )
    assert every.status_code == 200, every.text
    [found] = every.json()["items"]
    assert found["subscription_id"] == str(owner.subscription_id)


# -- soft-deleted objects are gone everywhere ------------------------------------------------------


def test_soft_deleted_objects_vanish_from_lists_counts_checks_and_limits(
    client: TestClient, owner: Caller, member: Caller, database: Database
) -> None:
    api = Api(client, owner)
    h = owner.headers
    ws = api.workspace("Vanish")
    folder = api.folder(ws, "f")
    keep = api.job(folder, "keep")
    gone = api.job(folder, "gone")
    gone_flows = [api.workflow(gone, f"g{i}") for i in range(3)]
    keep_flows = [api.workflow(keep, f"k{i}") for i in range(7)]  # 10: the Standard plan's all
    package = _made(client.post("/api/jobpackages", json={"name": "pkg"}, headers=h))
    put = client.put(
        f"/api/jobpackages/{package['id']}/jobs", json={"job_ids": [keep, gone]}, headers=h
    )
    assert put.status_code == 200, put.text
    _grant(database, member, "job", gone, "admin")

    api.delete(f"/api/jobs/{gone}")
    log = api.last_deletion(gone)
    # lists
    jobs = client.get(f"/api/folders/{folder}/jobs", headers=h).json()["items"]
    assert [j["id"] for j in jobs] == [keep]
    flows = client.get(f"/api/jobs/{keep}/workflows", headers=h).json()["items"]
    assert len(flows) == 7
    assert client.get(f"/api/jobpackages/{package['id']}", headers=h).json()["job_ids"] == [keep]
    # counts
    usage = client.get("/api/features/usage/workflows", headers=h).json()
    assert usage["used"] == 7
    # permission checks: the grant on the deleted job gives nothing
    check = client.get(
        "/api/permissions/check",
        params={"object_type": "job", "object_id": gone, "level": "read"},
        headers=member.headers,
    )
    _problem(check, 404)
    assert Api(client, member).status(f"/api/jobs/{gone}") == 404
    assert Api(client, member).status(f"/api/workflows/{gone_flows[0]}") == 404
    # limits: the three slots are free again...
    more = [api.workflow(keep, f"new{i}") for i in range(3)]
    over = client.post(f"/api/jobs/{keep}/workflows", json={"name": "x"}, headers=h)
    assert _problem(over, 403)["type"] == "/problems/plan-limit"
    # ...so bringing the three back does not fit, and nothing comes back
    full = client.post(f"/api/deletions/{log['id']}/restore", headers=h)
    assert _problem(full, 403)["limit"]["used"] == 10
    assert api.status(f"/api/jobs/{gone}") == 404
    for flow in more:
        api.delete(f"/api/workflows/{flow}")
    ok = client.post(f"/api/deletions/{log['id']}/restore", headers=h)
    assert ok.status_code == 200, ok.text
    assert client.get("/api/features/usage/workflows", headers=h).json()["used"] == 10
    assert len(keep_flows) == 7


# -- the migration ---------------------------------------------------------------------------------


def test_migration_0006_renames_live_duplicates_logs_old_deletes_and_goes_down_and_up(
    client: TestClient, database: Database, settings: Settings, owner: Caller
) -> None:
    sid = owner.subscription_id
    ids = [uuid.uuid4() for _ in range(3)]
    ws, folder, early, job = (uuid.uuid4() for _ in range(4))
    migrate.downgrade(database.owner_engine, settings, "0005")
    try:
        with database.owner_engine.begin() as conn:
            for i, wid in enumerate(ids):
                conn.execute(
                    text(
                        "INSERT INTO workspaces (id, subscription_id, workspace_name, created_at, "
                        "deleted_at) VALUES (:id, :s, 'Twin', now() + make_interval(secs => :i), "
                        "CASE WHEN :i = 2 THEN now() END)"
                    ),
                    {"id": wid, "s": sid, "i": i},
                )
            # deleted the old way (no log): a workspace with a folder and a job stamped with
            # its timestamp, and a folder deleted on its own earlier
            when = "now() - interval '1 day'"
            conn.execute(
                text(f"INSERT INTO workspaces (id, subscription_id, workspace_name, deleted_at) "
                     f"VALUES (:ws, :s, 'Old way', {when})"),
                {"ws": ws, "s": sid},
            )  # fmt: skip
            for fid, name, at in ((folder, "f", when), (early, "e", "now() - interval '2 days'")):
                conn.execute(
                    text(f"INSERT INTO folders (id, subscription_id, workspace_id, folder_name, "
                         f"deleted_at) VALUES (:f, :s, :ws, :n, {at})"),
                    {"f": fid, "s": sid, "ws": ws, "n": name},
                )  # fmt: skip
            conn.execute(
                text(f"INSERT INTO jobs (id, subscription_id, folder_id, job_name, deleted_at, "
                     f"schedule_type, timezone, is_enabled) "
                     f"VALUES (:j, :s, :f, 'j', {when}, 'manual', 'UTC', true)"),
                {"j": job, "s": sid, "f": folder},
            )  # fmt: skip
    finally:
        migrate.upgrade(database.owner_engine, settings)
    assert migrate.current_revision(database.owner_engine) == migrate.head_revision(settings)
    with database.owner_engine.connect() as conn:
        names = dict(
            conn.execute(
                text("SELECT id, workspace_name FROM workspaces WHERE id = ANY(:ids)"),
                {"ids": ids},
            ).all()
        )
    assert names[ids[0]] == "Twin"  # the oldest keeps its name
    assert names[ids[1]] == f"Twin ({str(ids[1])[:8]})"
    assert names[ids[2]] == "Twin"  # a deleted one blocks nothing and is left alone

    api = Api(client, owner)
    log = api.last_deletion(str(ws))
    assert log["cascaded_ids"] == {"folders": [str(folder)], "jobs": [str(job)], "workflows": []}
    assert log["status"] == "restorable"
    assert api.last_deletion(str(early))["cascaded_counts"] == {
        "folders": 0, "jobs": 0, "workflows": 0
    }  # fmt: skip
    restored = client.post(f"/api/deletions/{log['id']}/restore", headers=owner.headers)
    assert restored.status_code == 200, restored.text
    assert api.status(f"/api/jobs/{job}") == 200
    assert api.status(f"/api/folders/{early}") == 404


def test_a_deleted_workspaces_connectors_are_gone_with_it_until_restored(
    client: TestClient, owner: Caller, member: Caller, database: Database
) -> None:
    api = Api(client, owner)
    ws = api.workspace("With a connector")
    body = {
        "name": f"lake-{uuid.uuid4().hex[:8]}",
        "connector_type": "s3",
        "workspace_id": ws,
        "config": {"bucket": "lake", "endpoint_url": "http://127.0.0.1:9"},
    }
    connector = _made(client.post("/api/connectors", json=body, headers=owner.headers))["id"]
    _grant(database, member, "workspace", ws, "read")

    def listed(who: Caller) -> list[str]:
        resp = client.get("/api/connectors", params={"limit": 200}, headers=who.headers)
        assert resp.status_code == 200, resp.text
        return [c["id"] for c in resp.json()["items"]]

    assert connector in listed(member)
    api.delete(f"/api/workspaces/{ws}")
    for who in (owner, member):
        assert connector not in listed(who)
        assert Api(client, who).status(f"/api/connectors/{connector}") == 404
    restored = client.post(f"/api/workspaces/{ws}/restore", headers=owner.headers)
    assert restored.status_code == 200, restored.text
    assert connector in listed(member)
    assert Api(client, member).status(f"/api/connectors/{connector}") == 200


def test_a_job_created_while_its_folder_is_being_deleted_is_refused_not_orphaned(
    client: TestClient, owner: Caller, database: Database
) -> None:
    api = Api(client, owner)
    folder = api.folder(api.workspace("Race"), "f")
    with database.owner_engine.connect() as conn, ThreadPoolExecutor(1) as pool:
        held = conn.begin()
        # a delete of the folder, not committed yet (it holds the folder's row)
        conn.execute(text("UPDATE folders SET deleted_at = now() WHERE id = :f"), {"f": folder})
        create = pool.submit(
            client.post, f"/api/folders/{folder}/jobs", json={"name": "late"}, headers=owner.headers
        )
        time.sleep(0.5)
        assert not create.done(), "the creation did not wait for the folder's delete"
        held.commit()
        refused = create.result(timeout=30)
    _problem(refused, 404)
    with database.owner_engine.connect() as conn:
        live = conn.execute(
            text("SELECT count(*) FROM jobs WHERE folder_id = :f"), {"f": folder}
        ).scalar_one()
    assert live == 0
