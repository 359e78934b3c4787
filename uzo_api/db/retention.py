"""Log retention by whole monthly partitions: DETACH + DROP, never row deletes.

Each partitioned log table has a retention period (settings, ``UZO_AUDIT_*``):
``server_logs`` 90 days, ``execution_logs`` one year, ``audit_logs`` forever (user
actions are permanent), ``data_change_history`` forever unless configured. A monthly
partition goes when its *whole* range is older than the cutoff (its upper bound is at or
before now minus the period), so no row younger than the period is ever dropped; the
DEFAULT partition never goes. Run as the owner role (``uzo db retention``).

Why partitions: dropping a month is a catalogue change (no dead tuples, no vacuum, no
index bloat, constant time whatever the rows), where ``DELETE ... WHERE created_at <``
would rewrite the table's pages. ``DETACH ... CONCURRENTLY`` would not block writers, but
PostgreSQL refuses it on a table with a DEFAULT partition, which ours have; a plain
DETACH takes a short exclusive lock on the parent, bounded here by ``lock_timeout``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import text

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from uzo_api.settings import Settings

LOCK_TIMEOUT = "5s"
_PARTITIONS = text(
    r"""
    SELECT c.relname AS name,
           (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                         'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)'))[1]::timestamptz AS lower,
           (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                         'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)'))[2]::timestamptz AS upper
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_class p ON p.oid = i.inhparent
    JOIN pg_namespace n ON n.oid = p.relnamespace
    WHERE n.nspname = 'public' AND p.relname = :parent
    ORDER BY 2 NULLS LAST
    """
)


@dataclass(frozen=True)
class Partition:
    table: str
    name: str
    lower: dt.datetime
    upper: dt.datetime
    rows: int


@dataclass(frozen=True)
class Policy:
    table: str
    days: int | None  # None: kept forever

    def cutoff(self, now: dt.datetime) -> dt.datetime | None:
        return None if self.days is None else now - dt.timedelta(days=self.days)


def policies(settings: Settings) -> list[Policy]:
    audit = settings.audit
    return [
        Policy("server_logs", audit.server_log_retention_days),
        Policy("execution_logs", audit.execution_log_retention_days),
        Policy("data_change_history", audit.change_history_retention_days or None),
        Policy("audit_logs", None),
    ]


def expired(engine: Engine, policy: Policy, now: dt.datetime) -> list[Partition]:
    """The table's partitions whose whole range is before the policy's cutoff."""
    cutoff = policy.cutoff(now)
    if cutoff is None:
        return []
    out = []
    with engine.connect() as conn:
        for name, lower, upper in conn.execute(_PARTITIONS, {"parent": policy.table}).all():
            if lower is None or upper is None or upper > cutoff:
                continue  # the DEFAULT partition, or one holding rows young enough to keep
            rows = conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
            out.append(Partition(policy.table, name, lower, upper, int(rows)))
    return out


def drop(engine: Engine, partition: Partition) -> None:
    """Detach, then drop, one partition: its own short transaction."""
    with engine.begin() as conn:
        conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        conn.execute(text(f'ALTER TABLE "{partition.table}" DETACH PARTITION "{partition.name}"'))
        conn.execute(text(f'DROP TABLE "{partition.name}"'))


def apply(
    engine: Engine, settings: Settings, *, dry_run: bool, now: dt.datetime | None = None
) -> list[Partition]:
    """The partitions past retention, dropped unless ``dry_run``."""
    now = now or dt.datetime.now(dt.UTC)
    gone = [p for policy in policies(settings) for p in expired(engine, policy, now)]
    if not dry_run:
        for partition in gone:
            drop(engine, partition)
    return gone
