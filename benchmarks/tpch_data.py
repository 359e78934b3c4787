"""TPC-H data and reference answers for the TPC-H example workflows.

- :func:`ensure_data` writes TPC-H tables as Parquet with ``tpchgen-cli``: those the
  examples read, or any of the eight (``ALL_TABLES``); cached, the tables a directory
  already holds at that scale factor are kept and only the missing ones generated.
- :func:`load_workflow` reads ``examples/tpch_q<N>.json`` and points its
  ``parquet_source`` nodes at a data directory (the files say ``data/tpch/...``,
  relative to the current directory); :func:`operator_context` is the step context
  they run in, the operator's, as ``uzo run`` gives it.
- Reference answers for Q1, Q3, Q6 and Q10: DuckDB SQL (the standard TPC-H text with
  the default substitution parameters), hand-written Polars lazy code and pandas code.
- :func:`assert_same_answer` compares two answers (float tolerance; ties at a LIMIT
  are allowed to differ in which rows they keep).

Generate the data for the examples with ``python -m benchmarks.tpch_data [--scale 0.1]``
(``--all``: all eight tables; ``--tables part,supplier``: those named).

The workflows cast TPC-H's DECIMAL(15,2) money columns to double before computing
(UZO expressions now keep SQL's decimal scales, ``decimal * decimal`` has the sum of
the scales, so the casts are a speed choice, not a correctness one). The Polars and
pandas references do the same; DuckDB's reference runs the untouched SQL on the
decimals, so the comparison also checks the casts lose nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl
import polars.testing
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import pandas as pd

    from uzo_engine.plan import StepContext

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
DEFAULT_DATA_DIR = Path("data/tpch")  # relative to the current directory, as in the examples
QUERIES = ("q1", "q3", "q6", "q10")
TABLES = ("lineitem", "orders", "customer", "nation")  # what the example workflows read
#: every TPC-H table (``python -m benchmarks.tpch_data --all``), largest first
ALL_TABLES = (*TABLES, "partsupp", "part", "supplier", "region")
_MARKER = ".uzo-tpch.json"

# ---------------------------------------------------------------- data


def _tpchgen() -> str:
    found = shutil.which("tpchgen-cli") or str(Path(sys.executable).with_name("tpchgen-cli"))
    if not Path(found).exists():
        raise FileNotFoundError("tpchgen-cli not found (it is a dev dependency: `uv sync`)")
    return found


def ensure_data(directory: str | Path, scale: float = 0.1, tables: Sequence[str] = TABLES) -> Path:
    """TPC-H ``tables`` (default: ``TABLES``, those the examples read; ``ALL_TABLES`` for
    all eight) at ``scale`` as ``directory/<table>.parquet``. Cached: the tables already
    there at that scale are kept, only the missing ones are generated."""
    unknown = [t for t in tables if t not in ALL_TABLES]
    if unknown:
        raise ValueError(
            f"not TPC-H tables: {', '.join(unknown)} (tables: {', '.join(ALL_TABLES)})"
        )
    out = Path(directory)
    marker = out / _MARKER
    have: set[str] = set()
    if marker.exists():
        meta = json.loads(marker.read_text())
        if meta.get("scale") == scale:
            have = {t for t in meta.get("tables", TABLES) if (out / f"{t}.parquet").exists()}
    missing = [t for t in ALL_TABLES if t in tables and t not in have]
    if not missing:
        return out
    out.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    subprocess.run(
        [
            _tpchgen(),
            "parquet",
            "-s",
            f"{scale:g}",
            f"--tables={','.join(missing)}",
            f"--output-dir={out}",
        ],
        check=True,
        capture_output=True,
    )
    done = [t for t in ALL_TABLES if t in have or t in missing]
    marker.write_text(json.dumps({"scale": scale, "tables": done}))
    return out


# ---------------------------------------------------------------- workflows


def workflow_path(query: str) -> Path:
    return EXAMPLES_DIR / f"tpch_{query}.json"


def load_workflow(query: str, data_dir: str | Path | None = None) -> dict[str, Any]:
    """The example workflow of ``query``; with ``data_dir``, its sources read from there."""
    doc: dict[str, Any] = json.loads(workflow_path(query).read_text())
    if data_dir is not None:
        for node in doc["nodes"]:
            config = node["data"]["config"]
            if node["data"]["nodeType"] == "parquet_source":
                name = Path(config["path"]).name
                config["path"] = str(Path(data_dir).resolve() / name)
    return doc


def operator_context(execution_id: str, **fields: Any) -> StepContext:
    """A step context with the operator's connector context (the ``UZO_CONNECTORS_*``
    settings, no local-root limit), as ``uzo run`` runs a workflow: without one, a run
    may read no local file."""
    from uzo_connectors.settings import ConnectorSettings
    from uzo_engine.plan import StepContext

    connectors = ConnectorSettings().operator_context()
    return StepContext(execution_id, connectors=connectors, **fields)


# ---------------------------------------------------------------- DuckDB SQL (the reference)

SQL: dict[str, str] = {
    "q1": """
