"""Seeding of the ``api`` benchmark: one enterprise tenant with a large governed tree.

The owner is registered through :class:`uzo_api.services.auth.AuthService` (as
``uzo admin create-subscription`` does) and moved to the enterprise plan (no
workflow or user limit). Everything else is written in bulk as the owner role inside
the tenant (``app.subscription_id`` set, so FORCE RLS checks every row), with the
columns the services would set:

- workspaces, each with the creator's ``owner`` grant and a ``workspace.create`` audit
  row (``WorkspaceService.create_workspace``);
- nested folders (top level, sub-folders, sub-sub-folders) with ``ancestor_ids`` as
  ``create_folder`` computes it (every folder above, the parent last) and a
  ``folder.create`` audit row each;
- jobs in every folder and workflows round-robin in the jobs, each workflow a valid
  ReactFlow document from ``examples/*.json`` (checked once per template with the
  API's own ``check_diagram``, as a save would);
- users (one argon2id hash computed once and shared: they all have the same password),
  groups, memberships, and grants at every level: groups on workspaces and top-level
  folders (inherited by everything below), groups and users on sub-folders, users on
  leaf folders, groups on jobs and users on single workflows.

The random choices come from a seeded ``random.Random``, so a run is reproducible.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, text, update

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from uzo_api.db.session import Database
    from uzo_api.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PASSWORD = "bench-password-" + "x" * 16
CHUNK = 1000


@dataclass(frozen=True)
class SeedSizes:
    workflows: int = 10_000
    folders: int = 500
    users: int = 200  # besides the owner
    groups: int = 50
    folders_per_workspace: int = 100
    jobs_per_folder: int = 2
    groups_per_user: int = 2


@dataclass(frozen=True)
class FolderSeed:
    id: uuid.UUID
    workspace_id: uuid.UUID
    parent_id: uuid.UUID | None
    ancestors: tuple[uuid.UUID, ...]
    depth: int  # 0: top level


@dataclass(frozen=True)
class Grant:
    object_type: str
    object_id: uuid.UUID
    user_id: uuid.UUID | None
    group_id: uuid.UUID | None
    level: str


@dataclass
class Seeded:
    subscription_id: uuid.UUID
    owner_id: uuid.UUID
    owner_email: str
    workspaces: list[uuid.UUID] = field(default_factory=list)
    folders: list[FolderSeed] = field(default_factory=list)
    jobs: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)  # (job, folder)
    workflows: list[tuple[uuid.UUID, uuid.UUID, str]] = field(default_factory=list)
    users: list[tuple[uuid.UUID, str]] = field(default_factory=list)  # (id, email)
    groups: list[uuid.UUID] = field(default_factory=list)
    members: dict[uuid.UUID, list[uuid.UUID]] = field(default_factory=dict)  # user -> groups
    grants: list[Grant] = field(default_factory=list)
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {
            "workspaces": len(self.workspaces),
            "folders": len(self.folders),
            "max_folder_depth": 1 + max((f.depth for f in self.folders), default=-1),
            "jobs": len(self.jobs),
            "workflows": len(self.workflows),
            "users": len(self.users) + 1,
            "groups": len(self.groups),
            "memberships": sum(len(g) for g in self.members.values()),
            "grants": len(self.grants),
        }

    def candidates(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        """Workflows the user probably reaches: under a folder or job granted to them or
        one of their groups, or granted one by one (the Authorizer decides for real)."""
        mine = {user_id, *self.members.get(user_id, [])}
        granted = {g.object_id for g in self.grants if (g.user_id or g.group_id) in mine}
        folder_ok = {
            f.id
            for f in self.folders
            if f.id in granted or f.workspace_id in granted or granted & set(f.ancestors)
        }
        jobs_ok = {j for j, folder in self.jobs if folder in folder_ok or j in granted}
        return [w for w, job, _ in self.workflows if job in jobs_ok or w in granted]


def templates() -> dict[str, dict[str, Any]]:
    """Every example workflow, by file stem, each checked as a save checks it."""
    from uzo_api.services.workflows import check_diagram

    found = {}
    for path in sorted(EXAMPLES.glob("*.json")):
        document = json.loads(path.read_text())
        check_diagram(document, draft=False)
        found[path.stem] = document
    if not found:
        raise RuntimeError(f"no example workflows in {EXAMPLES}")
    return found


def register_owner(settings: Settings, db: Database) -> tuple[uuid.UUID, uuid.UUID, str]:
    """The tenant's owner through the auth service; the subscription on enterprise."""
    from uzo_api.db.models import Subscription, SubscriptionPlan
    from uzo_api.schemas.auth import RegisterRequest
    from uzo_api.services.container import build_services

    services = build_services(settings, db)
    services.remote_calls.shutdown()
    email = f"owner-{uuid.uuid4().hex[:8]}@bench.example.com"
    try:
        account = services.auth.register(
            RegisterRequest(email=email, password=PASSWORD, company_name="Bench Corp"),
            ip="bench",
            enforce_policy=False,
        )
    finally:
        services.background.shutdown()
    sid = account.subscription.id
    with db.owner_engine.begin() as conn:
        enterprise = select(SubscriptionPlan.id).where(SubscriptionPlan.plan_key == "enterprise")
        conn.execute(
            update(Subscription)
            .where(Subscription.id == sid)
            .values(plan_id=enterprise.scalar_subquery())
        )
    return sid, account.user.id, email


