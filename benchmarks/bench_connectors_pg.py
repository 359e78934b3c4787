"""PostgreSQL -> Arrow through the ``postgres`` connector, against pandas.read_sql and raw ADBC.

A pgserver (embedded PostgreSQL 16) is started in a temporary directory and a
table of N rows x 8 columns (int, bigint, 2 floats, 2 texts, timestamp, bool)
is generated server-side with generate_series. Each case runs in its own
subprocess (so peak RSS is that case's alone; psutil samples RSS every 5 ms):

- read: the connector (ADBC fast path), raw ADBC ``fetch_arrow_table``,
  ``pandas.read_sql`` over SQLAlchemy + psycopg;
- write: the connector (new table, one transaction) and raw ADBC ``adbc_ingest``.

``UZO_BENCH_PG_ROWS`` (default 5,000,000) picks N; ``UZO_BENCH_PG_PANDAS=0`` skips pandas.
Results: a table on stdout and ``benchmarks/results/connectors_pg.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "connectors_pg.json"
COLUMNS = 8
REPEAT = 2  # each case (but pandas) runs twice, in fresh processes; the faster run counts

_GENERATE = """
CREATE TABLE bench AS
SELECT i::int AS id,
       (i::bigint * 7919) AS big,
       (i * 0.5)::float8 AS f1,
       random() AS f2,
       'name-' || i AS name,
       md5(i::text) AS code,
       timestamp '2024-01-01' + i * interval '1 second' AS ts,
       (i %% 3 = 0) AS flag
FROM generate_series(1, %d) AS i
"""


class PeakRss:
    """Samples this process's RSS in a thread; ``peak`` is the maximum seen."""

    def __init__(self, interval: float = 0.005) -> None:
        import psutil

        self._proc = psutil.Process()
        self._interval = interval
        self.baseline = self._proc.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def _connector(socket_dir: str) -> Any:
    from uzo_connectors.base import ConnectorContext
    from uzo_connectors.postgres.connector import PostgresConfig, PostgresConnector
    from uzo_connectors.ssrf import EndpointPolicy

    return PostgresConnector(
        PostgresConfig(host=socket_dir),
        ConnectorContext(endpoint_policy=EndpointPolicy.permissive_for_tests()),
    )


def _read_arrow_table(uri: str, socket_dir: str, case: str) -> Any:
    import pyarrow as pa

    if case == "read_connector":
        from uzo_connectors.base import ReadRequest

        connector = _connector(socket_dir)
        plan = connector.plan_read(ReadRequest("bench"))
        batches = [b for task in plan.tasks for b in task.read()]
        connector.close()
        return pa.Table.from_batches(batches, schema=plan.schema)
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(uri) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM bench")
        return cur.fetch_arrow_table()


def run_case(case: str, uri: str, socket_dir: str) -> dict[str, Any]:
    """One measurement, in this (fresh) process."""
    # imports and a first connection happen before the clock starts, in every case alike
    import adbc_driver_postgresql.dbapi
    import pandas
    import pyarrow as pa
    import sqlalchemy

    import uzo_connectors.postgres.connector
    import uzo_connectors.postgres.sink

    del adbc_driver_postgresql, pandas, sqlalchemy, uzo_connectors
    table: Any = None
    if case.startswith("write_"):  # the data to write is read first, outside the measurement
        table = _read_arrow_table(uri, socket_dir, "read_adbc")
    with PeakRss() as rss:
        start = time.perf_counter()
        rows = 0
        if case in ("read_connector", "read_adbc"):
            result = _read_arrow_table(uri, socket_dir, case)
            rows, nbytes = result.num_rows, result.nbytes
        elif case == "read_pandas":
            import pandas as pd
            import sqlalchemy as sa
            from sqlalchemy.engine import make_url

            url = make_url(uri).set(drivername="postgresql+psycopg")
            engine = sa.create_engine(url)
            frame = pd.read_sql("SELECT * FROM bench", engine)
            engine.dispose()
            rows = len(frame)
            nbytes = int(pa.Table.from_pandas(frame).nbytes)
        elif case == "write_connector":
            from uzo_connectors.base import WriteMode, WriteRequest

            connector = _connector(socket_dir)
            target = f"bench_out_connector_{os.getpid()}"
            sink = connector.open_sink(
                WriteRequest(target, table.schema, mode=WriteMode.FAIL_IF_EXISTS)
            )
            for batch in table.to_batches(max_chunksize=262_144):
                sink.write(batch)
            rows = sink.commit().rows_written
            connector.close()
            nbytes = table.nbytes
        elif case == "write_adbc":
            import adbc_driver_postgresql.dbapi as adbc

            with adbc.connect(uri) as conn, conn.cursor() as cur:
                cur.adbc_ingest(f"bench_out_adbc_{os.getpid()}", table, mode="create")
                conn.commit()
            rows, nbytes = table.num_rows, table.nbytes
        else:
            raise ValueError(case)
        seconds = time.perf_counter() - start
    return {
        "case": case,
        "rows": rows,
        "seconds": round(seconds, 3),
        "arrow_bytes": int(nbytes),
        "peak_rss_delta_bytes": int(rss.peak - rss.baseline),
    }