select
    l_returnflag, l_linestatus,
    sum(l_quantity) as sum_qty,
    sum(l_extendedprice) as sum_base_price,
    sum(l_extendedprice * (1 - l_discount)) as sum_disc_price,
    sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) as sum_charge,
    avg(l_quantity) as avg_qty,
    avg(l_extendedprice) as avg_price,
    avg(l_discount) as avg_disc,
    count(*) as count_order
from lineitem
where l_shipdate <= date '1998-12-01' - interval '90' day
group by l_returnflag, l_linestatus
order by l_returnflag, l_linestatus
""",
    "q3": """
select
    l_orderkey,
    sum(l_extendedprice * (1 - l_discount)) as revenue,
    o_orderdate, o_shippriority
from customer, orders, lineitem
where c_mktsegment = 'BUILDING'
    and c_custkey = o_custkey
    and l_orderkey = o_orderkey
    and o_orderdate < date '1995-03-15'
    and l_shipdate > date '1995-03-15'
group by l_orderkey, o_orderdate, o_shippriority
order by revenue desc, o_orderdate
limit 10
""",
    "q6": """
select sum(l_extendedprice * l_discount) as revenue
from lineitem
where l_shipdate >= date '1994-01-01'
    and l_shipdate < date '1994-01-01' + interval '1' year
    and l_discount between 0.06 - 0.01 and 0.06 + 0.01
    and l_quantity < 24
""",
    "q10": """
select
    c_custkey, c_name,
    sum(l_extendedprice * (1 - l_discount)) as revenue,
    c_acctbal, n_name, c_address, c_phone, c_comment
from customer, orders, lineitem, nation
where c_custkey = o_custkey
    and l_orderkey = o_orderkey
    and o_orderdate >= date '1993-10-01'
    and o_orderdate < date '1993-10-01' + interval '3' month
    and l_returnflag = 'R'
    and c_nationkey = n_nationkey
group by c_custkey, c_name, c_acctbal, c_phone, n_name, c_address, c_comment
order by revenue desc
limit 20
""",
}


def duckdb_connection(data_dir: str | Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per TPC-H table over the Parquet files."""
    con = duckdb.connect(":memory:")
    for table in TABLES:
        path = str(Path(data_dir).resolve() / f"{table}.parquet").replace("'", "''")
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{path}')")
    return con


def duckdb_answer(query: str, data_dir: str | Path, con: Any = None) -> pa.Table:
    own = con is None
    con = con or duckdb_connection(data_dir)
    try:
        table: pa.Table = con.sql(SQL[query]).to_arrow_table()
        return table
    finally:
        if own:
            con.close()


# ---------------------------------------------------------------- hand-written Polars


