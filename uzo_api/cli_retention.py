"""``uzo db retention``: drop log partitions past their retention (uzo_api.db.retention)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from uzo_api.cli_output import JsonFlag, Output, UzoCommand

if TYPE_CHECKING:
    from uzo_api.db.retention import Partition


def register(db_app: typer.Typer) -> None:
    db_app.command("retention", cls=UzoCommand)(retention)


def _doc(p: Partition) -> dict[str, object]:
    return {
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
    execution_logs 1 year, audit_logs never (UZO_AUDIT_*_RETENTION_DAYS)."""
    from uzo_api.cli import bootstrap
    from uzo_api.db import retention as policy

    out = Output(as_json, {"dry_run": dry_run, "partitions": [], "rows": 0})
    with out.document_only():
        settings, db = bootstrap()
        try:
            gone = policy.apply(db.owner_engine, settings, dry_run=dry_run)
        finally:
            db.dispose()
    out.emit(
        ok=True,
        dry_run=dry_run,
        partitions=[_doc(p) for p in gone],
        rows=sum(p.rows for p in gone),
    )
    if as_json:
        return
    verb = "would drop" if dry_run else "dropped"
    if not gone:
        print(f"nothing past retention ({verb} no partition)")
        return
    print(f"{'table':<22} {'partition':<34} {'from':<11} {'to':<11} {'rows':>10}")
    for p in gone:
        print(
            f"{p.table:<22} {p.name:<34} {p.lower.date()!s:<11} {p.upper.date()!s:<11} {p.rows:>10}"
        )
    print(f"{verb} {len(gone)} partition(s), {sum(p.rows for p in gone)} row(s)")