def _in_subprocess(case: str, uri: str, socket_dir: str) -> dict[str, Any]:
    code = (
        "import json, sys; from benchmarks.bench_connectors_pg import run_case; "
        "print(json.dumps(run_case(*sys.argv[1:])))"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code, case, uri, socket_dir],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    import pgserver
    import psycopg
    from sqlalchemy.engine import make_url

    rows = int(os.environ.get("UZO_BENCH_PG_ROWS", "5000000"))
    with_pandas = os.environ.get("UZO_BENCH_PG_PANDAS", "1") != "0"
    data = Path(tempfile.mkdtemp(prefix="uzo-bench-pg-"))
    data.chmod(0o755)
    server = pgserver.get_server(data, cleanup_mode="stop")
    try:
        uri: str = server.get_uri()
        socket_dir = str(make_url(uri).query["host"])
        start = time.perf_counter()
        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS bench")
            conn.execute(_GENERATE % rows)  # type: ignore[arg-type]
            conn.execute("VACUUM ANALYZE bench")
        print(f"generated {rows:,} rows x {COLUMNS} columns in {time.perf_counter() - start:.1f}s")
        cases = ["read_connector", "read_adbc"]
        if with_pandas:
            cases.append("read_pandas")
        cases += ["write_connector", "write_adbc"]
        _in_subprocess("read_adbc", uri, socket_dir)  # warm-up: server caches, page cache
        results = {}
        for case in cases:
            runs = [
                _in_subprocess(case, uri, socket_dir)
                for _ in range(1 if "pandas" in case else REPEAT)
            ]
            best = min(runs, key=lambda r: r["seconds"])
            best["peak_rss_delta_bytes"] = max(r["peak_rss_delta_bytes"] for r in runs)
            best["runs_seconds"] = [r["seconds"] for r in runs]
            results[case] = best
    finally:
        server.cleanup()
        shutil.rmtree(data, ignore_errors=True)

    arrow_bytes = results["read_adbc"]["arrow_bytes"]
    ratios: dict[str, float] = {
        "read_connector_vs_adbc_time": results["read_connector"]["seconds"]
        / results["read_adbc"]["seconds"],
        "read_connector_peak_rss_vs_arrow_size": results["read_connector"]["peak_rss_delta_bytes"]
        / arrow_bytes,
        "write_connector_vs_adbc_time": results["write_connector"]["seconds"]
        / results["write_adbc"]["seconds"],
    }
    if with_pandas:
        ratios["pandas_vs_read_connector_time"] = (
            results["read_pandas"]["seconds"] / results["read_connector"]["seconds"]
        )
    print(f"\nArrow table: {arrow_bytes / 2**20:,.0f} MiB")
    print(f"{'case':<18}{'rows':>12}{'seconds':>10}{'peak RSS +MiB':>16}")
    for r in results.values():
        peak = r["peak_rss_delta_bytes"] / 2**20
        print(f"{r['case']:<18}{r['rows']:>12,}{r['seconds']:>10.2f}{peak:>16,.0f}")
    for name, value in ratios.items():
        print(f"{name}: {value:.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "rows": rows,
                "columns": COLUMNS,
                "arrow_bytes": arrow_bytes,
                "cases": results,
                "ratios": {k: round(v, 3) for k, v in ratios.items()},
                "goals": {
                    "pandas_vs_read_connector_time": ">= 5",
                    "read_connector_vs_adbc_time": "<= 1.3",
                    "read_connector_peak_rss_vs_arrow_size": "< 2",
                },
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