def _scan(
    data_dir: Path, table: str, columns: list[str], money: Sequence[str] = ()
) -> pl.LazyFrame:
    lf = pl.scan_parquet(data_dir / f"{table}.parquet").select(columns)
    return lf.with_columns(pl.col(list(money)).cast(pl.Float64)) if money else lf


def _polars_q1(d: Path) -> pl.LazyFrame:
    money = ["l_quantity", "l_extendedprice", "l_discount", "l_tax"]
    li = _scan(d, "lineitem", ["l_returnflag", "l_linestatus", *money, "l_shipdate"], money)
    return (
        li.filter(pl.col("l_shipdate") <= dt.date(1998, 9, 2))
        .with_columns(disc_price=pl.col("l_extendedprice") * (1 - pl.col("l_discount")))
        .with_columns(charge=pl.col("disc_price") * (1 + pl.col("l_tax")))
        .group_by("l_returnflag", "l_linestatus")
        .agg(
            sum_qty=pl.col("l_quantity").sum(),
            sum_base_price=pl.col("l_extendedprice").sum(),
            sum_disc_price=pl.col("disc_price").sum(),
            sum_charge=pl.col("charge").sum(),
            avg_qty=pl.col("l_quantity").mean(),
            avg_price=pl.col("l_extendedprice").mean(),
            avg_disc=pl.col("l_discount").mean(),
            count_order=pl.len(),
        )
        .sort("l_returnflag", "l_linestatus")
    )


def _polars_q3(d: Path) -> pl.LazyFrame:
    cutoff = dt.date(1995, 3, 15)
    customer = _scan(d, "customer", ["c_custkey", "c_mktsegment"]).filter(
        pl.col("c_mktsegment") == "BUILDING"
    )
    orders = _scan(
        d, "orders", ["o_orderkey", "o_custkey", "o_orderdate", "o_shippriority"]
    ).filter(pl.col("o_orderdate") < cutoff)
    money = ["l_extendedprice", "l_discount"]
    lineitem = (
        _scan(d, "lineitem", ["l_orderkey", *money, "l_shipdate"], money)
        .filter(pl.col("l_shipdate") > cutoff)
        .with_columns(volume=pl.col("l_extendedprice") * (1 - pl.col("l_discount")))
    )
    return (
        lineitem.join(
            orders.join(customer, left_on="o_custkey", right_on="c_custkey"),
            left_on="l_orderkey",
            right_on="o_orderkey",
        )
        .group_by("l_orderkey", "o_orderdate", "o_shippriority")
        .agg(revenue=pl.col("volume").sum())
        .sort(["revenue", "o_orderdate"], descending=[True, False])
        .head(10)
        .select("l_orderkey", "revenue", "o_orderdate", "o_shippriority")
    )


def _polars_q6(d: Path) -> pl.LazyFrame:
    money = ["l_quantity", "l_extendedprice", "l_discount"]
    return (
        _scan(d, "lineitem", [*money, "l_shipdate"], money)
        .filter(
            pl.col("l_shipdate").is_between(dt.date(1994, 1, 1), dt.date(1995, 1, 1), "left"),
            pl.col("l_discount").is_between(0.05, 0.07),
            pl.col("l_quantity") < 24,
        )
        .select(revenue=(pl.col("l_extendedprice") * pl.col("l_discount")).sum())
    )


