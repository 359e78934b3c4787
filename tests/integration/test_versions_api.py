"""Workflow versions through the API, against the real database.

Saves make versions (identical ones none), history pages newest first, check-out
contention between two users (409 naming the holder, expiry, an admin breaking the lock),
race-free version numbers and check-outs, check-in, publish and what runs, rollback round
trip, diff, comments, audit rows, tenants and mass assignment.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select, text

from tests.integration.test_workflows_api import (
    Tenant,
    _tenant_session,
    grant,
    make_job,
    make_workflow,
    member,
    new_tenant,
    problem,
    small_diagram,
    tenant,
)
from uzo_api.auth.principal import Principal
from uzo_api.context import RequestContext
from uzo_api.db.models import AuditLog, DataChangeHistory, User, Workflow
from uzo_api.errors import Conflict

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from uzo_api.db.session import Database

__all__ = ["tenant"]  # the fixture, imported for the tests below


def moved(doc: dict[str, Any], dx: int = 50) -> dict[str, Any]:
    """The same workflow with its first node dragged: a layout-only change."""
    out = copy.deepcopy(doc)
    out["nodes"][0]["position"]["x"] += dx
    return out


def with_condition(doc: dict[str, Any], condition: str) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out["nodes"][1]["data"]["config"]["condition"] = condition
    return out


def new_workflow(client: TestClient, tenant: Tenant) -> str:
    job = make_job(client, tenant)
    made = make_workflow(client, tenant, job["id"], small_diagram())
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def save(
    client: TestClient, headers: dict[str, str], workflow_id: str, diagram: dict[str, Any]
) -> Any:
    return client.patch(f"/api/workflows/{workflow_id}", headers=headers, json={"diagram": diagram})


def versions(client: TestClient, headers: dict[str, str], workflow_id: str) -> list[dict]:
    resp = client.get(f"/api/workflows/{workflow_id}/versions?limit=200", headers=headers)
    assert resp.status_code == 200, resp.text
    items: list[dict] = resp.json()["items"]
    return items


def number(items: list[dict], n: int) -> dict[str, Any]:
    return next(v for v in items if v["version_number"] == n)


def as_owner(tenant: Tenant, user_id: uuid.UUID | None = None) -> Principal:
    return Principal(user_id or tenant.user_id, tenant.subscription_id, "jwt", is_owner=True)


def test_every_save_makes_a_version_and_identical_saves_none(
    client: TestClient, tenant: Tenant
) -> None:
    workflow_id = new_workflow(client, tenant)
    h = tenant.headers
    first = versions(client, h, workflow_id)
    assert [v["version_number"] for v in first] == [1]
    assert first[0]["status"] == "checked_in"
    assert first[0]["source"] == "save"
    assert client.get(f"/api/workflows/{workflow_id}", headers=h).json()["current_version"] == 1
    # the same diagram again, or a rename: no version
    assert save(client, h, workflow_id, small_diagram()).status_code == 200
    renamed = client.patch(f"/api/workflows/{workflow_id}", headers=h, json={"name": "other"})
    assert renamed.status_code == 200
    assert len(versions(client, h, workflow_id)) == 1
    # a layout change is a version (the stored document changed), reported as layout-only
    assert save(client, h, workflow_id, moved(small_diagram())).json()["current_version"] == 2
    changed = save(client, h, workflow_id, with_condition(moved(small_diagram()), "amount > 3"))
    assert changed.json()["current_version"] == 3
    # the same again: none
    save(client, h, workflow_id, with_condition(moved(small_diagram()), "amount > 3"))
    unfinished = with_condition(moved(small_diagram()), "amount > 3")
    unfinished["nodes"][1]["data"]["config"] = {}
    draft = client.patch(
        f"/api/workflows/{workflow_id}?draft=true", headers=h, json={"diagram": unfinished}
    )
    assert draft.status_code == 200, draft.text
    history = versions(client, h, workflow_id)
    assert [v["version_number"] for v in history] == [4, 3, 2, 1]
    assert number(history, 4)["status"] == "draft"
    # newest first, in pages that neither skip nor repeat
    page = client.get(f"/api/workflows/{workflow_id}/versions?limit=3", headers=h).json()
    assert [v["version_number"] for v in page["items"]] == [4, 3, 2]
    rest = client.get(page["next"], headers=h).json()
    assert [v["version_number"] for v in rest["items"]] == [1]
    assert rest["next"] is None
    # one version with its diagram
    one = client.get(f"/api/versions/{number(history, 2)['id']}", headers=h)
    assert one.status_code == 200
    assert one.json()["diagram"] == moved(small_diagram())
    assert "diagram" not in history[0]
    # the diff of a drag and of a config change
    layout = client.get(f"/api/workflows/{workflow_id}/versions/diff?from=1&to=2", headers=h)
    assert layout.status_code == 200, layout.text
    body = layout.json()
    assert (body["layout_only"], body["identical"]) == (True, False)
    assert body["layout"]["nodes"] == [
        {"id": "rows", "changes": [{"path": "position.x", "kind": "changed", "old": 0, "new": 50}]}
    ]
    logic = client.get(f"/api/workflows/{workflow_id}/versions/diff?from=2", headers=h).json()
    assert logic["to_version"] == 4
    assert logic["layout_only"] is False
    assert logic["nodes"]["changed"] == [
        {
            "id": "keep",
            "changes": [
                {
                    "path": "data.config.condition",
                    "kind": "removed",
                    "old": "amount > 1",
                    "new": None,
                }
            ],
        }
    ]
    three = client.get(f"/api/workflows/{workflow_id}/versions/diff?from=2&to=3", headers=h)
    assert three.json()["nodes"]["changed"][0]["changes"] == [
        {
            "path": "data.config.condition",
            "kind": "changed",
            "old": "amount > 1",
            "new": "amount > 3",
        }
    ]
    missing = client.get(f"/api/workflows/{workflow_id}/versions/diff?from=9", headers=h)
    assert "no version 9" in problem(missing, 404)["detail"]


def test_checkout_contention_between_two_users(
    client: TestClient, database: Database, tenant: Tenant
) -> None:
    workflow_id = new_workflow(client, tenant)
    job_id = client.get(f"/api/workflows/{workflow_id}", headers=tenant.headers).json()["job_id"]
    bob_id, bob = member(client, database, tenant)
    grant(database, tenant, bob_id, "job", job_id, "read_write")
    with _tenant_session(database, tenant.subscription_id) as s:
        bob_email = s.get(User, bob_id).email  # type: ignore[union-attr]
    alice = tenant.headers
    v1 = versions(client, alice, workflow_id)[0]["id"]

    taken = client.post(f"/api/versions/{v1}/checkout", headers=bob)
    assert taken.status_code == 200, taken.text
    lock = taken.json()
    assert (lock["checked_out"], lock["holder_id"], lock["holder_email"]) == (
        True,
        str(bob_id),
        bob_email,
    )
    assert lock["version_id"] == v1
    since = dt.datetime.fromisoformat(lock["checked_out_at"])
    assert dt.datetime.fromisoformat(lock["expires_at"]) - since == dt.timedelta(minutes=60)

    # everyone else is refused, naming the holder and since when
    refusals = {
        "save": save(client, alice, workflow_id, with_condition(small_diagram(), "amount > 2")),
        "rename": client.patch(f"/api/workflows/{workflow_id}", headers=alice, json={"name": "x"}),
        "checkout": client.post(f"/api/versions/{v1}/checkout", headers=alice),
        "version": client.post(f"/api/workflows/{workflow_id}/versions", headers=alice, json={}),
        "rollback": client.post(f"/api/versions/{v1}/rollback", headers=alice),
        "checkin": client.post(f"/api/versions/{v1}/checkin", headers=alice, json={"comment": "x"}),
    }
    for what, resp in refusals.items():
        detail = problem(resp, 409)["detail"]
        assert bob_email in detail, what
        assert str(bob_id) in detail, what
        assert since.isoformat() in detail, what
    assert len(versions(client, alice, workflow_id)) == 1
    # the holder's own saves pass and make versions
    mine = save(client, bob, workflow_id, with_condition(small_diagram(), "amount > 2"))
    assert mine.status_code == 200, mine.text
    assert mine.json()["current_version"] == 2
    # checking in: a version with the comment, and the lock is gone
    checked_in = client.post(
        f"/api/versions/{v1}/checkin", headers=bob, json={"comment": "stricter filter"}
    )
    assert checked_in.status_code == 201, checked_in.text
    assert checked_in.json()["version_number"] == 3
    assert checked_in.json()["source"] == "checkin"
    assert checked_in.json()["comment"] == "stricter filter"
    comments = client.get(f"/api/versions/{checked_in.json()['id']}/comments", headers=alice)
    assert [c["text"] for c in comments.json()["items"]] == ["stricter filter"]
    state = client.get(f"/api/workflows/{workflow_id}/checkout", headers=alice).json()
    assert (state["checked_out"], state["holder_id"]) == (False, None)
    not_held = client.post(f"/api/versions/{v1}/checkin", headers=bob, json={"comment": "again"})
    assert "not checked out" in problem(not_held, 409)["detail"]
    assert save(client, alice, workflow_id, small_diagram()).status_code == 200

    # an old version cannot be checked out (roll back to it first)
    assert (
        "not the latest"
        in problem(client.post(f"/api/versions/{v1}/checkout", headers=bob), 409)["detail"]
    )
    head = versions(client, alice, workflow_id)[0]["id"]
    assert client.post(f"/api/versions/{head}/checkout", headers=bob).status_code == 200
    # bob (read_write) cannot break alice's lock; alice (owner, so admin) can break bob's
    assert client.post(f"/api/versions/{head}/checkout", headers=bob).status_code == 200  # renew
    broken = client.delete(f"/api/workflows/{workflow_id}/checkout", headers=alice)
    assert broken.status_code == 204
    assert save(client, alice, workflow_id, moved(small_diagram())).status_code == 200
    head = versions(client, alice, workflow_id)[0]["id"]
    assert client.post(f"/api/versions/{head}/checkout", headers=alice).status_code == 200
    refused = client.delete(f"/api/workflows/{workflow_id}/checkout", headers=bob)
    assert "admin on the workflow" in problem(refused, 403)["detail"]

    # a check-out expires: then it binds nobody
    with _tenant_session(database, tenant.subscription_id) as s:
        s.execute(
            text(
                "UPDATE workflows SET checked_out_at = now() - interval '61 minutes' WHERE id = :w"
            ),
            {"w": workflow_id},
        )
        s.commit()
    state = client.get(f"/api/workflows/{workflow_id}/checkout", headers=bob).json()
    assert (state["checked_out"], state["expired"]) == (False, True)
    late = save(client, bob, workflow_id, with_condition(small_diagram(), "amount > 5"))
    assert late.status_code == 200, late.text
    # anyone who may save clears an expired check-out (break_checkout), and one's own
    assert client.delete(f"/api/workflows/{workflow_id}/checkout", headers=bob).status_code == 204
    head = versions(client, alice, workflow_id)[0]["id"]
    assert client.post(f"/api/versions/{head}/checkout", headers=bob).status_code == 200
    assert client.delete(f"/api/workflows/{workflow_id}/checkout", headers=bob).status_code == 204
    assert save(client, alice, workflow_id, small_diagram()).status_code == 200

    with _tenant_session(database, tenant.subscription_id) as s:
        actions = s.scalars(
            select(AuditLog.action).where(AuditLog.resource_id == uuid.UUID(workflow_id))
        ).all()
        broke = s.scalars(
            select(DataChangeHistory).where(
                DataChangeHistory.record_id == uuid.UUID(workflow_id),
                DataChangeHistory.table_name == "workflows",
            )
        ).all()
    assert actions.count("workflow.checkout") == 5
    assert {
        "workflow.checkin",
        "workflow.break_checkout",
        "workflow.release_checkout",
    } <= set(actions)
    images = [(h.old_data, h.new_data) for h in broke if h.old_data and h.new_data]
    assert any(
        old["checked_out_by"] == str(bob_id) and new["is_checked_out"] is False
        for old, new in images
    )


def test_two_users_racing_for_a_checkout_one_wins(
    client: TestClient, database: Database, tenant: Tenant
) -> None:
    workflow_id = new_workflow(client, tenant)
    v1 = uuid.UUID(versions(client, tenant.headers, workflow_id)[0]["id"])
    racers = [tenant.user_id] + [member(client, database, tenant)[0] for _ in range(3)]
    services = client.app.state.services  # type: ignore[attr-defined]
    barrier = threading.Barrier(len(racers))
    outcomes: dict[uuid.UUID, str] = {}

    def race(user_id: uuid.UUID) -> None:
        barrier.wait()
        try:
            with database.tenant(tenant.subscription_id) as s:
                services.versions.checkout(RequestContext.of(as_owner(tenant, user_id), s), v1)
            outcomes[user_id] = "won"
        except Conflict:
            outcomes[user_id] = "refused"

    threads = [threading.Thread(target=race, args=(u,)) for u in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes.values()) == ["refused"] * (len(racers) - 1) + ["won"]
    (winner,) = (u for u, o in outcomes.items() if o == "won")
    state = client.get(f"/api/workflows/{workflow_id}/checkout", headers=tenant.headers).json()
    assert state["holder_id"] == str(winner)


def test_concurrent_saves_get_distinct_gap_free_numbers(
    client: TestClient, database: Database, tenant: Tenant
) -> None:
    workflow_id = new_workflow(client, tenant)
    services = client.app.state.services  # type: ignore[attr-defined]
    racers = 6
    barrier = threading.Barrier(racers)
    errors: list[BaseException] = []

    def race(n: int) -> None:
        barrier.wait()
        try:
            with database.tenant(tenant.subscription_id) as s:
                services.workflows.update(
                    RequestContext.of(as_owner(tenant), s),
                    uuid.UUID(workflow_id),
                    {"diagram": with_condition(small_diagram(), f"amount > {n + 10}")},
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    history = versions(client, tenant.headers, workflow_id)
    assert sorted(v["version_number"] for v in history) == list(range(1, racers + 2))
    assert len({v["digest"] for v in history}) == racers + 1
    workflow = client.get(f"/api/workflows/{workflow_id}", headers=tenant.headers).json()
    assert workflow["current_version"] == racers + 1
    latest = client.get(f"/api/versions/{history[0]['id']}", headers=tenant.headers).json()
    assert latest["diagram"] == workflow["diagram"]


def test_rollback_round_trip(client: TestClient, tenant: Tenant) -> None:
    workflow_id = new_workflow(client, tenant)
    h = tenant.headers
    original = small_diagram()
    edited = with_condition(moved(small_diagram()), "amount > 100")
    edited["nodes"].append(
        {
            "id": "more",
            "position": {"x": 400, "y": 0},
            "data": {"nodeType": "filter", "config": {"condition": "id > 0"}},
        }
    )
    edited["edges"].append({"id": "e2", "source": "keep", "target": "more"})
    assert save(client, h, workflow_id, edited).json()["current_version"] == 2
    v1 = number(versions(client, h, workflow_id), 1)
    back = client.post(f"/api/versions/{v1['id']}/rollback", headers=h)
    assert back.status_code == 201, back.text
    assert back.headers["location"] == f"/api/versions/{back.json()['id']}"
    assert (back.json()["version_number"], back.json()["rolled_back_from"]) == (3, 1)
    assert back.json()["diagram"] == original
    assert client.get(f"/api/workflows/{workflow_id}", headers=h).json()["diagram"] == original
    same = client.get(f"/api/workflows/{workflow_id}/versions/diff?from=1&to=3", headers=h).json()
    assert same["identical"] is True
    undone = client.get(f"/api/workflows/{workflow_id}/versions/diff?from=2&to=3", headers=h).json()
    assert [n["id"] for n in undone["nodes"]["removed"]] == ["more"]
    assert [e["id"] for e in undone["edges"]["removed"]] == ["e2"]
    assert undone["nodes"]["changed"][0]["changes"][0]["new"] == "amount > 1"
    # and forward again: the edit is still in history
    v2 = number(versions(client, h, workflow_id), 2)
    forward = client.post(f"/api/versions/{v2['id']}/rollback", headers=h)
    assert forward.json()["version_number"] == 4
    assert client.get(f"/api/workflows/{workflow_id}", headers=h).json()["diagram"] == edited
    assert [v["version_number"] for v in versions(client, h, workflow_id)] == [4, 3, 2, 1]


def test_publish_decides_what_runs(client: TestClient, database: Database, tenant: Tenant) -> None:
    workflow_id = new_workflow(client, tenant)
    h = tenant.headers
    save(client, h, workflow_id, with_condition(small_diagram(), "amount > 2"))  # v2
    unfinished = small_diagram()
    unfinished["nodes"][1]["data"]["config"] = {}
    client.patch(
        f"/api/workflows/{workflow_id}?draft=true", headers=h, json={"diagram": unfinished}
    )
    history = versions(client, h, workflow_id)
    services = client.app.state.services  # type: ignore[attr-defined]

    def runs(version: int | None = None) -> dict[str, Any]:
        with database.tenant(tenant.subscription_id) as s:
            ctx = RequestContext.of(as_owner(tenant), s)
            diagram: dict[str, Any] = services.workflows.runnable_diagram(
                ctx, uuid.UUID(workflow_id), version
            )
            return diagram

    # none published: the latest version that is not a draft
    assert runs() == with_condition(small_diagram(), "amount > 2")
    draft = problem(
        client.post(f"/api/versions/{number(history, 3)['id']}/publish", headers=h), 409
    )
    assert "draft" in draft["detail"]
    with pytest.raises(Conflict, match="draft"):
        runs(3)
    published = client.post(f"/api/versions/{number(history, 1)['id']}/publish", headers=h)
    assert published.status_code == 200, published.text
    assert published.json()["status"] == "published"
    assert runs() == small_diagram()
    assert runs(2) == with_condition(small_diagram(), "amount > 2")
    # publishing another: one published version per workflow
    client.post(f"/api/versions/{number(history, 2)['id']}/publish", headers=h)
    statuses = {v["version_number"]: v["status"] for v in versions(client, h, workflow_id)}
    assert statuses == {1: "checked_in", 2: "published", 3: "draft"}
    assert runs() == with_condition(small_diagram(), "amount > 2")
    # publishing takes admin
    bob_id, bob = member(client, database, tenant)
    grant(database, tenant, bob_id, "workflow", workflow_id, "read_write")
    refused = client.post(f"/api/versions/{number(history, 1)['id']}/publish", headers=bob)
    assert "admin on the workflow" in problem(refused, 403)["detail"]
    with _tenant_session(database, tenant.subscription_id) as s:
        actions = s.scalars(
            select(AuditLog.action).where(
                AuditLog.resource_type == "version",
                AuditLog.resource_id.in_([uuid.UUID(v["id"]) for v in history]),
            )
        ).all()
    assert sorted(a for a in actions if a != "version.create") == [
        "version.publish",
        "version.publish",
        "version.unpublish",
    ]
    assert actions.count("version.create") == 3


def test_versions_explicit_creation_tags_comments_and_reads(
    client: TestClient, database: Database, tenant: Tenant
) -> None:
    workflow_id = new_workflow(client, tenant)
    h = tenant.headers
    made = client.post(
        f"/api/workflows/{workflow_id}/versions",
        headers=h,
        json={"comment": "release", "tag": "v1.0"},
    )
    assert made.status_code == 201, made.text
    version = made.json()
    assert (version["version_number"], version["tag"], version["source"]) == (2, "v1.0", "create")
    again = client.post(f"/api/workflows/{workflow_id}/versions", headers=h, json={"tag": "v1.0"})
    assert "already names version 2" in problem(again, 409)["detail"]
    url = f"/api/versions/{version['id']}/comments"
    for text_ in ("looks good", "ship it"):
        assert client.post(url, headers=h, json={"text": text_}).status_code == 201
    page = client.get(f"{url}?limit=2", headers=h).json()
    assert [c["text"] for c in page["items"]] == ["release", "looks good"]
    assert [c["text"] for c in client.get(page["next"], headers=h).json()["items"]] == ["ship it"]
    # read on the workflow is enough to read, not to comment
    bob_id, bob = member(client, database, tenant)
    assert client.get(url, headers=bob).status_code == 403
    grant(database, tenant, bob_id, "workflow", workflow_id, "read")
    assert client.get(url, headers=bob).status_code == 200
    assert client.get(f"/api/versions/{version['id']}", headers=bob).status_code == 200
    refused = client.post(url, headers=bob, json={"text": "x"})
    assert "read_write on the workflow" in problem(refused, 403)["detail"]
    # a deleted workflow's versions are gone with it
    assert client.delete(f"/api/workflows/{workflow_id}", headers=h).status_code == 204
    problem(client.get(f"/api/versions/{version['id']}", headers=h), 404)


def test_another_tenants_versions_are_not_found(client: TestClient, database: Database) -> None:
    a = new_tenant(client, database, "A corp")
    b = new_tenant(client, database, "B corp")
    workflow_id = new_workflow(client, a)
    version_id = versions(client, a.headers, workflow_id)[0]["id"]
    for method, url, body in (
        ("get", f"/api/versions/{version_id}", None),
        ("post", f"/api/versions/{version_id}/checkout", None),
        ("post", f"/api/versions/{version_id}/checkin", {"comment": "x"}),
        ("post", f"/api/versions/{version_id}/publish", None),
        ("post", f"/api/versions/{version_id}/rollback", None),
        ("get", f"/api/versions/{version_id}/comments", None),
        ("post", f"/api/versions/{version_id}/comments", {"text": "x"}),
        ("get", f"/api/workflows/{workflow_id}/versions", None),
        ("post", f"/api/workflows/{workflow_id}/versions", {}),
        ("get", f"/api/workflows/{workflow_id}/versions/diff?from=1", None),
        ("get", f"/api/workflows/{workflow_id}/checkout", None),
        ("delete", f"/api/workflows/{workflow_id}/checkout", None),
    ):
        resp = client.request(method, url, headers=b.headers, json=body)
        assert problem(resp, 404)["type"] == "/problems/not-found", url
    assert client.get(f"/api/versions/{version_id}", headers=a.headers).status_code == 200
    with _tenant_session(database, a.subscription_id) as s:
        row = s.get(Workflow, uuid.UUID(workflow_id))
        assert row is not None
        assert (row.is_checked_out, row.current_version) == (False, 1)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("create", {"version_number": 7}, "version_number"),
        ("create", {"created_by": str(uuid.uuid4())}, "created_by"),
        ("create", {"subscription_id": str(uuid.uuid4())}, "subscription_id"),
        ("create", {"status": "published"}, "status"),
        ("checkin", {"comment": "x", "id": str(uuid.uuid4())}, "id"),
        ("checkin", {"comment": "x", "version_number": 1}, "version_number"),
        ("comment", {"text": "x", "commented_by": str(uuid.uuid4())}, "commented_by"),
    ],
)
def test_mass_assignment_is_refused(
    client: TestClient, tenant: Tenant, path: str, body: dict[str, Any], field: str
) -> None:
    workflow_id = new_workflow(client, tenant)
    version_id = versions(client, tenant.headers, workflow_id)[0]["id"]
    url = {
        "create": f"/api/workflows/{workflow_id}/versions",
        "checkin": f"/api/versions/{version_id}/checkin",
        "comment": f"/api/versions/{version_id}/comments",
    }[path]
    refused = problem(client.post(url, headers=tenant.headers, json=body), 422)
    assert refused["field"] == f"body.{field}"
    assert refused["errors"][0]["code"] == "extra_forbidden"
    assert len(versions(client, tenant.headers, workflow_id)) == 1


def test_an_expired_checkout_is_taken_over_and_binds_its_old_holder(
    client: TestClient, database: Database, tenant: Tenant
) -> None:
    workflow_id = new_workflow(client, tenant)
    bob_id, bob = member(client, database, tenant)
    grant(database, tenant, bob_id, "workflow", workflow_id, "read_write")
    v1 = versions(client, tenant.headers, workflow_id)[0]["id"]
    assert client.post(f"/api/versions/{v1}/checkout", headers=bob).status_code == 200
    with _tenant_session(database, tenant.subscription_id) as s:
        s.execute(
            text("UPDATE workflows SET checked_out_at = now() - interval '2 hours' WHERE id = :w"),
            {"w": workflow_id},
        )
        s.commit()
    taken = client.post(f"/api/versions/{v1}/checkout", headers=tenant.headers)
    assert taken.status_code == 200, taken.text
    assert taken.json()["holder_id"] == str(tenant.user_id)
    # bob's check-out is over: his save and his check-in are refused, naming the new holder
    for resp in (
        save(client, bob, workflow_id, moved(small_diagram())),
        client.post(f"/api/versions/{v1}/checkin", headers=bob, json={"comment": "mine"}),
    ):
        assert str(tenant.user_id) in problem(resp, 409)["detail"]
    with _tenant_session(database, tenant.subscription_id) as s:
        changes = s.scalars(
            select(AuditLog.changes).where(
                AuditLog.resource_id == uuid.UUID(workflow_id),
                AuditLog.action == "workflow.checkout",
                AuditLog.user_id == tenant.user_id,
            )
        ).one()
    assert changes is not None
    assert changes["previous_holder"] == str(bob_id)
    assert len(versions(client, tenant.headers, workflow_id)) == 1
