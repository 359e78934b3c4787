"""Copies of identity rows in a dedicated tenant's database.

Identity (the subscription, its users) lives in the control database. A dedicated
tenant's database holds its resources, whose foreign keys point at the subscription and
at users (``subscription_id``, ``created_by``, group members, grants): the rows they
point at are copied there with the same ids, at provisioning and by the services that
change them, in the same request. A copy is an upsert by id, so copying again repairs
one that missed a change. A user's copy carries no password hash: it is never a login.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import object_mapper

from uzo_api.db.models import Subscription, User

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from sqlalchemy import Connection, Table
    from sqlalchemy.orm import Session

#: no argon2 hash verifies against it, so a copied user cannot be signed in with
NO_PASSWORD = "!"
MIRRORED_TABLES: tuple[Table, ...] = (Subscription.__table__, User.__table__)  # type: ignore[assignment]


def mirrored(table: Table, values: Mapping[str, Any]) -> dict[str, Any]:
    """The copy of one row: without credentials, nor the dedicated database's own address."""
    copy = dict(values)
    if table is User.__table__:
        copy["password_hash"] = NO_PASSWORD
    if table is Subscription.__table__:
        copy["dedicated_database_url"] = None
    return copy


def upsert(target: Session | Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert the rows, or overwrite the ones with the same id."""
    if not rows:
        return
    stmt = insert(table).values([mirrored(table, r) for r in rows])
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.id],
        set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name != "id"},
    )
    target.execute(stmt)


def mirror_rows(target: Session, rows: Iterable[Subscription | User]) -> None:
    """Copy ORM rows (flushed in the control session) into ``target``."""
    for row in rows:
        mapper = object_mapper(row)
        values = {attr.columns[0].name: getattr(row, attr.key) for attr in mapper.column_attrs}
        upsert(target, cast("Table", mapper.local_table), [values])