def _polars_q10(d: Path) -> pl.LazyFrame:
    money = ["l_extendedprice", "l_discount"]
    lineitem = (
        _scan(d, "lineitem", ["l_orderkey", *money, "l_returnflag"], money)
        .filter(pl.col("l_returnflag") == "R")
        .with_columns(volume=pl.col("l_extendedprice") * (1 - pl.col("l_discount")))
    )
    orders = _scan(d, "orders", ["o_orderkey", "o_custkey", "o_orderdate"]).filter(
        pl.col("o_orderdate").is_between(dt.date(1993, 10, 1), dt.date(1994, 1, 1), "left")
    )
    cols = ["c_custkey", "c_name", "c_address", "c_nationkey", "c_phone", "c_acctbal", "c_comment"]
    customer = _scan(d, "customer", cols, ["c_acctbal"])
    nation = _scan(d, "nation", ["n_nationkey", "n_name"])
    keys = ["c_custkey", "c_name", "c_acctbal", "c_phone", "n_name", "c_address", "c_comment"]
    return (
        lineitem.join(orders, left_on="l_orderkey", right_on="o_orderkey")
        .join(customer, left_on="o_custkey", right_on="c_custkey", coalesce=False)
        .join(nation, left_on="c_nationkey", right_on="n_nationkey")
        .group_by(keys)
        .agg(revenue=pl.col("volume").sum())
        .sort("revenue", descending=True)
        .head(20)
        .select(
            "c_custkey", "c_name", "revenue", "c_acctbal", "n_name", "c_address", "c_phone",
            "c_comment",
        )
    )  # fmt: skip


POLARS: dict[str, Callable[[Path], pl.LazyFrame]] = {
    "q1": _polars_q1,
    "q3": _polars_q3,
    "q6": _polars_q6,
    "q10": _polars_q10,
}


def polars_answer(query: str, data_dir: str | Path) -> pl.DataFrame:
    return POLARS[query](Path(data_dir)).collect()


# ---------------------------------------------------------------- pandas


def _read(d: Path, table: str, columns: list[str], money: Sequence[str] = ()) -> pd.DataFrame:
    """A table as pandas, decimals as float64 and dates as datetime64 (vectorised types)."""
    t = pq.read_table(d / f"{table}.parquet", columns=columns)
    if money:
        fields = [
            pa.field(f.name, pa.float64()) if f.name in money else f for f in t.schema
        ]  # cast in Arrow: pandas would turn decimals into Python objects
        t = t.cast(pa.schema(fields))
    return t.to_pandas(date_as_object=False)


def _pandas_q1(d: Path) -> pd.DataFrame:
    money = ["l_quantity", "l_extendedprice", "l_discount", "l_tax"]
    li = _read(d, "lineitem", ["l_returnflag", "l_linestatus", *money, "l_shipdate"], money)
    li = li[li["l_shipdate"] <= dt.datetime(1998, 9, 2)]
    li = li.assign(disc_price=li["l_extendedprice"] * (1 - li["l_discount"]))
    li = li.assign(charge=li["disc_price"] * (1 + li["l_tax"]))
    out = li.groupby(["l_returnflag", "l_linestatus"], as_index=False).agg(
        sum_qty=("l_quantity", "sum"),
        sum_base_price=("l_extendedprice", "sum"),
        sum_disc_price=("disc_price", "sum"),
        sum_charge=("charge", "sum"),
        avg_qty=("l_quantity", "mean"),
        avg_price=("l_extendedprice", "mean"),
        avg_disc=("l_discount", "mean"),
        count_order=("l_quantity", "size"),
    )
    return out.sort_values(["l_returnflag", "l_linestatus"])


def _pandas_q3(d: Path) -> pd.DataFrame:
    cutoff = dt.datetime(1995, 3, 15)
    customer = _read(d, "customer", ["c_custkey", "c_mktsegment"])
    customer = customer[customer["c_mktsegment"] == "BUILDING"]
    orders = _read(d, "orders", ["o_orderkey", "o_custkey", "o_orderdate", "o_shippriority"])
    orders = orders[orders["o_orderdate"] < cutoff]
    money = ["l_extendedprice", "l_discount"]
    li = _read(d, "lineitem", ["l_orderkey", *money, "l_shipdate"], money)
    li = li[li["l_shipdate"] > cutoff]
    li = li.assign(volume=li["l_extendedprice"] * (1 - li["l_discount"]))
    co = orders.merge(customer, left_on="o_custkey", right_on="c_custkey")
    joined = li.merge(co, left_on="l_orderkey", right_on="o_orderkey")
    out = joined.groupby(["l_orderkey", "o_orderdate", "o_shippriority"], as_index=False).agg(
        revenue=("volume", "sum")
    )
    out = out.sort_values(["revenue", "o_orderdate"], ascending=[False, True]).head(10)
    return out[["l_orderkey", "revenue", "o_orderdate", "o_shippriority"]]


