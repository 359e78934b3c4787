"""Row-Level Security, proven with raw SQL as the application role."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from tests.factories import register

if TYPE_CHECKING:
    from fastapi.testclient import TestClient
    from sqlalchemy import Connection

    from uzo_api.db.session import Database


def _tenant(conn: Connection, subscription_id: object) -> None:
    conn.execute(
        text("SELECT set_config('app.subscription_id', :s, true)"), {"s": str(subscription_id)}
    )


@pytest.fixture
def two_tenants(client: TestClient) -> tuple[dict[str, object], dict[str, object]]:
    a = register(client, company="Tenant A")
    b = register(client, company="Tenant B")
    return a, b


def _ids(tenant: dict[str, object]) -> tuple[str, str]:
    user = tenant["user"]
    assert isinstance(user, dict)
    return str(user["subscription_id"]), str(user["id"])


def test_app_role_cannot_bypass_rls(database: Database) -> None:
    with database.engine.connect() as conn:
        role = conn.execute(
            text(
                "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
            )
        ).one()
        owned = conn.execute(
            text(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relowner = "
                "(SELECT oid FROM pg_roles WHERE rolname = current_user)"
            )
        ).scalar_one()
    assert role.rolname == "uzo_app"
    assert role.rolsuper is False
    assert role.rolbypassrls is False
    assert owned == 0


def test_every_tenant_table_has_forced_rls(database: Database) -> None:
    with database.owner_engine.connect() as conn:
        rows = conn.execute(
            text(
                """
                SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid
                         AND p.polname = 'tenant_isolation') AS policies
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
                  AND (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                               AND a.attname = 'subscription_id' AND NOT a.attisdropped)
                       OR c.relname = 'subscriptions')
                """
            )
        ).all()
    assert len(rows) >= 30
    unprotected = [r.relname for r in rows if not (r.relrowsecurity and r.relforcerowsecurity)]
    without_policy = [r.relname for r in rows if r.policies != 1]
    assert unprotected == []
    assert without_policy == []


def test_no_tenant_means_no_rows(database: Database, two_tenants: object) -> None:
    with database.engine.connect() as conn:
        for table in ("users", "subscriptions", "refresh_tokens", "api_keys", "workspaces"):
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0, table
        # plans and features are global: readable without a tenant
        assert conn.execute(text("SELECT count(*) FROM subscription_plans")).scalar_one() == 3


def test_tenant_a_cannot_read_update_or_insert_b(
    database: Database, two_tenants: tuple[dict[str, object], dict[str, object]]
) -> None:
    a, b = two_tenants
    sub_a, user_a = _ids(a)
    sub_b, user_b = _ids(b)
    with database.engine.connect() as conn, conn.begin():
        _tenant(conn, sub_a)
        visible = {str(r[0]) for r in conn.execute(text("SELECT subscription_id FROM users"))}
        assert visible == {sub_a}
        assert (
            conn.execute(
                text("SELECT count(*) FROM users WHERE id = :id"), {"id": user_b}
            ).scalar_one()
            == 0
        )
        assert (
            conn.execute(
                text("SELECT count(*) FROM subscriptions WHERE id = :id"), {"id": sub_b}
            ).scalar_one()
            == 0
        )
        updated = conn.execute(
            text("UPDATE users SET full_name = 'pwned' WHERE id = :id"), {"id": user_b}
        )
        assert updated.rowcount == 0
        deleted = conn.execute(text("DELETE FROM subscriptions WHERE id = :id"), {"id": sub_b})
        assert deleted.rowcount == 0

    # inserting a row into B while acting as A is refused by the policy's WITH CHECK
    with database.engine.connect() as conn, conn.begin():
        _tenant(conn, sub_a)
        with pytest.raises(ProgrammingError, match="row-level security"):
            conn.execute(
                text(
                    "INSERT INTO workspaces (id, subscription_id, workspace_name,"
                    " created_at, updated_at) VALUES (:id, :sub, 'stolen', now(), now())"
                ),
                {"id": str(uuid.uuid4()), "sub": sub_b},
            )
    # moving one's own row into another tenant is refused too
    with database.engine.connect() as conn, conn.begin():
        _tenant(conn, sub_a)
        with pytest.raises(ProgrammingError, match="row-level security"):
            conn.execute(
                text("UPDATE users SET subscription_id = :b WHERE id = :id"),
                {"b": sub_b, "id": user_a},
            )
    # and B's data is untouched
    with database.engine.connect() as conn, conn.begin():
        _tenant(conn, sub_b)
        name = conn.execute(
            text("SELECT full_name FROM users WHERE id = :id"), {"id": user_b}
        ).scalar_one()
        assert name != "pwned"
        assert conn.execute(text("SELECT count(*) FROM subscriptions")).scalar_one() == 1


def test_tenant_setting_does_not_leak_past_the_transaction(
    database: Database, two_tenants: tuple[dict[str, object], dict[str, object]]
) -> None:
    sub_a, _ = _ids(two_tenants[0])
    with database.engine.connect() as conn:
        with conn.begin():
            _tenant(conn, sub_a)
            assert conn.execute(text("SELECT count(*) FROM users")).scalar_one() == 1
        # same pooled connection, next transaction: no tenant, no rows (and no cast error)
        with conn.begin():
            assert conn.execute(text("SELECT count(*) FROM users")).scalar_one() == 0


def test_sessions_reapply_the_tenant_on_each_transaction(
    database: Database, two_tenants: tuple[dict[str, object], dict[str, object]]
) -> None:
    from uzo_api.db.models import User

    sub_a = uuid.UUID(_ids(two_tenants[0])[0])
    with database.session(sub_a) as s:
        assert len(s.query(User).all()) == 1
        s.commit()
        assert len(s.query(User).all()) == 1  # a new transaction, still tenant A
    with database.session() as s:
        assert s.query(User).all() == []


def test_logs_are_append_only_and_partitions_hidden(
    database: Database, two_tenants: tuple[dict[str, object], dict[str, object]]
) -> None:
    sub_a, user_a = _ids(two_tenants[0])
    with database.engine.connect() as conn, conn.begin():
        _tenant(conn, sub_a)
        conn.execute(
            text(
                "INSERT INTO audit_logs (id, created_at, subscription_id, user_id, action,"
                " resource_type, changes, status) VALUES (:id, now(), :sub, :u, 'test',"
                " 'user', '{}', 'success')"
            ),
            {"id": str(uuid.uuid4()), "sub": sub_a, "u": user_a},
        )
        assert conn.execute(text("SELECT count(*) FROM audit_logs")).scalar_one() == 1
    for statement in ("UPDATE audit_logs SET action = 'x'", "DELETE FROM audit_logs"):
        with database.engine.connect() as conn, conn.begin():
            _tenant(conn, sub_a)
            with pytest.raises(ProgrammingError, match="permission denied"):
                conn.execute(text(statement))
    with (
        database.engine.connect() as conn,
        conn.begin(),
        pytest.raises(DBAPIError, match="permission denied"),
    ):
        conn.execute(text("SELECT count(*) FROM audit_logs_default"))


def test_log_partitions_exist_ahead(database: Database) -> None:
    with database.engine.connect() as conn:
        created_again = conn.execute(text("SELECT uzo_ensure_log_partitions(3)")).scalar_one()
        conn.commit()
    assert created_again == 0  # the migration already created them
    with database.owner_engine.connect() as conn:
        parts = conn.execute(
            text(
                "SELECT parent.relname, count(*) FROM pg_inherits i "
                "JOIN pg_class parent ON parent.oid = i.inhparent "
                "JOIN pg_class child ON child.oid = i.inhrelid "
                "WHERE child.relkind = 'r' GROUP BY parent.relname"
            )
        ).all()
    counts = dict(parts)
    for table in ("audit_logs", "execution_logs", "server_logs", "data_change_history"):
        assert counts.get(table, 0) >= 5, (table, counts)  # this month + 3 ahead + default
