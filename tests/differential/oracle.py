"""DuckDB as the oracle: the values (or the error) of SQL expressions over the test table.

``SELECT rid, <e1> AS c0, <e2> AS c1, ... FROM read_parquet(path) ORDER BY rid``: many
expressions per query; a failing batch is split in halves until the failing expressions stand
alone (so each error is the expression's own; after a binder error, each expression is bound
alone first, which is cheap, to set the refused ones apart). A boolean expression is also run
as a filter, ``SELECT rid FROM read_parquet(path) WHERE <e> ORDER BY rid``, one query each.

The session time zone is UTC (it decides how DuckDB shows and extracts parts of
TIMESTAMP WITH TIME ZONE values); everything else is DuckDB's default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb

from tests.differential.data import ROW_ID
from tests.differential.values import duckdb_family, to_python

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

TIME_ZONE = "UTC"


@dataclass
class Outcome:
    """One system's answer for one expression: values (one per row, or the kept row ids of a
    filter) and a type, or an error; ``stage`` tells where an error happened."""

    values: list[Any] | None = None
    type: str | None = None  # the system's own type name
    family: str | None = None
    error: str | None = None
    stage: str | None = None  # UZO: "validation" | "runtime"; DuckDB: "bind" | "runtime"

    @property
    def ok(self) -> bool:
        return self.error is None


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return f"{type(error).__name__}: {text.splitlines()[0]}"


class DuckDBOracle:
    def __init__(self, path: Path, *, batch_size: int = 16) -> None:
        self.source = f"read_parquet('{path}')"
        self.batch_size = batch_size
        self.queries = 0
        self._connect()

    def _connect(self) -> None:
        self.con = duckdb.connect()
        self.con.execute(f"SET TimeZone = '{TIME_ZONE}'")

    def close(self) -> None:
        self.con.close()

    # -------------------------------------------------------------- projections

    def evaluate(self, sqls: Iterable[str]) -> dict[str, Outcome]:
        unique = list(dict.fromkeys(sqls))
        out: dict[str, Outcome] = {}
        for start in range(0, len(unique), self.batch_size):
            self._batch(unique[start : start + self.batch_size], out)
        return out

    def _batch(self, sqls: list[str], out: dict[str, Outcome], *, bound: bool = False) -> None:
        if not sqls:
            return
        try:
            out.update(self._select(sqls))
        except (duckdb.Error, RecursionError, MemoryError) as e:
            if len(sqls) == 1:
                out[sqls[0]] = self._error(e)
                return
            if not bound and getattr(e, "__notes__", None) == ["bind"]:
                # binding alone is cheap: set the expressions DuckDB refuses apart first
                bindable = []
                for sql in sqls:
                    try:
                        self.con.sql(self._query([sql]))
                        bindable.append(sql)
                    except duckdb.Error as error:
                        error.add_note("bind")
                        out[sql] = self._error(error)
                self._batch(bindable, out, bound=True)
                return
            middle = len(sqls) // 2
            self._batch(sqls[:middle], out, bound=bound)
            self._batch(sqls[middle:], out, bound=bound)

    def _query(self, sqls: list[str]) -> str:
        columns = ", ".join(f"({sql}) AS c{i}" for i, sql in enumerate(sqls))
        return f"SELECT {ROW_ID}, {columns} FROM {self.source} ORDER BY {ROW_ID}"

    def _select(self, sqls: list[str]) -> dict[str, Outcome]:
        query = self._query(sqls)
        self.queries += 1
        stage = "bind"
        try:
            rel = self.con.sql(query)
            types = [str(t) for t in rel.types]
            stage = "runtime"
            table = rel.to_arrow_table()
        except duckdb.Error as e:
            e.add_note(stage)
            raise
        results = {}
        for i, sql in enumerate(sqls):
            values = to_python(table.column(i + 1))
            results[sql] = Outcome(values, types[i + 1], duckdb_family(types[i + 1]))
        return results

    def _error(self, error: BaseException) -> Outcome:
        notes = getattr(error, "__notes__", None) or ["runtime"]
        if isinstance(error, (duckdb.FatalException, duckdb.InternalException)):
            self._connect()  # the connection is unusable after a fatal error
        return Outcome(error=_first_line(error), stage=notes[-1])

    # -------------------------------------------------------------- filters

    def filter(self, sqls: Iterable[str]) -> dict[str, Outcome]:
        out: dict[str, Outcome] = {}
        for sql in dict.fromkeys(sqls):
            query = f"SELECT {ROW_ID} FROM {self.source} WHERE {sql} ORDER BY {ROW_ID}"
            self.queries += 1
            stage = "bind"
            try:
                rel = self.con.sql(query)
                stage = "runtime"
                kept = rel.to_arrow_table().column(0).to_pylist()
            except (duckdb.Error, RecursionError, MemoryError) as e:
                e.add_note(stage)
                out[sql] = self._error(e)
                continue
            out[sql] = Outcome(kept, "rows", "rows")
        return out