def _pandas_q6(d: Path) -> pd.DataFrame:
    import pandas as pd

    money = ["l_quantity", "l_extendedprice", "l_discount"]
    li = _read(d, "lineitem", [*money, "l_shipdate"], money)
    mask = (
        (li["l_shipdate"] >= dt.datetime(1994, 1, 1))
        & (li["l_shipdate"] < dt.datetime(1995, 1, 1))
        & li["l_discount"].between(0.05, 0.07)
        & (li["l_quantity"] < 24)
    )
    sel = li[mask]
    return pd.DataFrame({"revenue": [(sel["l_extendedprice"] * sel["l_discount"]).sum()]})


def _pandas_q10(d: Path) -> pd.DataFrame:
    money = ["l_extendedprice", "l_discount"]
    li = _read(d, "lineitem", ["l_orderkey", *money, "l_returnflag"], money)
    li = li[li["l_returnflag"] == "R"]
    li = li.assign(volume=li["l_extendedprice"] * (1 - li["l_discount"]))
    orders = _read(d, "orders", ["o_orderkey", "o_custkey", "o_orderdate"])
    orders = orders[
        (orders["o_orderdate"] >= dt.datetime(1993, 10, 1))
        & (orders["o_orderdate"] < dt.datetime(1994, 1, 1))
    ]
    cols = ["c_custkey", "c_name", "c_address", "c_nationkey", "c_phone", "c_acctbal", "c_comment"]
    customer = _read(d, "customer", cols, ["c_acctbal"])
    nation = _read(d, "nation", ["n_nationkey", "n_name"])
    joined = (
        li.merge(orders, left_on="l_orderkey", right_on="o_orderkey")
        .merge(customer, left_on="o_custkey", right_on="c_custkey")
        .merge(nation, left_on="c_nationkey", right_on="n_nationkey")
    )
    keys = ["c_custkey", "c_name", "c_acctbal", "c_phone", "n_name", "c_address", "c_comment"]
    out = joined.groupby(keys, as_index=False).agg(revenue=("volume", "sum"))
    out = out.sort_values("revenue", ascending=False).head(20)
    return out[
        ["c_custkey", "c_name", "revenue", "c_acctbal", "n_name", "c_address", "c_phone",
         "c_comment"]
    ]  # fmt: skip


PANDAS: dict[str, Callable[[Path], pd.DataFrame]] = {
    "q1": _pandas_q1,
    "q3": _pandas_q3,
    "q6": _pandas_q6,
    "q10": _pandas_q10,
}


def pandas_answer(query: str, data_dir: str | Path) -> pd.DataFrame:
    return PANDAS[query](Path(data_dir))


# ---------------------------------------------------------------- comparing answers

# The ORDER BY of each query: (column, descending). Rows are compared in this order.
ORDER_BY: dict[str, list[tuple[str, bool]]] = {
    "q1": [("l_returnflag", False), ("l_linestatus", False)],
    "q3": [("revenue", True), ("o_orderdate", False)],
    "q6": [],
    "q10": [("revenue", True)],
}
LIMITED = {"q3", "q10"}


def normalize(answer: pa.Table | pl.DataFrame | pd.DataFrame) -> pl.DataFrame:
    """Comparable types: decimals and floats -> Float64, integers -> Int64, datetimes -> Date."""
    if isinstance(answer, pl.DataFrame):
        df = answer
    elif isinstance(answer, pa.Table):
        df = pl.from_arrow(answer)  # type: ignore[assignment]
    else:
        df = pl.from_pandas(answer.reset_index(drop=True))
    exprs = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if dtype.is_decimal() or dtype.is_float():
            col = col.cast(pl.Float64)
        elif dtype.is_integer():
            col = col.cast(pl.Int64)
        elif isinstance(dtype, pl.Datetime):
            col = col.dt.date()
        elif isinstance(dtype, pl.Categorical | pl.Enum):
            col = col.cast(pl.String)
        exprs.append(col)
    return df.select(exprs)


