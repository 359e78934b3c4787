"""What the audit trail costs: added save latency, request-log cost, log ingestion rate.

In an embedded PostgreSQL in a temporary UZO_HOME, with the API in process (the full
ASGI stack: middleware, one transaction per request, RLS), one tenant:

1. **Added save latency.** Saves through the API, p50/p95 with audit writing on and off
   in the same run, in alternating blocks (so drift of the shared machine hits both
   alike): a workflow save (``PATCH /api/workflows/{id}``: a node moved by a pixel) and
   a connector save (``PATCH /api/connectors/{id}``, audited with before/after images).
   "Off" is :func:`uzo_api.services.audit.set_writing` (``UZO_AUDIT_ENABLED=false``, a
   benchmark switch): everything else of the request is the same. The audit rows
   written per save are counted, so a save that writes none shows as such. Goal: the
   p95 added by auditing under 2 ms.
2. **Request-log cost.** What the request middleware adds per request for
   ``server_logs``: building the record and queueing it (the batch writer does the rest
   off the request path), timed over many calls.
3. **Ingestion.** server_logs rows (several tenants and anonymous requests) and
   execution_logs rows (with JSON details) put on the batch writer
   (:class:`uzo_api.server_log_writer.LogBatchWriter`, one INSERT ... unnest per tenant
   and batch, application role, RLS on) into the monthly-partitioned tables: rows per
   second from the first put until the last row is committed. Goal: at least 50,000
   rows/s sustained.

Results: a table on stdout, ``benchmarks/results/audit.json`` (and ``audit.png``).
Sizes: ``UZO_BENCH_AUDIT_SAVES`` (per mode and kind, 1,500), ``UZO_BENCH_AUDIT_ROWS``
(per table, 500,000); ``UZO_BENCH_QUICK=1`` runs a small smoke version.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from uzo_api.db.session import Database

RESULTS = Path(__file__).parent / "results" / "audit.json"
EXAMPLE = Path(__file__).parent.parent / "examples" / "orders_router.json"
GOALS = {"added_save_p95_ms_max": 2.0, "ingest_rows_per_s_min": 50_000}
PASSWORD = "bench-password-123"


@dataclass(frozen=True)
class Config:
    saves: int = 1_500
    block: int = 50
    rows: int = 500_000
    tenants: int = 4
    enqueue_calls: int = 200_000
    results: Path = RESULTS
    quick: bool = False


def config_from_env() -> Config:
    if os.environ.get("UZO_BENCH_QUICK") == "1":
        return Config(saves=20, block=5, rows=5_000, tenants=2, enqueue_calls=2_000, quick=True)
    return Config(
        saves=int(os.environ.get("UZO_BENCH_AUDIT_SAVES", "1500")),
        rows=int(os.environ.get("UZO_BENCH_AUDIT_ROWS", "500000")),
    )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "count": len(values),
        "p50_ms": round(statistics.median(values), 3),
        "p95_ms": round(_pct(values, 0.95), 3),
        "p99_ms": round(_pct(values, 0.99), 3),
    }


# -- 1. saves, audit on and off ---------------------------------------------------------


@dataclass
class Tenant:
    headers: dict[str, str]
    subscription_id: uuid.UUID
    workflow_id: str = ""
    connector_id: str = ""
    diagram: dict[str, Any] = field(default_factory=dict)


def _tenant(client: TestClient) -> Tenant:
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    made = client.post(
        "/api/auth/register",
        json={"email": email, "password": PASSWORD, "company_name": "Bench"},
    )
    made.raise_for_status()
    token = client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    t = Tenant(headers, uuid.UUID(made.json()["subscription"]["id"]))
    up = client.post("/api/subscriptions/upgrade", headers=headers, json={"plan_key": "premium"})
    up.raise_for_status()
    ws = client.post("/api/workspaces", headers=headers, json={"name": "bench"}).json()
    folder = client.post(
        f"/api/workspaces/{ws['id']}/folders", headers=headers, json={"name": "f"}
    ).json()
    job = client.post(f"/api/folders/{folder['id']}/jobs", headers=headers, json={"name": "j"})
    t.diagram = json.loads(EXAMPLE.read_text())
    wf = client.post(
        f"/api/jobs/{job.json()['id']}/workflows",
        headers=headers,
        json={"name": "w", "diagram": t.diagram},
    )
    wf.raise_for_status()
    t.workflow_id = wf.json()["id"]
    conn = client.post(
        "/api/connectors",
        headers=headers,
        json={
            "name": "lake",
            "connector_type": "s3",
            "config": {
                "bucket": "lake",
                "endpoint_url": "https://storage.example.com",
                "access_key_id": "AKIAEXAMPLE",
                "secret_access_key": "not-a-real-secret",
            },
        },
    )
    conn.raise_for_status()
    t.connector_id = conn.json()["id"]
    return t


def _save(client: TestClient, t: Tenant, kind: str, i: int) -> float:
    if kind == "workflow":
        doc = copy.deepcopy(t.diagram)
        doc["nodes"][0]["position"]["x"] += i % 2  # a node moved by a pixel
        started = time.perf_counter()
        resp = client.patch(f"/api/workflows/{t.workflow_id}", headers=t.headers,
                            json={"diagram": doc})  # fmt: skip
    else:
        started = time.perf_counter()
        resp = client.patch(f"/api/connectors/{t.connector_id}", headers=t.headers,
                            json={"description": f"save {i}"})  # fmt: skip
    elapsed = (time.perf_counter() - started) * 1000
    resp.raise_for_status()
    return elapsed


def _audit_rows(db: Database, resource_id: str) -> int:
    from sqlalchemy import text

    with db.owner_engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM audit_logs WHERE resource_id = :r"), {"r": resource_id}
            ).scalar_one()
        )


def time_saves(client: TestClient, db: Database, t: Tenant, cfg: Config) -> dict[str, Any]:
    from uzo_api.services import audit

    out: dict[str, Any] = {}
    try:
        for kind in ("workflow", "connector"):
            resource = t.workflow_id if kind == "workflow" else t.connector_id
            for i in range(max(cfg.block, 10)):  # warm up: imports, plans, caches
                _save(client, t, kind, i)
            times: dict[str, list[float]] = {"on": [], "off": []}
            rows = {"on": 0, "off": 0}
            i = 0
            while len(times["on"]) < cfg.saves:
                for mode in ("on", "off"):
                    audit.set_writing(mode == "on")
                    before = _audit_rows(db, resource)
                    for _ in range(cfg.block):
                        times[mode].append(_save(client, t, kind, i))
                        i += 1
                    rows[mode] += _audit_rows(db, resource) - before
            on, off = _stats(times["on"]), _stats(times["off"])
            out[kind] = {
                "audit_on": on,
                "audit_off": off,
                "added_p50_ms": round(on["p50_ms"] - off["p50_ms"], 3),
                "added_p95_ms": round(on["p95_ms"] - off["p95_ms"], 3),
                "audit_rows_per_save": {m: round(rows[m] / len(times[m]), 2) for m in rows},
            }
    finally:
        audit.set_writing(True)
    return out


def time_workflow_images(db: Database, t: Tenant, cfg: Config) -> dict[str, Any]:
    """The audit a workflow save will write (its row and the before/after images with
    the diagram), timed directly: a transaction that loads the workflow, changes its
    diagram and commits, with and without ``audit.write`` of those images, alternating.
    Workflow saves write no audit row on this branch yet (the versions work adds it);
    this is what it will cost them."""
    import uuid as uuid_mod

    from uzo_api.auth.principal import Principal
    from uzo_api.db.models import Workflow
    from uzo_api.services import audit

    principal = Principal(user_id=uuid_mod.uuid4(), subscription_id=t.subscription_id,
                          method="jwt")  # fmt: skip
    wid = uuid_mod.UUID(t.workflow_id)
    times: dict[str, list[float]] = {"on": [], "off": []}
    for i in range(cfg.saves * 2 + 20):
        mode = "on" if (i // cfg.block) % 2 == 0 else "off"
        started = time.perf_counter()
        with db.tenant(t.subscription_id) as s:
            row = s.get(Workflow, wid)
            assert row is not None
            before = audit.snapshot(row) if mode == "on" else None
            doc = copy.deepcopy(row.workflow_diagram)
            doc["nodes"][0]["position"]["x"] += 1 if i % 2 else -1  # the save itself
            row.workflow_diagram = doc
            s.flush()
            if before is not None:
                audit.write(s, principal, "workflow.update", "workflow", wid,
                            {"fields": ["diagram"]}, before=before,
                            after=audit.snapshot(row))  # fmt: skip
        if i >= 20:  # the first ones warm up
            times[mode].append((time.perf_counter() - started) * 1000)
    on, off = _stats(times["on"]), _stats(times["off"])
    return {
        "with_images": on,
        "without": off,
        "added_p50_ms": round(on["p50_ms"] - off["p50_ms"], 3),
        "added_p95_ms": round(on["p95_ms"] - off["p95_ms"], 3),
        "diagram_bytes": len(json.dumps(t.diagram)),
    }


# -- 2. what a request pays for its server_logs row -------------------------------------


def time_enqueue(cfg: Config) -> dict[str, Any]:
    from uzo_api.observability import _server_log
    from uzo_api.server_log_writer import SERVER_LOGS, LogBatchWriter

    class _Route:
        path = "/api/workflows/{workflow_id}"

    class _Principal:
        subscription_id = uuid.uuid4()
        user_id = uuid.uuid4()

    scope: dict[str, Any] = {
        "method": "PATCH",
        "path": f"/api/workflows/{uuid.uuid4()}",
        "route": _Route(),
        "state": {"principal": _Principal()},
        "client": ("127.0.0.1", 50000),
        "headers": [(b"host", b"x"), (b"authorization", b"Bearer x")],
    }
    writer = LogBatchWriter(SERVER_LOGS, capacity=cfg.enqueue_calls + 1)  # never started
    started = time.perf_counter()
    for _ in range(cfg.enqueue_calls):
        writer.put(_server_log(scope, "0123456789abcdef", 200, 3.2))
    per_call_us = (time.perf_counter() - started) / cfg.enqueue_calls * 1e6
    return {"calls": cfg.enqueue_calls, "per_request_us": round(per_call_us, 3)}


# -- 3. ingestion through the batch writer ----------------------------------------------


def _server_rows(n: int, tenants: list[uuid.UUID | None], now: dt.datetime) -> list[Any]:
    routes = ["/api/workflows/{workflow_id}", "/api/users", "/api/folders/{folder_id}/jobs"]
    return [
        (
            now,
            tenants[i % len(tenants)],
            uuid.uuid4().hex,
            "GET" if i % 4 else "PATCH",
            routes[i % 3],
            200 if i % 50 else 404,
            1.0 + (i % 97) / 10,
            None,
            "10.0.0.1",
        )
        for i in range(n)
    ]


def _execution_rows(n: int, tenants: list[uuid.UUID | None], now: dt.datetime) -> list[Any]:
    runs = [uuid.uuid4() for _ in range(16)]
    workflow = uuid.uuid4()
    return [
        (
            now,
            tenants[i % len(tenants)],
            runs[i % 16],
            workflow,
            f"node_{i % 12}",
            "INFO",
            f"node_{i % 12} wrote {i} rows",
            json.dumps({"rows": i, "bytes": i * 64}),
            None,
        )
        for i in range(n)
    ]


def time_ingestion(db: Database, tenants: list[uuid.UUID], cfg: Config) -> dict[str, Any]:
    from uzo_api.server_log_writer import EXECUTION_LOGS, SERVER_LOGS, LogBatchWriter

    now = dt.datetime.now(dt.UTC)
    out: dict[str, Any] = {}
    cases = (
        ("server_logs", SERVER_LOGS, _server_rows(cfg.rows, [*tenants, None], now)),
        ("execution_logs", EXECUTION_LOGS, _execution_rows(cfg.rows, list(tenants), now)),
    )
    for name, table, rows in cases:
        writer = LogBatchWriter(table, capacity=len(rows) + 1, batch_size=5_000)
        writer.start(url=db.urls.app)
        started = time.perf_counter()
        for row in rows:
            writer.put(row)
        put_s = time.perf_counter() - started
        writer.stop(timeout=600)  # writes what is queued, then returns
        elapsed = time.perf_counter() - started
        stats = writer.stats
        out[name] = {
            "rows": len(rows),
            "written": stats.written,
            "dropped": stats.dropped,
            "failed": stats.failed,
            "batches": stats.batches,
            "seconds": round(elapsed, 3),
            "producer_seconds": round(put_s, 3),
            "rows_per_s": round(stats.written / elapsed),
        }
    return out


# -- the run ----------------------------------------------------------------------------


def run(cfg: Config) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from uzo_api.app import create_app, open_database
    from uzo_api.db import migrate
    from uzo_api.db.embedded import stop_embedded
    from uzo_api.observability import configure_logging
    from uzo_api.settings import DatabaseSettings, Settings

    configure_logging("WARNING")  # a log line per request would be the loudest cost here

    home = Path(tempfile.mkdtemp(prefix="uzo-bench-audit-"))
    home.chmod(0o755)
    settings = Settings(home=home, database=DatabaseSettings(url=None), log_level="WARNING")
    db = open_database(settings)
    started = time.perf_counter()
    try:
        migrate.upgrade(db.owner_engine, settings)
        with TestClient(create_app(settings, db)) as client:
            tenants = [_tenant(client) for _ in range(cfg.tenants)]
            saves = time_saves(client, db, tenants[0], cfg)
        saves["workflow_audit_statement"] = time_workflow_images(db, tenants[0], cfg)
        enqueue = time_enqueue(cfg)
        ingestion = time_ingestion(db, [t.subscription_id for t in tenants], cfg)
    finally:
        db.dispose()
        stop_embedded(settings)
        shutil.rmtree(home, ignore_errors=True)
    report = _report(cfg, saves, enqueue, ingestion, time.perf_counter() - started)
    cfg.results.parent.mkdir(parents=True, exist_ok=True)
    cfg.results.write_text(json.dumps(report, indent=2) + "\n")
    _print(report)
    return report


def _report(
    cfg: Config,
    saves: dict[str, Any],
    enqueue: dict[str, Any],
    ingestion: dict[str, Any],
    seconds: float,
) -> dict[str, Any]:
    added = max(s["added_p95_ms"] for s in saves.values())
    slowest = min(i["rows_per_s"] for i in ingestion.values())
    return {
        "benchmark": "audit",
        "quick": cfg.quick,
        "config": {
            "saves_per_mode": cfg.saves,
            "block": cfg.block,
            "rows": cfg.rows,
            "tenants": cfg.tenants,
        },
        "saves": saves,
        "server_log_enqueue": enqueue,
        "ingestion": ingestion,
        "goals": GOALS,
        "verdict": {
            "added_save_p95_ms": added,
            "added_save_p95_ok": added < GOALS["added_save_p95_ms_max"],
            "ingest_rows_per_s": slowest,
            "ingest_ok": slowest >= GOALS["ingest_rows_per_s_min"],
        },
        "seconds": round(seconds, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
        },
    }


def _print(report: dict[str, Any]) -> None:
    print(f"{'save':<10} {'audit':<5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'rows/save':>10}")
    for kind, s in report["saves"].items():
        if "audit_on" not in s:
            continue
        for mode in ("on", "off"):
            st = s[f"audit_{mode}"]
            rows = s["audit_rows_per_save"][mode]
            print(f"{kind:<10} {mode:<5} {st['p50_ms']:>8} {st['p95_ms']:>8} {st['p99_ms']:>8} "
                  f"{rows:>10}")  # fmt: skip
        print(f"{kind:<10} added p95 {s['added_p95_ms']} ms (p50 {s['added_p50_ms']} ms)")
    direct = report["saves"]["workflow_audit_statement"]
    print(f"workflow audit row + images ({direct['diagram_bytes']} B diagram), timed directly: "
          f"added p50 {direct['added_p50_ms']} ms, p95 {direct['added_p95_ms']} ms")  # fmt: skip
    print(f"server_logs record per request: {report['server_log_enqueue']['per_request_us']} µs")
    print(f"{'table':<16} {'rows':>9} {'seconds':>8} {'rows/s':>9} {'dropped':>8} {'failed':>7}")
    for name, i in report["ingestion"].items():
        print(f"{name:<16} {i['written']:>9} {i['seconds']:>8} {i['rows_per_s']:>9} "
              f"{i['dropped']:>8} {i['failed']:>7}")  # fmt: skip
    v = report["verdict"]
    print(
        f"added save p95 {v['added_save_p95_ms']} ms (goal < 2): "
        f"{'ok' if v['added_save_p95_ok'] else 'MISSED'}; "
        f"ingestion {v['ingest_rows_per_s']} rows/s (goal >= 50,000): "
        f"{'ok' if v['ingest_ok'] else 'MISSED'}"
    )


def main() -> None:
    run(config_from_env())
