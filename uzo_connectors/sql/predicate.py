"""Predicate pushdown, safely: a user's boolean expression, validated and transpiled.

A predicate is ONE SQL boolean expression over the dataset's columns (UZO's
expression dialect, sqlglot's default). It is parsed with sqlglot and refused
unless it is a single expression with no statement, subquery, placeholder or
function sqlglot does not know (``pg_sleep``, ``pg_read_file``, ``xp_cmdshell``
parse as anonymous functions). Column names are resolved against the dataset's
columns (case-insensitively) and re-emitted quoted, and the expression is
rendered in the target database's dialect without comments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from uzo_connectors.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable

# SQLAlchemy dialect name -> sqlglot dialect name
_DIALECTS = {
    "postgresql": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
    "duckdb": "duckdb",
    "mssql": "tsql",
    "oracle": "oracle",
    "snowflake": "snowflake",
    "redshift": "redshift",
    "bigquery": "bigquery",
    "trino": "trino",
    "presto": "presto",
    "databricks": "databricks",
    "hive": "hive",
    "clickhouse": "clickhouse",
}

_FORBIDDEN_NODES: tuple[type[exp.Expr], ...] = (
    exp.Query,  # SELECT / UNION / subqueries
    exp.Subquery,
    exp.Command,
    exp.DML,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.Placeholder,
    exp.Parameter,
    exp.SessionParameter,
    exp.Var,
    exp.Anonymous,  # functions sqlglot does not know
    exp.Star,
    exp.Window,
    exp.AggFunc,
    exp.UDTF,  # table functions
    exp.ReadCSV,  # file readers (DuckDB read_csv / read_parquet)
    exp.ReadParquet,
)


def sqlglot_dialect(sqlalchemy_dialect: str) -> str:
    """The sqlglot dialect for a SQLAlchemy dialect name ("" = sqlglot's generic)."""
    return _DIALECTS.get(sqlalchemy_dialect, "")


def _describe(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return f"unknown function {node.name!r}"
    return f"{type(node).__name__.lower()} ({node.sql()[:60]!r})"


def compile_predicate(predicate: str, columns: Iterable[str], dialect: str) -> str:
    """Validate ``predicate`` and render it for ``dialect`` (a sqlglot dialect name).

    Raises ConfigError naming what was refused.
    """
    if not predicate.strip():
        raise ConfigError("predicate: empty expression")
    try:
        statements = sqlglot.parse(predicate)
    except SqlglotError as exc:
        raise ConfigError(f"predicate: not a valid SQL expression: {exc}") from exc
    except RecursionError:  # the parser recurses per bracket
        raise ConfigError("predicate: nested too deeply") from None
    statements = [s for s in statements if s is not None]
    if len(statements) != 1:
        raise ConfigError("predicate: must be exactly one SQL expression (no ';')")
    tree = statements[0]
    assert tree is not None
    if isinstance(tree, exp.Query | exp.Command | exp.DML | exp.Create | exp.Drop | exp.Alter):
        raise ConfigError("predicate: must be a boolean expression, not a statement")
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            raise ConfigError(f"predicate: {_describe(node)} is not allowed in a predicate")
    by_lower = {c.lower(): c for c in columns}
    for column in list(tree.find_all(exp.Column)):
        actual = by_lower.get(column.name.lower())
        if actual is None or column.table:
            raise ConfigError(
                f"predicate: unknown column {column.sql()!r}"
                f" (columns: {', '.join(sorted(by_lower.values()))})"
            )
        column.replace(exp.column(exp.to_identifier(actual, quoted=True)))
    try:
        return tree.sql(dialect=dialect or None, comments=False)
    except SqlglotError as exc:
        raise ConfigError(f"predicate: cannot be expressed in {dialect or 'SQL'}: {exc}") from exc
