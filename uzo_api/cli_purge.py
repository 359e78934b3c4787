"""``uzo db purge``: remove for good what was soft-deleted before the restore window.

Runs as the owner role, across every tenant of the metadata database (RLS gives the
owner its own policy), then in each active dedicated tenant's database, one
transaction per database: a workspace, folder, job, workflow or job
package deleted more than ``UZO_HISTORY_RESTORE_DAYS`` ago goes, with what was deleted
under it, the grants on them, their workflows' versions and runs, and the connectors
bound to a removed workspace; their deletion-log entries are marked purged (they stay,
for the record, until the log's own retention removes them), and each gets an audit
row ``<type>.purge`` in its tenant (no user: the operator's command). ``--dry-run``
counts the same rows in the same transaction and rolls it back.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer

from uzo_engine.cli.output import JsonFlag, Output, UzoCommand, issue

if TYPE_CHECKING:
    from sqlalchemy import Engine


def register(db_app: typer.Typer) -> None:
    db_app.command("purge", cls=UzoCommand)(purge)


def purge_expired(engine: Engine, older_than_days: int) -> dict[str, int]:
    """Remove the rows soft-deleted more than ``older_than_days`` ago; counts per type."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from uzo_api.db.models import AuditLog, DeletionLog
    from uzo_api.services.deletions import older_than, remove_rows

    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=older_than_days)
    with Session(engine) as s, s.begin():
        counts = remove_rows(s, older_than(cutoff), by=None)
        # the entries this transaction marked (now() is the transaction's start)
        purged = s.scalars(select(DeletionLog).where(DeletionLog.purged_at == func.now()))
        s.add_all(
            AuditLog(
                subscription_id=log.subscription_id,
                action=f"{log.resource_type}.purge",
                resource_type=log.resource_type,
                resource_id=log.resource_id,
                changes={"deletion_id": str(log.id), "by": "uzo db purge"},
            )
            for log in purged
        )
        return counts


def count_expired(engine: Engine, older_than_days: int) -> dict[str, int]:
    """What :func:`purge_expired` would remove now (done, counted, rolled back)."""
    from sqlalchemy.orm import Session

    from uzo_api.services.deletions import older_than, remove_rows

    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=older_than_days)
    with Session(engine) as s:
        try:
            return remove_rows(s, older_than(cutoff), by=None)
        finally:
            s.rollback()


def purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go, per type; remove nothing.")
    ] = False,
    older_than_days: Annotated[
        int | None,
        typer.Option(
            "--older-than-days",
            min=0,
            help="Deletions older than this many days (default: UZO_HISTORY_RESTORE_DAYS). "
            "Fewer days than the window cut restores short.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Remove for good the rows soft-deleted before the restore window (every tenant)."""
    from sqlalchemy.exc import DBAPIError

    from uzo_api.cli import bootstrap
    from uzo_api.services.tenants import dedicated_engines
    from uzo_connectors.credentials import CredentialVault

    out = Output(as_json, {"dry_run": dry_run, "older_than_days": None, "removed": {}})
    run = count_expired if dry_run else purge_expired
    failed: list[str] = []
    with out.document_only():
        settings, db = bootstrap()
        days = settings.history.restore_days if older_than_days is None else older_than_days
        try:
            counts = run(db.owner_engine, days)
            vault = CredentialVault(settings.credential_keys())
            for tenant, engine, error in dedicated_engines(settings, db, vault):
                if engine is None:
                    failed.append(f"tenant {tenant.subscription_id}: not purged: {error}")
                    continue
                try:
                    more = run(engine, days)
                except DBAPIError as exc:
                    failed.append(f"tenant {tenant.subscription_id}: not purged: {exc.orig}")
                    continue
                for kind, count in more.items():
                    counts[kind] = counts.get(kind, 0) + count
        finally:
            db.dispose()
    for message in failed:
        out.warning(message)
    if failed:
        errors = [issue("tenant_not_purged", message) for message in failed]
        out.emit(older_than_days=days, removed=counts, errors=errors)
        raise typer.Exit(1)
    out.emit(ok=True, older_than_days=days, removed=counts)
    if not as_json:
        verb = "would remove" if dry_run else "removed"
        print(f"deleted more than {days} day(s) ago: {verb}")
        for kind, count in counts.items():
            print(f"  {kind:<12} {count}")