def seed(settings: Settings, db: Database, sizes: SeedSizes, rng_seed: int = 7) -> Seeded:
    started = time.perf_counter()
    rng = random.Random(rng_seed)
    docs = templates()
    sid, owner, email = register_owner(settings, db)
    out = Seeded(subscription_id=sid, owner_id=owner, owner_email=email, templates=docs)
    out.seconds["owner_and_templates"] = time.perf_counter() - started
    _plan_tree(out, sizes, docs)
    _plan_people(out, sizes, rng)
    _plan_grants(out, rng)
    planned = time.perf_counter()
    with db.owner_engine.begin() as conn:
        conn.execute(text("SELECT set_config('app.subscription_id', :s, true)"), {"s": str(sid)})
        _write(conn, out)
    written = time.perf_counter()
    with db.owner_engine.connect() as conn:
        # what autovacuum would have done long before a tenant reaches this size
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    out.seconds["bulk_insert"] = written - planned
    out.seconds["analyze"] = time.perf_counter() - written
    out.seconds["total"] = time.perf_counter() - started
    return out


# -- planning the rows ---------------------------------------------------------------------------


def _plan_tree(out: Seeded, sizes: SeedSizes, docs: dict[str, dict[str, Any]]) -> None:
    per_ws = max(1, min(sizes.folders_per_workspace, sizes.folders))
    made = 0
    while made < sizes.folders:
        ws = uuid.uuid4()
        out.workspaces.append(ws)
        n = min(per_ws, sizes.folders - made)
        # 10 % top-level folders, 30 % below those, the rest one level further down
        tops = max(1, n // 10)
        mids = max(0, min(n - tops, (n * 3) // 10))
        level: list[FolderSeed] = []
        for i in range(n):
            if i < tops:
                parent = None
            elif i < tops + mids:
                parent = level[(i - tops) % tops]
            else:
                parent = level[tops + (i - tops - mids) % mids] if mids else level[i % tops]
            ancestors = (*parent.ancestors, parent.id) if parent else ()
            folder = FolderSeed(
                uuid.uuid4(), ws, parent.id if parent else None, ancestors, len(ancestors)
            )
            level.append(folder)
        out.folders.extend(level)
        made += n
    for folder in out.folders:
        for _ in range(sizes.jobs_per_folder):
            out.jobs.append((uuid.uuid4(), folder.id))
    names = sorted(docs)
    for i in range(sizes.workflows):
        job, _ = out.jobs[i % len(out.jobs)]
        out.workflows.append((uuid.uuid4(), job, names[i % len(names)]))


def _plan_people(out: Seeded, sizes: SeedSizes, rng: random.Random) -> None:
    out.users = [
        (uuid.uuid4(), f"user{i:04d}-{uuid.uuid4().hex[:6]}@bench.example.com")
        for i in range(sizes.users)
    ]
    out.groups = [uuid.uuid4() for _ in range(sizes.groups)]
    if not out.groups:
        return
    for user, _ in out.users:
        out.members[user] = rng.sample(out.groups, min(sizes.groups_per_user, len(out.groups)))


def _plan_grants(out: Seeded, rng: random.Random) -> None:
    grants = out.grants
    for ws in out.workspaces:  # the creator's grant (create_workspace)
        grants.append(Grant("workspace", ws, out.owner_id, None, "owner"))
    users = [u for u, _ in out.users]
    groups = out.groups
    if not users or not groups:
        return
    for i, group in enumerate(groups[: 2 * len(out.workspaces)]):
        grants.append(
            Grant("workspace", out.workspaces[i % len(out.workspaces)], None, group, "read")
        )
    tops = [f for f in out.folders if f.depth == 0]
    mids = [f for f in out.folders if f.depth == 1]
    leaves = [f for f in out.folders if f.depth >= 2]
    for i, folder in enumerate(tops):  # inherited by every sub-folder, job and workflow
        grants.append(Grant("folder", folder.id, None, groups[i % len(groups)], "read_write"))
    for folder in mids:
        if rng.random() < 1 / 3:
            grants.append(Grant("folder", folder.id, None, rng.choice(groups), "admin"))
        grants.append(Grant("folder", folder.id, rng.choice(users), None, "read"))
    for folder in leaves:
        grants.append(Grant("folder", folder.id, rng.choice(users), None, "read_write"))
    for job, _ in rng.sample(out.jobs, len(out.jobs) // 10):
        grants.append(Grant("job", job, None, rng.choice(groups), "execute"))
    for workflow, _, _ in rng.sample(out.workflows, len(out.workflows) // 20):
        grants.append(Grant("workflow", workflow, rng.choice(users), None, "read_write"))


# -- writing them --------------------------------------------------------------------------------


def _write(conn: Connection, out: Seeded) -> None:
    from uzo_api.auth import crypto
    from uzo_api.db.models import (
        AuditLog,
        Folder,
        Group,
        Job,
        ObjectPermission,
        User,
        UserGroup,
        Workflow,
        Workspace,
    )

    sid, owner = out.subscription_id, out.owner_id
    mine = {"subscription_id": sid, "created_by": owner}
    names = {ws: f"Workspace {i:02d}" for i, ws in enumerate(out.workspaces)}
    _rows(conn, Workspace, [{"id": w, "workspace_name": names[w], **mine} for w in names])
    _rows(
        conn,
        Folder,
        [
            {
                "id": f.id,
                "workspace_id": f.workspace_id,
                "parent_folder_id": f.parent_id,
                "ancestor_ids": list(f.ancestors),
                "folder_name": f"folder-{i:04d}",
                **mine,
            }
            for i, f in enumerate(out.folders)
        ],
    )
    audit = [
        {"subscription_id": sid, "user_id": owner, "action": "workspace.create",
         "resource_type": "workspace", "resource_id": w, "changes": None}
        for w in out.workspaces
    ] + [
        {"subscription_id": sid, "user_id": owner, "action": "folder.create",
         "resource_type": "folder", "resource_id": f.id,
         "changes": {"parent_folder_id": str(f.parent_id) if f.parent_id else None}}
        for f in out.folders
    ]  # fmt: skip
    _rows(conn, AuditLog, audit)
    _rows(
        conn,
        Job,
        [
            {"id": j, "folder_id": folder, "job_name": f"job-{i:05d}", **mine}
            for i, (j, folder) in enumerate(out.jobs)
        ],
    )
    _rows(
        conn,
        Workflow,
        [
            {
                "id": w,
                "job_id": job,
                "workflow_name": f"{template}-{i:05d}",
                "workflow_diagram": out.templates[template],
                "is_draft": False,
                **mine,
            }
            for i, (w, job, template) in enumerate(out.workflows)
        ],
    )
    password_hash = crypto.hash_password(PASSWORD)
    _rows(
        conn,
        User,
        [
            {
                "id": u,
                "subscription_id": sid,
                "username": email.split("@", 1)[0],
                "email": email,
                "password_hash": password_hash,
                "is_subscription_owner": False,
            }
            for u, email in out.users
        ],
    )
    _rows(
        conn,
        Group,
        [{"id": g, "group_name": f"group-{i:03d}", **mine} for i, g in enumerate(out.groups)],
    )
    _rows(
        conn,
        UserGroup,
        [
            {"subscription_id": sid, "group_id": g, "user_id": u, "added_by": owner}
            for u, groups in out.members.items()
            for g in groups
        ],
    )
    _rows(
        conn,
        ObjectPermission,
        [
            {
                "subscription_id": sid,
                "object_type": g.object_type,
                "object_id": g.object_id,
                "user_id": g.user_id,
                "group_id": g.group_id,
                "permission_level": g.level,
                "granted_by": owner,
            }
            for g in out.grants
        ],
    )


def _rows(conn: Connection, model: Any, rows: list[dict[str, Any]]) -> None:
    """Core inserts (the models' Python defaults apply: ids, flags, empty diagrams)."""
    for start in range(0, len(rows), CHUNK):
        conn.execute(insert(model), rows[start : start + CHUNK])
