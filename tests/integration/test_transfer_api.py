"""Export a job from one tenant and import it into another: same workflow, no secrets,
connectors mapped by name and type, nothing half-created."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from tests.integration.test_workflows_api import (
    Tenant,
    make_job,
    make_workflow,
    new_tenant,
    problem,
    small_diagram,
)
from uzo_engine.runtime.local import run_workflow

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from uzo_api.db.session import Database

SECRET = "export-secret-" + "s" * 20


def _connector(client: TestClient, tenant: Tenant, name: str) -> str:
    resp = client.post(
        "/api/connectors",
        headers=tenant.headers,
        json={
            "name": name,
            "connector_type": "s3",
            "config": {
                "bucket": "lake",
                "endpoint_url": "http://127.0.0.1:9",
                "access_key_id": "AKIAEXAMPLE",
                "secret_access_key": SECRET,
            },
        },
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _source(node_id: str, connector_id: str) -> dict[str, Any]:
    return {
        "id": node_id,
        "position": {"x": 0, "y": 200},
        "data": {
            "nodeType": "source",
            "config": {
                "connector": "s3",
                "connector_id": connector_id,
                "dataset": f"{node_id}.csv",
                "schema": {"amount": "int64"},
            },
        },
    }


def _with_sources(*connectors: tuple[str, str]) -> dict[str, Any]:
    """The small diagram, and a source per connector feeding a filter of its own."""
    doc = small_diagram()
    for node_id, connector_id in connectors:
        doc["nodes"].append(_source(node_id, connector_id))
        doc["nodes"].append(
            {
                "id": f"{node_id}-big",
                "position": {"x": 200, "y": 200},
                "data": {"nodeType": "filter", "config": {"condition": "amount > 10"}},
            }
        )
        doc["edges"].append({"id": f"e-{node_id}", "source": node_id, "target": f"{node_id}-big"})
    return doc


def _outputs(diagram: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    result = run_workflow(diagram)
    assert result.status == "succeeded", result.error
    return {
        f"{step}:{port}": table.to_pylist()
        for (step, port), table in result.outputs.items()
        if isinstance(table, pa.Table)
    }


def test_a_job_exported_from_one_tenant_runs_the_same_in_another(
    client: TestClient, database: Database
) -> None:
    a = new_tenant(client, database, "Exporter")
    b = new_tenant(client, database, "Importer")
    job = make_job(client, a, "nightly")
    plain = make_workflow(client, a, job["id"], small_diagram(), name="plain")
    assert plain.status_code == 201, plain.text
    lake_a = _connector(client, a, "warehouse")
    other_a = _connector(client, a, "only-in-a")
    both = _with_sources(("lake", lake_a), ("other", other_a))
    uses = make_workflow(client, a, job["id"], both, name="uses connectors")
    assert uses.status_code == 201, uses.text
    only_lake = make_workflow(client, a, job["id"], _with_sources(("lake", lake_a)), name="lake")
    assert only_lake.status_code == 201, only_lake.text

    # "plain" runs its published version 1; its latest save (version 2) keeps only big rows
    first = client.get(f"/api/workflows/{plain.json()['id']}/versions", headers=a.headers)
    (v1,) = first.json()["items"]
    published = client.post(f"/api/versions/{v1['id']}/publish", headers=a.headers)
    assert published.status_code == 200, published.text
    newer = small_diagram()
    newer["nodes"][1]["data"]["config"]["condition"] = "amount > 100"
    saved = client.patch(
        f"/api/workflows/{plain.json()['id']}", headers=a.headers, json={"diagram": newer}
    )
    assert saved.status_code == 200, saved.text

    exported = client.get(f"/api/jobs/{job['id']}/export", headers=a.headers)
    assert exported.status_code == 200, exported.text
    bundle = exported.json()
    assert bundle["format"] == "uzo.job"
    assert bundle["job"]["name"] == "nightly"
    assert [w["name"] for w in bundle["workflows"]] == ["lake", "plain", "uses connectors"]
    assert not any(w["is_draft"] for w in bundle["workflows"])
    plain_spec = next(w for w in bundle["workflows"] if w["name"] == "plain")
    assert plain_spec["published"]["version_number"] == 1
    assert plain_spec["published"]["diagram"] == small_diagram()
    assert plain_spec["diagram"] == newer
    assert {(c["name"], c["connector_type"]) for c in bundle["connectors"]} == {
        ("warehouse", "s3"),
        ("only-in-a", "s3"),
    }
    # no secret, no configuration of a connector, no tenant id
    text = json.dumps(bundle)
    assert SECRET not in text
    assert "AKIAEXAMPLE" not in text
    assert str(a.subscription_id) not in text

    lake_b = _connector(client, b, "warehouse")
    imported = client.post(f"/api/folders/{b.folder_id}/import", headers=b.headers, json=bundle)
    assert imported.status_code == 201, imported.text
    result = imported.json()
    assert result["job_name"] == "nightly"
    by_name = {w["name"]: w for w in result["workflows"]}
    assert by_name["plain"]["is_draft"] is False
    assert by_name["lake"]["is_draft"] is False  # its one connector is mapped
    # one connector is not in B: that workflow is a draft, the node's connector cleared
    assert by_name["uses connectors"]["is_draft"] is True
    mappings = {m["name"]: m for m in result["connectors"]}
    assert mappings["warehouse"]["connector_id"] == lake_b
    assert sorted(mappings["warehouse"]["nodes"]) == ["lake/lake", "uses connectors/lake"]
    assert mappings["only-in-a"]["connector_id"] is None
    assert mappings["only-in-a"]["nodes"] == ["uses connectors/other"]
    assert result["unmapped_connectors"] == 1

    got = client.get(f"/api/workflows/{by_name['uses connectors']['id']}", headers=b.headers)
    nodes = {n["id"]: n for n in got.json()["diagram"]["nodes"]}
    assert nodes["lake"]["data"]["config"]["connector_id"] == lake_b
    assert nodes["other"]["data"]["config"]["connector_id"] is None
    assert got.json()["diagram"]["nodes"][0] == both["nodes"][0]  # UI fields kept as drawn

    # in B "plain" publishes the same version, then its latest diagram, as in A
    assert by_name["plain"]["published_version"] == 1
    history = client.get(f"/api/workflows/{by_name['plain']['id']}/versions", headers=b.headers)
    statuses = {v["version_number"]: v["status"] for v in history.json()["items"]}
    assert statuses == {1: "published", 2: "checked_in"}
    source = client.get(f"/api/workflows/{plain.json()['id']}", headers=a.headers).json()
    copy = client.get(f"/api/workflows/{by_name['plain']['id']}", headers=b.headers).json()
    assert copy["diagram"] == source["diagram"] == newer
    # and both versions run in B exactly as in A
    assert _outputs(copy["diagram"]) == _outputs(source["diagram"])
    assert _outputs(small_diagram()) != _outputs(newer)

    # B cannot read A's job, nor import into A's folder
    assert client.get(f"/api/jobs/{job['id']}/export", headers=b.headers).status_code == 404
    foreign = client.post(f"/api/folders/{a.folder_id}/import", headers=b.headers, json=bundle)
    assert foreign.status_code == 404


def test_an_import_is_all_or_nothing_and_refuses_a_taken_name(
    client: TestClient, database: Database
) -> None:
    b = new_tenant(client, database, "Strict")
    make_job(client, b, "nightly")
    bundle = {"job": {"name": "nightly"}, "workflows": [{"name": "w", "diagram": small_diagram()}]}
    taken = client.post(f"/api/folders/{b.folder_id}/import", headers=b.headers, json=bundle)
    assert "nightly" in problem(taken, 409)["detail"]
    # the second workflow does not validate: nothing of the import survives
    broken = small_diagram()
    broken["nodes"][1]["data"]["nodeType"] = "filtr"
    bundle = {
        "job": {"name": "fresh"},
        "workflows": [
            {"name": "good", "diagram": small_diagram()},
            {"name": "bad", "diagram": broken},
        ],
    }
    refused = client.post(f"/api/folders/{b.folder_id}/import", headers=b.headers, json=bundle)
    body = problem(refused, 422)
    assert any(e.get("node_id") == "keep" for e in body["errors"])
    jobs = client.get(f"/api/folders/{b.folder_id}/jobs", headers=b.headers).json()["items"]
    assert [j["name"] for j in jobs] == ["nightly"]
    # under another name it goes in, and a secret in a hand-edited bundle is refused
    renamed = client.post(
        f"/api/folders/{b.folder_id}/import?name=nightly%202",
        headers=b.headers,
        json={"job": {"name": "nightly"}, "workflows": [{"name": "w", "diagram": small_diagram()}]},
    )
    assert renamed.status_code == 201, renamed.text
    assert renamed.json()["job_name"] == "nightly 2"
    leaky = small_diagram()
    leaky["nodes"].append(
        {
            "id": "s",
            "data": {
                "nodeType": "source",
                "config": {"connector": "s3", "dataset": "x", "config": {"secret_access_key": "k"}},
            },
        }
    )
    secret = client.post(
        f"/api/folders/{b.folder_id}/import",
        headers=b.headers,
        json={"job": {"name": "leaky"}, "workflows": [{"name": "w", "diagram": leaky}]},
    )
    assert secret.status_code == 422, secret.text
    # unknown fields (ids, tenants) are refused, not ignored
    extra = client.post(
        f"/api/folders/{b.folder_id}/import",
        headers=b.headers,
        json={"job": {"name": "x", "subscription_id": str(b.subscription_id)}},
    )
    assert extra.status_code == 422
