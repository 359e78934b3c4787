"""``uzo db retention``: drop log partitions past their retention (uzo_api.db.retention)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from uzo_engine.cli.output import JsonFlag, Output, UzoCommand, issue

if TYPE_CHECKING:
    from uzo_api.db.retention import Partition


def register(db_app: typer.Typer) -> None:
    db_app.command("retention", cls=UzoCommand)(retention)


def _doc(p: Partition, database: str) -> dict[str, object]:
    return {
        "database": database,
        "table": p.table,
        "partition": p.name,
        "from": p.lower.isoformat(),
        "to": p.upper.isoformat(),
        "rows": p.rows,
    }


def retention(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be dropped.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Drop whole monthly log partitions past retention: server_logs 90 days,
    execution_logs 1 year, audit_logs never (UZO_AUDIT_*_RETENTION_DAYS), in the shared
    database and in every active dedicated tenant's."""
    from sqlalchemy.exc import DBAPIError

    from uzo_api.cli import bootstrap
    from uzo_api.db import retention as policy
    from uzo_api.services.tenants import dedicated_engines
    from uzo_connectors.credentials import CredentialVault

    out = Output(as_json, {"dry_run": dry_run, "partitions": [], "rows": 0})
    found: list[tuple[str, Partition]] = []
    failed: list[str] = []
    with out.document_only():
        settings, db = bootstrap()
        try:
            found += [
                ("shared", p) for p in policy.apply(db.owner_engine, settings, dry_run=dry_run)
            ]
            vault = CredentialVault(settings.credential_keys())
            for tenant, engine, error in dedicated_engines(settings, db, vault):
                where = f"tenant {tenant.subscription_id}"
                if engine is None:
                    failed.append(f"{where}: retention not applied: {error}")
                    continue
                try:
                    found += [(where, p) for p in policy.apply(engine, settings, dry_run=dry_run)]
                except DBAPIError as exc:
                    failed.append(f"{where}: retention not applied: {exc.orig}")
        finally:
            db.dispose()
    gone = [p for _, p in found]
    documents = [_doc(p, where) for where, p in found]
    for message in failed:
        out.warning(message)
    if failed:
        errors = [issue("tenant_retention_failed", message) for message in failed]
        out.emit(
            dry_run=dry_run, partitions=documents, rows=sum(p.rows for p in gone), errors=errors
        )
        raise typer.Exit(1)
    out.emit(ok=True, dry_run=dry_run, partitions=documents, rows=sum(p.rows for p in gone))
    if as_json:
        return
    verb = "would drop" if dry_run else "dropped"
    if not gone:
        print(f"nothing past retention ({verb} no partition)")
        return
    print(f"{'table':<22} {'partition':<34} {'from':<11} {'to':<11} {'rows':>10}  database")
    for where, p in found:
        print(
            f"{p.table:<22} {p.name:<34} {p.lower.date()!s:<11} {p.upper.date()!s:<11} "
            f"{p.rows:>10}  {where}"
        )
    print(f"{verb} {len(gone)} partition(s), {sum(p.rows for p in gone)} row(s)")
