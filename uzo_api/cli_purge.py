"""``uzo db purge``: remove for good what was soft-deleted before the restore window.

Runs as the owner role, across every tenant of the metadata database (RLS gives the
owner its own policy), in one transaction: a workspace, folder, job, workflow or job
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

from uzo_api.cli_output import JsonFlag, Output, UzoCommand

if TYPE_CHECKING:
    from uzo_api.db.session import Database


def register(db_app: typer.Typer) -> None:
    db_app.command("purge", cls=UzoCommand)(purge)


def purge_expired(db: Database, older_than_days: int) -> dict[str, int]:
    """Remove the rows soft-deleted more than ``older_than_days`` ago; counts per type."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from uzo_api.db.models import AuditLog, DeletionLog
    from uzo_api.services.deletions import older_than, remove_rows

    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=older_than_days)
    with Session(db.owner_engine) as s, s.begin():
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


def count_expired(db: Database, older_than_days: int) -> dict[str, int]:
    """What :func:`purge_expired` would remove now (done, counted, rolled back)."""
    from sqlalchemy.orm import Session

    from uzo_api.services.deletions import older_than, remove_rows

    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=older_than_days)
    with Session(db.owner_engine) as s:
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
    from uzo_api.cli import bootstrap

    out = Output(as_json, {"dry_run": dry_run, "older_than_days": None, "removed": {}})
    with out.document_only():
        settings, db = bootstrap()
        days = settings.history.restore_days if older_than_days is None else older_than_days
        try:
            counts = count_expired(db, days) if dry_run else purge_expired(db, days)
        finally:
            db.dispose()
    out.emit(ok=True, older_than_days=days, removed=counts)
    if not as_json:
        verb = "would remove" if dry_run else "removed"
        print(f"deleted more than {days} day(s) ago: {verb}")
        for kind, count in counts.items():
            print(f"  {kind:<12} {count}")
