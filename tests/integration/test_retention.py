"""Retention drops whole monthly partitions past their period, never rows younger than
it, never audit_logs; a dry run only lists (uzo db retention)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import text

from tests.factories import register, unique_email
from tests.integration.test_cli import _env
from uzo_api.db import retention

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fastapi.testclient import TestClient

    from uzo_api.db.session import Database
    from uzo_api.settings import Settings

TABLES = ("server_logs", "execution_logs", "audit_logs", "data_change_history")
MONTHS = ("2001-01-01", "2001-02-01", "2001-03-01")
UZO = str(Path(sys.executable).with_name("uzo"))


def _exists(database: Database, name: str) -> bool:
    with database.owner_engine.connect() as conn:
        return conn.execute(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name}).scalar_one()


@pytest.fixture
def old_partitions(client: TestClient, database: Database) -> Iterator[None]:
    """January and February 2001 partitions of every log table, one row in each January."""
    body: Any = register(client, email=unique_email("ret"))
    sid = body["subscription"]["id"]
    with database.owner_engine.begin() as conn:
        for table in TABLES:
            for start, end in itertools.pairwise(MONTHS):
                name = f"{table}_p{start[:7].replace('-', '')}"
                conn.execute(
                    text(
                        f"CREATE TABLE {name} PARTITION OF {table} "
                        f"FOR VALUES FROM ('{start} 00:00:00+00') TO ('{end} 00:00:00+00')"
                    )
                )
        at = {"at": dt.datetime(2001, 1, 15, tzinfo=dt.UTC), "s": sid, "i": uuid.uuid4()}
        conn.execute(
            text(
                "INSERT INTO server_logs (id, created_at, request_id, method, endpoint, "
                "response_status, response_time_ms) VALUES (:i, :at, 'r', 'GET', '/', 200, 1)"
            ),
            at,
        )
        conn.execute(
            text(
                "INSERT INTO audit_logs (id, created_at, subscription_id, action, resource_type,"
                " status) VALUES (:i, :at, :s, 'x.y', 'x', 'success')"
            ),
            at,
        )
    try:
        yield
    finally:
        with database.owner_engine.begin() as conn:
            for table in TABLES:
                for start in MONTHS[:2]:
                    conn.execute(
                        text(f"DROP TABLE IF EXISTS {table}_p{start[:7].replace('-', '')}")
                    )


@pytest.mark.usefixtures("old_partitions")
def test_only_partitions_wholly_past_retention_go(database: Database, settings: Settings) -> None:
    engine = database.owner_engine
    # 90 days after 2001-02-01: January's range is wholly past, February's is not
    now = dt.datetime(2001, 2, 1, tzinfo=dt.UTC) + dt.timedelta(days=90)
    listed = retention.apply(engine, settings, dry_run=True, now=now)
    assert [(p.table, p.name, p.rows) for p in listed] == [
        ("server_logs", "server_logs_p200101", 1)
    ]
    assert _exists(database, "server_logs_p200101")  # a dry run drops nothing

    dropped = retention.apply(engine, settings, dry_run=False, now=now)
    assert [p.name for p in dropped] == ["server_logs_p200101"]
    assert not _exists(database, "server_logs_p200101")
    assert _exists(database, "server_logs_p200102")
    assert retention.apply(engine, settings, dry_run=True, now=now) == []

    # a year on, execution_logs' months go too; audit_logs and the change history never
    later = dt.datetime(2002, 3, 1, tzinfo=dt.UTC)
    names = {p.name for p in retention.apply(engine, settings, dry_run=False, now=later)}
    assert names == {"server_logs_p200102", "execution_logs_p200101", "execution_logs_p200102"}
    assert _exists(database, "audit_logs_p200101")
    assert _exists(database, "data_change_history_p200101")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_logs_p200101")).scalar_one() == 1
        # the parents lost no other rows: the current months' partitions are untouched
        assert conn.execute(text("SELECT to_regclass('server_logs_default')")).scalar_one()


@pytest.mark.usefixtures("old_partitions")
def test_the_cli_dry_run_lists_what_would_go(uzo_home: Path, database: Database) -> None:
    result = subprocess.run(
        [UZO, "db", "retention", "--dry-run", "--json"],
        env=_env(uzo_home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["dry_run"] is True
    names = {p["partition"]: p for p in doc["partitions"]}
    assert {"server_logs_p200101", "execution_logs_p200101"} <= set(names)
    assert not any(p["table"] == "audit_logs" for p in doc["partitions"])
    assert names["server_logs_p200101"]["rows"] == 1
    assert names["server_logs_p200101"]["from"].startswith("2001-01-01")
    assert _exists(database, "server_logs_p200101")