def assert_same_answer(
    query: str,
    got: pa.Table | pl.DataFrame | pd.DataFrame,
    expected: pa.Table | pl.DataFrame | pd.DataFrame,
    *,
    rel_tol: float = 1e-9,
    abs_tol: float = 1e-6,
) -> None:
    """Raise AssertionError unless ``got`` answers ``query`` like ``expected``.

    Same columns (names and order) and row count; the ORDER BY columns equal row by
    row (so the order and the values that decide a LIMIT are checked); every row equal
    (floats within tolerance), except that rows tied with the last row on the ORDER BY
    columns of a LIMIT query may be different rows (the SQL result is not determined).
    """
    g, e = normalize(got), normalize(expected)
    if g.columns != e.columns:
        raise AssertionError(f"{query}: columns {g.columns} != {e.columns}")
    if g.height != e.height:
        raise AssertionError(f"{query}: {g.height} rows != {e.height}")
    if g.schema != e.schema:
        raise AssertionError(f"{query}: types {g.schema} != {e.schema}")
    keys = [c for c, _ in ORDER_BY[query]]
    tol = {"rel_tol": rel_tol, "abs_tol": abs_tol}
    try:
        if keys:
            pl.testing.assert_frame_equal(g.select(keys), e.select(keys), **tol)
        if query in LIMITED and g.height:
            last = e.select(keys).tail(1).row(0)
            tied = pl.all_horizontal(
                [_close(pl.col(k), v, rel_tol, abs_tol) for k, v in zip(keys, last, strict=True)]
            )
            g, e = g.filter(~tied), e.filter(~tied)
        order = [*keys, *(c for c in g.columns if c not in keys)]
        desc = [*(d for _, d in ORDER_BY[query]), *([False] * (len(order) - len(keys)))]
        pl.testing.assert_frame_equal(
            g.sort(order, descending=desc), e.sort(order, descending=desc), **tol
        )
    except AssertionError as err:
        raise AssertionError(f"{query}: answers differ: {err}") from None


def _close(col: pl.Expr, value: Any, rel_tol: float, abs_tol: float) -> pl.Expr:
    if isinstance(value, float):
        return (col - value).abs() <= max(abs_tol, rel_tol * abs(value))
    return col == value


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.tpch_data",
        description="Generate TPC-H Parquet (tpchgen-cli): by default the tables the example "
        f"workflows read ({', '.join(TABLES)}); --all for all eight.",
    )
    parser.add_argument("--scale", type=float, default=0.1, help="TPC-H scale factor")
    parser.add_argument("--output-dir", default=str(DEFAULT_DATA_DIR), help="default: data/tpch")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--all", action="store_true", help=f"all eight tables ({', '.join(ALL_TABLES)})"
    )
    which.add_argument(
        "--tables",
        metavar="T[,T...]",
        help=f"these tables, comma-separated (of {', '.join(ALL_TABLES)})",
    )
    args = parser.parse_args(argv)
    tables: Sequence[str] = TABLES
    if args.all:
        tables = ALL_TABLES
    elif args.tables:
        tables = [t.strip() for t in args.tables.split(",") if t.strip()]
        unknown = [t for t in tables if t not in ALL_TABLES]
        if unknown:
            parser.error(f"--tables: not TPC-H tables: {', '.join(unknown)}")
    out = ensure_data(args.output_dir, args.scale, tables)
    sys.stdout.write(f"TPC-H SF {args.scale:g} ({', '.join(tables)}) in {out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
