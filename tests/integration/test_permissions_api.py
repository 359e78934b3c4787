"""Object permissions: the matrix of levels x object types x the ways a level is held,
granting rules, tenant isolation, and the cost of one decision.

The object tree is inserted directly through the owner engine (the workspace and
workflow endpoints are separate work): workspace W > folder F > sub-folder SF > job J >
workflow WF.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from tests.factories import TEST_PASSWORD, auth_header, login, register, unique_email
from uzo_api.auth.principal import Principal
from uzo_api.authz import LEVELS, RANK, Authorizer
from uzo_api.db.models import Folder, Job, Workflow, Workspace

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fastapi.testclient import TestClient

    from uzo_api.db.session import Database

PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Tree:
    workspace: uuid.UUID
    folder: uuid.UUID
    subfolder: uuid.UUID
    job: uuid.UUID
    workflow: uuid.UUID


@dataclass(frozen=True)
class World:
    subscription_id: uuid.UUID
    owner_id: str
    owner: dict[str, str]
    member_id: str
    member: dict[str, str]
    group_id: str
    role_id: str
    tree: Tree


def insert_tree(database: Database, subscription_id: uuid.UUID, depth: int = 2) -> Tree:
    """A workspace, ``depth`` nested folders, a job in the deepest and a workflow in it."""
    with Session(database.owner_engine) as s, s.begin():
        ws = Workspace(subscription_id=subscription_id, workspace_name=f"ws-{uuid.uuid4().hex}")
        s.add(ws)
        s.flush()
        folders: list[Folder] = []
        for i in range(depth):
            parent = folders[-1] if folders else None
            folder = Folder(
                subscription_id=subscription_id,
                folder_name=f"f{i}",
                workspace_id=ws.id,
                parent_folder_id=parent.id if parent else None,
                ancestor_ids=[*parent.ancestor_ids, parent.id] if parent else [],
            )
            s.add(folder)
            s.flush()
            folders.append(folder)
        job = Job(subscription_id=subscription_id, job_name="job", folder_id=folders[-1].id)
        s.add(job)
        s.flush()
        wf = Workflow(subscription_id=subscription_id, workflow_name="wf", job_id=job.id)
        s.add(wf)
        s.flush()
        return Tree(
            workspace=ws.id,
            folder=folders[0].id,
            subfolder=folders[-1].id,
            job=job.id,
            workflow=wf.id,
        )


def _tenant(client: TestClient) -> tuple[uuid.UUID, str, dict[str, str]]:
    email = unique_email("perm")
    body: Any = register(client, email=email)
    headers = auth_header(login(client, email)["access_token"])
    return uuid.UUID(body["subscription"]["id"]), body["user"]["id"], headers


def _user(client: TestClient, owner: dict[str, str]) -> tuple[str, dict[str, str]]:
    email = unique_email("member")
    made = client.post(
        "/api/users", headers=owner, json={"email": email, "password": TEST_PASSWORD}
    )
    assert made.status_code == 201, made.text
    return made.json()["id"], auth_header(login(client, email)["access_token"])


@pytest.fixture(scope="module")
def world(client: TestClient, database: Database) -> World:
    sid, owner_id, owner = _tenant(client)
    member_id, member = _user(client, owner)
    group = client.post("/api/groups", headers=owner, json={"name": "team"}).json()
    joined = client.post(
        f"/api/groups/{group['id']}/members", headers=owner, json={"user_id": member_id}
    )
    assert joined.status_code == 201
    role = client.post("/api/roles", headers=owner, json={"name": "matrix"}).json()
    given = client.post(
        f"/api/roles/{role['id']}/assignments", headers=owner, json={"user_id": member_id}
    )
    assert given.status_code == 201
    return World(
        subscription_id=sid,
        owner_id=owner_id,
        owner=owner,
        member_id=member_id,
        member=member,
        group_id=group["id"],
        role_id=role["id"],
        tree=insert_tree(database, sid),
    )


def _check(
    client: TestClient,
    headers: dict[str, str],
    object_type: str,
    object_id: uuid.UUID | str,
    level: str = "read",
    **extra: str,
) -> Any:
    resp = client.get(
        "/api/permissions/check",
        headers=headers,
        params={"object_type": object_type, "object_id": str(object_id), "level": level, **extra},
    )
    return resp


def _grant(
    client: TestClient, headers: dict[str, str], object_type: str, object_id: Any, **body: Any
) -> Any:
    return client.post(
        "/api/permissions",
        headers=headers,
        json={"object_type": object_type, "object_id": str(object_id), **body},
    )


# -- the matrix ------------------------------------------------------------------------------------

TARGETS = {
    "workspace": lambda t: t.workspace,
    "folder": lambda t: t.subfolder,
    "job": lambda t: t.job,
    "workflow": lambda t: t.workflow,
}
# (object type checked, what it is checked on, where the grant is made), for inheritance
INHERITED = [
    ("folder", "folder from its workspace", lambda t: (t.folder, "workspace", t.workspace)),
    ("folder", "sub-folder from its folder", lambda t: (t.subfolder, "folder", t.folder)),
    ("job", "job from its folder", lambda t: (t.job, "folder", t.subfolder)),
    ("job", "job from the top folder", lambda t: (t.job, "folder", t.folder)),
    ("workflow", "workflow from its job", lambda t: (t.workflow, "job", t.job)),
    ("workflow", "workflow from the workspace", lambda t: (t.workflow, "workspace", t.workspace)),
]


def _assert_thresholds(
    client: TestClient, w: World, object_type: str, object_id: Any, held: str, source: str
) -> None:
    for needed in LEVELS:
        resp = _check(client, w.member, object_type, object_id, needed)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body == {
            "user_id": w.member_id,
            "object_type": object_type,
            "object_id": str(object_id),
            "needed": needed,
            "allowed": RANK[held] >= RANK[needed],
            "level": held,
            "source": source,
        }, (held, needed)
    # an admin (here the owner) asking about the member gets the same answer
    theirs = _check(client, w.owner, object_type, object_id, held, user_id=w.member_id).json()
    assert (theirs["allowed"], theirs["level"], theirs["source"]) == (True, held, source)


@pytest.mark.parametrize("object_type", list(TARGETS))
@pytest.mark.parametrize("grantee", ["direct", "group"])
def test_matrix_granted_on_the_object(
    client: TestClient, world: World, object_type: str, grantee: str
) -> None:
    object_id = TARGETS[object_type](world.tree)
    to = {"user_id": world.member_id} if grantee == "direct" else {"group_id": world.group_id}
    assert _check(client, world.member, object_type, object_id).json()["source"] == "none"
    grant_id = None
    for level in LEVELS:
        resp = _grant(client, world.owner, object_type, object_id, level=level, **to)
        assert resp.status_code == (201 if grant_id is None else 200), resp.text
        assert grant_id in (None, resp.json()["id"])  # re-granting updates the same grant
        grant_id = resp.json()["id"]
        assert resp.json()["level"] == level
        _assert_thresholds(client, world, object_type, object_id, level, grantee)
    assert client.delete(f"/api/permissions/{grant_id}", headers=world.owner).status_code == 204
    after = _check(client, world.member, object_type, object_id, "read").json()
    assert (after["allowed"], after["level"], after["source"]) == (False, None, "none")


@pytest.mark.parametrize(
    ("object_type", "pick"), [(t, p) for t, _, p in INHERITED], ids=[n for _, n, _ in INHERITED]
)
@pytest.mark.parametrize("grantee", ["direct", "group"])
def test_matrix_inherited_from_above(
    client: TestClient, world: World, object_type: str, pick: Any, grantee: str
) -> None:
    object_id, parent_type, parent_id = pick(world.tree)
    to = {"user_id": world.member_id} if grantee == "direct" else {"group_id": world.group_id}
    grant_id = None
    for level in LEVELS:
        resp = _grant(client, world.owner, parent_type, parent_id, level=level, **to)
        assert resp.status_code in (200, 201), resp.text
        grant_id = resp.json()["id"]
        _assert_thresholds(client, world, object_type, object_id, level, "inherited")
    assert client.delete(f"/api/permissions/{grant_id}", headers=world.owner).status_code == 204
    assert _check(client, world.member, object_type, object_id).json()["source"] == "none"


@pytest.mark.parametrize("object_type", list(TARGETS))
@pytest.mark.parametrize("scope", ["type", "*"])
def test_matrix_through_a_role(
    client: TestClient, world: World, object_type: str, scope: str
) -> None:
    object_id = TARGETS[object_type](world.tree)
    resource_type = object_type if scope == "type" else "*"
    url = f"/api/roles/{world.role_id}/permissions"
    try:
        for level in LEVELS:
            body = {"permissions": [{"resource_type": resource_type, "level": level}]}
            assert client.put(url, headers=world.owner, json=body).status_code == 200
            _assert_thresholds(client, world, object_type, object_id, level, "role")
        # a role on another type gives nothing here
        other = "connector"
        body = {"permissions": [{"resource_type": other, "level": "owner"}]}
        client.put(url, headers=world.owner, json=body)
        assert _check(client, world.member, object_type, object_id).json()["source"] == "none"
    finally:
        client.put(url, headers=world.owner, json={"permissions": []})


def test_a_role_through_a_group_counts_as_a_role(client: TestClient, world: World) -> None:
    role = client.post(
        "/api/roles",
        headers=world.owner,
        json={"name": "via-group", "permissions": [{"resource_type": "job", "level": "execute"}]},
    ).json()
    given = client.post(
        f"/api/roles/{role['id']}/assignments",
        headers=world.owner,
        json={"group_id": world.group_id},
    )
    try:
        body = _check(client, world.member, "job", world.tree.job, "execute").json()
        assert (body["allowed"], body["level"], body["source"]) == (True, "execute", "role")
    finally:
        client.delete(
            f"/api/roles/{role['id']}/assignments/{given.json()['id']}", headers=world.owner
        )
        client.delete(f"/api/roles/{role['id']}", headers=world.owner)


def test_the_highest_level_wins_and_names_its_rule(client: TestClient, world: World) -> None:
    t = world.tree
    me, team = {"user_id": world.member_id}, {"group_id": world.group_id}
    made = [
        _grant(client, world.owner, "workflow", t.workflow, level="read", **me),
        _grant(client, world.owner, "workflow", t.workflow, level="execute", **team),
        _grant(client, world.owner, "workspace", t.workspace, level="admin", **me),
    ]
    try:
        body = _check(client, world.member, "workflow", t.workflow, "admin").json()
        assert (body["allowed"], body["level"], body["source"]) == (True, "admin", "inherited")
        client.delete(f"/api/permissions/{made[2].json()['id']}", headers=world.owner)
        body = _check(client, world.member, "workflow", t.workflow, "execute").json()
        assert (body["allowed"], body["level"], body["source"]) == (True, "execute", "group")
        client.delete(f"/api/permissions/{made[1].json()['id']}", headers=world.owner)
        body = _check(client, world.member, "workflow", t.workflow, "execute").json()
        assert (body["allowed"], body["level"], body["source"]) == (False, "read", "direct")
    finally:
        for resp in made:
            client.delete(f"/api/permissions/{resp.json()['id']}", headers=world.owner)


def test_the_owner_holds_owner_everywhere(client: TestClient, world: World) -> None:
    for object_type, pick in TARGETS.items():
        body = _check(client, world.owner, object_type, pick(world.tree), "owner").json()
        assert (body["allowed"], body["level"], body["source"]) == (True, "owner", "owner")
        assert body["user_id"] == world.owner_id
    about_owner = _check(
        client, world.owner, "job", world.tree.job, "owner", user_id=world.owner_id
    ).json()
    assert about_owner["source"] == "owner"


# -- granting rules --------------------------------------------------------------------------------


def test_granting_needs_admin_and_owner_needs_owner(
    client: TestClient, world: World, database: Database
) -> None:
    t = world.tree
    other_id, _ = _user(client, world.owner)
    try:
        # no access: the member may not grant, list or check others
        denied = _grant(client, world.member, "folder", t.folder, user_id=other_id, level="read")
        assert denied.status_code == 403
        assert "admin on the folder" in denied.json()["detail"]
        listing = client.get(
            "/api/permissions",
            headers=world.member,
            params={"object_type": "folder", "object_id": str(t.folder)},
        )
        assert listing.status_code == 403
        probe = _check(client, world.member, "folder", t.folder, user_id=other_id)
        assert probe.status_code == 403

        # admin on the workspace: grants below it, up to admin, but not owner
        ws_admin = _grant(
            client, world.owner, "workspace", t.workspace, user_id=world.member_id, level="admin"
        ).json()
        ok = _grant(client, world.member, "job", t.job, user_id=other_id, level="read_write")
        assert ok.status_code == 201, ok.text
        assert ok.json()["granted_by"] == world.member_id
        as_owner = _grant(client, world.member, "job", t.job, user_id=other_id, level="owner")
        assert as_owner.status_code == 403
        assert as_owner.json()["field"] == "level"
        assert _check(client, world.member, "job", t.job, user_id=other_id).json()["level"] == (
            "read_write"
        )
        # an owner grant made by the owner cannot be changed or revoked by an admin
        owner_grant = _grant(
            client, world.owner, "folder", t.subfolder, user_id=other_id, level="owner"
        )
        assert owner_grant.status_code == 201
        lowered = _grant(
            client, world.member, "folder", t.subfolder, user_id=other_id, level="read"
        )
        assert lowered.status_code == 403
        revoke = client.delete(f"/api/permissions/{owner_grant.json()['id']}", headers=world.member)
        assert revoke.status_code == 403
        # the admin lists the grants of an object
        listed = client.get(
            "/api/permissions",
            headers=world.member,
            params={"object_type": "job", "object_id": str(t.job), "limit": 1},
        )
        assert listed.status_code == 200
        assert [g["id"] for g in listed.json()["items"]] == [ok.json()["id"]]
        assert listed.json()["next"] is None
        # and revokes the grants they may
        gone = client.delete(f"/api/permissions/{ok.json()['id']}", headers=world.member)
        assert gone.status_code == 204
        again = client.delete(f"/api/permissions/{ok.json()['id']}", headers=world.member)
        assert again.status_code == 404
        client.delete(f"/api/permissions/{owner_grant.json()['id']}", headers=world.owner)
        client.delete(f"/api/permissions/{ws_admin['id']}", headers=world.owner)
    finally:
        client.delete(f"/api/users/{other_id}", headers=world.owner)


def test_a_grant_body_is_checked(client: TestClient, world: World) -> None:
    t = world.tree
    for body in (
        {"object_type": "job", "object_id": str(t.job), "level": "read"},  # no grantee
        {
            "object_type": "job",
            "object_id": str(t.job),
            "level": "read",
            "user_id": world.member_id,
            "group_id": world.group_id,
        },
        {
            "object_type": "spaceship",
            "object_id": str(t.job),
            "level": "read",
            "user_id": world.member_id,
        },
        {"object_type": "job", "object_id": str(t.job), "level": "god", "user_id": world.member_id},
        {
            "object_type": "job",
            "object_id": str(t.job),
            "level": "read",
            "user_id": world.member_id,
            "subscription_id": str(uuid.uuid4()),
        },
        {
            "object_type": "job",
            "object_id": str(t.job),
            "level": "read",
            "user_id": world.member_id,
            "granted_by": world.owner_id,
        },
    ):
        resp = client.post("/api/permissions", headers=world.owner, json=body)
        assert resp.status_code == 422, body
    missing = _grant(
        client, world.owner, "job", uuid.uuid4(), user_id=world.member_id, level="read"
    )
    assert missing.status_code == 404
    no_user = _grant(client, world.owner, "job", t.job, user_id=str(uuid.uuid4()), level="read")
    assert no_user.status_code == 404
    assert no_user.json()["field"] == "user_id"
    no_group = _grant(client, world.owner, "job", t.job, group_id=str(uuid.uuid4()), level="read")
    assert no_group.status_code == 404
    assert no_group.json()["field"] == "group_id"
    wrong_type = _grant(  # the id of a job, named as a workflow: no such workflow
        client, world.owner, "workflow", t.job, user_id=world.member_id, level="read"
    )
    assert wrong_type.status_code == 404


def test_deleted_objects_are_not_found(
    client: TestClient, world: World, database: Database
) -> None:
    tree = insert_tree(database, world.subscription_id, depth=1)
    with Session(database.owner_engine) as s, s.begin():
        row = s.get(Workflow, tree.workflow)
        assert row is not None
        row.deleted_at = row.created_at
    resp = _grant(
        client, world.owner, "workflow", tree.workflow, user_id=world.member_id, level="read"
    )
    assert resp.status_code == 404
    assert _check(client, world.owner, "workflow", tree.workflow).status_code == 404


# -- tenant isolation ------------------------------------------------------------------------------


def test_another_tenants_objects_users_groups_and_grants_are_not_found(
    client: TestClient, world: World, database: Database
) -> None:
    b_sid, b_owner_id, b_owner = _tenant(client)
    b_member_id, _ = _user(client, b_owner)
    b_group = client.post("/api/groups", headers=b_owner, json={"name": "b-team"}).json()
    b_tree = insert_tree(database, b_sid)
    b_grant = _grant(
        client, b_owner, "workflow", b_tree.workflow, user_id=b_member_id, level="admin"
    ).json()
    a = world.owner
    t = world.tree

    answers = []
    for object_type, pick in TARGETS.items():
        foreign = pick(b_tree)
        answers += [
            _grant(client, a, object_type, foreign, user_id=world.member_id, level="read"),
            _check(client, a, object_type, foreign),
            _check(client, a, object_type, foreign, user_id=world.member_id),
            client.get(
                "/api/permissions",
                headers=a,
                params={"object_type": object_type, "object_id": str(foreign)},
            ),
        ]
    answers += [
        _grant(client, a, "workflow", t.workflow, user_id=b_member_id, level="read"),
        _grant(client, a, "workflow", t.workflow, user_id=b_owner_id, level="read"),
        _grant(client, a, "workflow", t.workflow, group_id=b_group["id"], level="read"),
        _check(client, a, "workflow", t.workflow, user_id=b_member_id),
        client.delete(f"/api/permissions/{b_grant['id']}", headers=a),
    ]
    for resp in answers:
        assert resp.status_code == 404, (resp.request.method, resp.request.url, resp.text)
        assert resp.headers["content-type"].startswith(PROBLEM)
        problem = resp.json()
        problem.pop("instance", None)  # the path asked for, echoed back
        body = str(problem)
        for secret in (b_member_id, b_owner_id, b_group["id"], b_grant["id"], str(b_sid)):
            assert secret not in body
        assert set(resp.json()) <= {
            "type",
            "title",
            "status",
            "detail",
            "instance",
            "request_id",
            "field",
        }
    # B's grant is untouched and A's lists never show B's rows
    kept = client.get(
        "/api/permissions",
        headers=b_owner,
        params={"object_type": "workflow", "object_id": str(b_tree.workflow)},
    ).json()
    assert [g["id"] for g in kept["items"]] == [b_grant["id"]]
    mine = client.get(
        "/api/permissions",
        headers=a,
        params={"object_type": "workflow", "object_id": str(t.workflow)},
    ).json()
    assert all(g["user_id"] != b_member_id for g in mine["items"])


# -- the cost of a decision ------------------------------------------------------------------------


@pytest.fixture
def count_statements(database: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(database.engine, "before_cursor_execute", record)
    yield statements
    event.remove(database.engine, "before_cursor_execute", record)


@pytest.mark.parametrize("object_type", ["workspace", "folder", "job", "workflow"])
def test_a_decision_runs_a_bounded_number_of_queries_whatever_the_depth(
    client: TestClient,
    world: World,
    database: Database,
    count_statements: list[str],
    object_type: str,
) -> None:
    member = Principal(
        user_id=uuid.UUID(world.member_id), subscription_id=world.subscription_id, method="jwt"
    )
    models = {"workspace": Workspace, "folder": Folder, "job": Job, "workflow": Workflow}
    counts = {}
    for depth in (1, 3, 12):
        tree = insert_tree(database, world.subscription_id, depth=depth)
        object_id = {
            "workspace": tree.workspace,
            "folder": tree.subfolder,
            "job": tree.job,
            "workflow": tree.workflow,
        }[object_type]
        # a grant at the top, inherited all the way down
        _grant(
            client,
            world.owner,
            "workspace",
            tree.workspace,
            group_id=world.group_id,
            level="execute",
        )
        with database.tenant(world.subscription_id) as s:
            row = s.get(models[object_type], object_id)
            count_statements.clear()
            decision = Authorizer(s, member).decide(object_type, row)
            counts[depth] = len(count_statements)
        assert (decision.level, decision.source) == (
            ("execute", "group") if object_type == "workspace" else ("execute", "inherited")
        )
    # one query whatever the type and depth: the grants and roles together, with what
    # the row does not say about its ancestry (a workflow's job and folders) read by it
    assert counts == {1: 1, 3: 1, 12: 1}, counts
