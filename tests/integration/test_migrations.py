"""The migrations build exactly the schema the models describe."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from uzo_api.db.models import Base

if TYPE_CHECKING:
    from uzo_api.db.session import Database

# monthly log partitions are created at run time, not described by the models
_PARTITION = re.compile(r"_(p\d{6}|default)\b")


def test_models_and_migrations_agree(database: Database) -> None:
    with database.owner_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    drift = [d for d in diff if not _PARTITION.search(str(d)[:300])]
    assert drift == [], drift
