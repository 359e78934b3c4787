"""SQL building blocks the migrations use: roles, tenancy (RLS) and partitions.

Revisions call these with explicit table lists, so a revision keeps meaning the
same thing when the models change later.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alembic import op
from psycopg import sql

if TYPE_CHECKING:
    from collections.abc import Iterable

TENANT_FN = "uzo_current_tenant()"


def create_app_role(role: str, password: str | None) -> None:
    """The login role of the application: no superuser, no BYPASSRLS, owns nothing."""
    _check_ident(role)
    op.execute(
        f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
            CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
          END IF;
        END $$;
        """
    )
    if password is not None:
        # ALTER ROLE takes no bind parameters: quote the literal on the client
        raw = op.get_bind().connection.driver_connection
        statement = sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(password)
        )
        op.execute(statement.as_string(raw))
    op.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    op.execute(
        f"DO $$ BEGIN EXECUTE format('GRANT CONNECT ON DATABASE %I TO {role}', "
        "current_database()); END $$;"
    )


def create_tenant_function() -> None:
    """The tenant of the current transaction, or NULL (then no tenant row is visible)."""
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION {TENANT_FN} RETURNS uuid
        LANGUAGE sql STABLE PARALLEL SAFE AS
        $$ SELECT nullif(current_setting('app.subscription_id', true), '')::uuid $$
        """
    )


def enable_tenant_rls(table: str, column: str = "subscription_id", nullable: bool = False) -> None:
    """FORCE row-level security: rows of other tenants are invisible and unwritable.

    The migrating role (table owner) gets its own policy so that SECURITY DEFINER
    lookups and upkeep can see every row; the application role never does.
    """
    _check_ident(table)
    _check_ident(column)
    check = f"{column} = {TENANT_FN}"
    if nullable:
        check = f"({column} IS NULL OR {column} = {TENANT_FN})"
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {table} "
        f"USING ({column} = {TENANT_FN}) WITH CHECK ({check})"
    )
    op.execute(f"CREATE POLICY owner_all ON {table} TO CURRENT_USER USING (true) WITH CHECK (true)")


def grant_app(role: str, tables: Iterable[str], privileges: str) -> None:
    _check_ident(role)
    for table in tables:
        _check_ident(table)
        op.execute(f"GRANT {privileges} ON {table} TO {role}")


def create_definer_function(role: str, name: str, signature: str, returns: str, body: str) -> None:
    """A SECURITY DEFINER lookup that only the application role may call."""
    _check_ident(role)
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION {name}({signature}) RETURNS {returns}
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
        $$ {body} $$
        """
    )
    arg_types = ", ".join(part.split()[-1] for part in signature.split(",") if part.strip())
    op.execute(f"REVOKE ALL ON FUNCTION {name}({arg_types}) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {name}({arg_types}) TO {role}")


PLATFORM_SCOPE_FN = "uzo_platform_scope()"


def enable_platform_scope(table: str, role: str, command: str = "ALL") -> None:
    """Let a platform admin reach every tenant's rows of ``table`` (ADR 0013).

    A second, permissive policy for the application role only: it holds while
    ``uzo_platform_scope()`` is true, i.e. while the transaction-local setting
    ``app.platform_admin`` names a platform admin of the transaction's own tenant.
    ``command`` narrows it (``SELECT`` for a table a platform admin only reads).
    """
    _check_ident(table)
    _check_ident(role)
    if command not in {"ALL", "SELECT", "INSERT", "UPDATE", "DELETE"}:
        raise ValueError(f"not a policy command: {command!r}")
    using = "" if command == "INSERT" else f" USING ((SELECT {PLATFORM_SCOPE_FN}))"
    check = "" if command in {"SELECT", "DELETE"} else f" WITH CHECK ((SELECT {PLATFORM_SCOPE_FN}))"
    op.execute(f"CREATE POLICY platform_admin ON {table} FOR {command} TO {role}{using}{check}")


def create_partition_function(role: str) -> None:
    """``uzo_ensure_log_partitions(n)`` creates monthly partitions from this month to n ahead.

    Every range-partitioned table in the schema is covered, plus a DEFAULT
    partition so no row is ever refused. Runs as the owner (SECURITY DEFINER),
    so the application can call it without owning the tables.
    """
    _check_ident(role)
    op.execute(
        """
        CREATE OR REPLACE FUNCTION uzo_ensure_log_partitions(months_ahead integer)
        RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = public, pg_temp AS $$
        DECLARE
          parent text;
          month date;
          part text;
          created integer := 0;
        BEGIN
          FOR parent IN
            SELECT c.relname FROM pg_partitioned_table p
            JOIN pg_class c ON c.oid = p.partrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND NOT c.relispartition AND p.partstrat = 'r'
          LOOP
            FOR i IN 0..months_ahead LOOP
              month := (date_trunc('month', now() AT TIME ZONE 'UTC')
                        + make_interval(months => i))::date;
              part := format('%s_p%s', parent, to_char(month, 'YYYYMM'));
              IF to_regclass(part) IS NULL THEN
                EXECUTE format(
                  'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                  part, parent,
                  to_char(month, 'YYYY-MM-DD') || ' 00:00:00+00',
                  to_char(month + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00');
                created := created + 1;
              END IF;
            END LOOP;
            IF to_regclass(parent || '_default') IS NULL THEN
              EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT',
                             parent || '_default', parent);
              created := created + 1;
            END IF;
          END LOOP;
          RETURN created;
        END $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION uzo_ensure_log_partitions(integer) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION uzo_ensure_log_partitions(integer) TO {role}")


def _check_ident(name: str) -> None:
    if not name.replace("_", "").isalnum() or not name[0].isalpha():
        raise ValueError(f"not a plain SQL identifier: {name!r}")
