"""The governance tree's changes are audited like the rest: jobs, job packages and
workflows (whose images leave the diagram to the version audited with it)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from tests.integration.test_workflows_api import new_tenant, small_diagram

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from uzo_api.db.session import Database


def _audit(database: Database, request_id: str) -> list[Any]:
    with database.owner_engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT a.action, a.resource_type, a.resource_id, h.old_data, h.new_data "
                    "FROM audit_logs a LEFT JOIN data_change_history h "
                    "ON h.record_id = a.resource_id AND h.subscription_id = a.subscription_id "
                    "AND h.created_at = a.created_at WHERE a.request_id = :r ORDER BY a.action"
                ),
                {"r": request_id},
            ).all()
        )


def test_jobs_packages_and_workflows_changes_are_audited_with_images(
    client: TestClient, database: Database
) -> None:
    t = new_tenant(client, database, "Audited")
    h = t.headers

    def change(method: str, path: str, **kw: Any) -> tuple[dict[str, Any], list[Any]]:
        resp = client.request(method, path, headers=h, **kw)
        assert resp.status_code in (200, 201), resp.text
        return resp.json(), _audit(database, resp.headers["x-request-id"])

    job, rows = change("POST", f"/api/folders/{t.folder_id}/jobs", json={"name": "nightly"})
    assert [(r.action, str(r.resource_id)) for r in rows] == [("job.create", job["id"])]
    assert rows[0].new_data["job_name"] == "nightly"
    _, rows = change("PATCH", f"/api/jobs/{job['id']}", json={"description": "every night"})
    (row,) = rows
    assert row.action == "job.update"
    assert (row.old_data["description"], row.new_data["description"]) == (None, "every night")

    flow, rows = change(
        "POST",
        f"/api/jobs/{job['id']}/workflows",
        json={"name": "load", "diagram": small_diagram()},
    )
    actions = {(r.action, r.resource_type) for r in rows}
    assert {("workflow.create", "workflow"), ("version.create", "version")} <= actions
    image = next(r.new_data for r in rows if r.action == "workflow.create")
    assert image["workflow_name"] == "load"
    assert "workflow_diagram" not in image  # the version's image holds it
    moved = small_diagram()
    moved["nodes"][1]["position"]["x"] = 73_913.625  # a value no id or digest can spell
    _, rows = change("PATCH", f"/api/workflows/{flow['id']}", json={"diagram": moved})
    update = next(r for r in rows if r.action == "workflow.update")
    assert update.old_data["current_version"] + 1 == update.new_data["current_version"]
    (version,) = [r.new_data for r in rows if r.resource_type == "version"]
    assert version["version_data"]["digest"]  # names the diagram the version row keeps
    assert "diagram" not in version["version_data"]
    assert "73913.625" not in json.dumps(version)

    package, rows = change("POST", "/api/jobpackages", json={"name": "all"})
    assert [r.action for r in rows] == ["jobpackage.create"]
    _, rows = change("PUT", f"/api/jobpackages/{package['id']}/jobs", json={"job_ids": [job["id"]]})
    assert [r.action for r in rows] == ["jobpackage.set_jobs"]
    _, rows = change("PATCH", f"/api/jobpackages/{package['id']}", json={"name": "every"})
    assert [r.action for r in rows] == ["jobpackage.update"]


def test_workspace_and_folder_changes_carry_before_and_after_images(
    client: TestClient, database: Database
) -> None:
    t = new_tenant(client, database, "Imaged")
    h = t.headers

    def change(method: str, path: str, body: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        resp = client.request(method, path, headers=h, json=body)
        assert resp.status_code in (200, 201), resp.text
        rows = _audit(database, resp.headers["x-request-id"])
        return resp.json(), {r.action: r for r in rows}

    ws, rows = change("POST", "/api/workspaces", {"name": "Sales"})
    assert rows["workspace.create"].new_data["workspace_name"] == "Sales"
    assert rows["workspace.create"].old_data is None
    _, rows = change("PATCH", f"/api/workspaces/{ws['id']}", {"name": "Sales EU"})
    update = rows["workspace.update"]
    assert (update.old_data["workspace_name"], update.new_data["workspace_name"]) == (
        "Sales",
        "Sales EU",
    )
    folder, rows = change("POST", f"/api/workspaces/{ws['id']}/folders", {"name": "Raw"})
    assert rows["folder.create"].new_data["folder_name"] == "Raw"
    _, rows = change("PATCH", f"/api/folders/{folder['id']}", {"description": "landing"})
    update = rows["folder.update"]
    assert (update.old_data["description"], update.new_data["description"]) == (None, "landing")
