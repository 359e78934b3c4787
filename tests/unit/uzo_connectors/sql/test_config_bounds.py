"""Every config of the SQL family and MongoDB: endpoint fields named, every number bounded."""

from __future__ import annotations

from typing import TYPE_CHECKING

import annotated_types
import pytest
from pydantic import ValidationError

from uzo_connectors.duckdb.connector import DuckDBConfig
from uzo_connectors.mongodb.config import MongoDBConfig
from uzo_connectors.mysql.connector import MySqlConfig
from uzo_connectors.postgres.connector import PostgresConfig
from uzo_connectors.sql.generic import SqlAlchemyConfig
from uzo_connectors.sqlite.connector import SqliteConfig

if TYPE_CHECKING:
    from uzo_connectors.base import ConnectorConfig

ENDPOINTS: dict[type[ConnectorConfig], frozenset[str]] = {
    PostgresConfig: frozenset({"host", "port"}),
    MySqlConfig: frozenset({"host", "port"}),
    SqlAlchemyConfig: frozenset({"url"}),
    MongoDBConfig: frozenset({"uri", "host", "port"}),
    SqliteConfig: frozenset({"path"}),
    DuckDBConfig: frozenset({"path"}),
}
VALID: dict[type[ConnectorConfig], dict[str, object]] = {
    PostgresConfig: {"host": "db.example.com"},
    MySqlConfig: {"host": "db.example.com", "database": "d", "user": "u"},
    SqlAlchemyConfig: {"url": "postgresql+psycopg://u@db.example.com/d"},
    MongoDBConfig: {"host": "db.example.com"},
    SqliteConfig: {"path": "a.db"},
    DuckDBConfig: {"path": "a.duckdb"},
}


@pytest.mark.parametrize("model", list(ENDPOINTS))
def test_endpoint_fields(model: type[ConnectorConfig]) -> None:
    assert model.endpoint_fields == ENDPOINTS[model]
    assert model.endpoint_fields <= set(model.model_fields)


def _numeric_fields(model: type[ConnectorConfig]) -> list[str]:
    return [
        name
        for name, info in model.model_fields.items()
        if info.annotation in (int, float, int | None, float | None)
    ]


@pytest.mark.parametrize("model", list(ENDPOINTS))
def test_every_number_has_a_maximum(model: type[ConnectorConfig]) -> None:
    for name in _numeric_fields(model):
        info = model.model_fields[name]
        assert any(isinstance(m, annotated_types.Le | annotated_types.Lt) for m in info.metadata), (
            f"{model.__name__}.{name} has no maximum"
        )
        with pytest.raises(ValidationError, match=name):
            model.model_validate({**VALID[model], name: 1e308})
    model.model_validate(VALID[model])
