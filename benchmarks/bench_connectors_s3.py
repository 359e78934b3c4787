"""Parquet from S3 (moto server on loopback): the ``s3`` connector against pyarrow directly.

Writes one Parquet object (~1.5M rows x 6 columns) to a moto S3 server, then
reads it back, in the same run, with:

- ``pyarrow + s3fs``: ``pyarrow.parquet.read_table(key, filesystem=s3fs)``;
- ``pyarrow S3FileSystem``: pyarrow's own C++ S3 client;
- ``uzo s3 connector``: ``plan_read`` + every task's batches into one table
  (what an engine node does, in one process).

Goal: the connector within 1.2x of pyarrow reading the object directly.
Run: ``python -m benchmarks connectors_s3`` (results in benchmarks/results/connectors_s3.json).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    import pyarrow as pa

ROWS = int(os.environ.get("UZO_BENCH_S3_ROWS", "1500000"))
REPEATS = int(os.environ.get("UZO_BENCH_S3_REPEATS", "3"))
RESULTS = Path(__file__).parent / "results" / "connectors_s3.json"
BUCKET = "uzo-bench"
KEY = "bench/data.parquet"


def make_table(rows: int) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(42)
    return pa.table(
        {
            "id": pa.array(np.arange(rows, dtype=np.int64)),
            "customer": pa.array(rng.integers(0, 100_000, rows, dtype=np.int64)),
            "amount": pa.array(rng.random(rows) * 1000),
            "quantity": pa.array(rng.integers(1, 50, rows, dtype=np.int32)),
            "status": pa.array(rng.choice(["new", "paid", "shipped", "returned"], rows)),
            "ts": pa.array(
                np.datetime64("2024-01-01") + rng.integers(0, 10**9, rows).astype("timedelta64[s]")
            ),
        }
    )


def timed(fn: Callable[[], pa.Table], repeats: int) -> tuple[float, list[float], int]:
    times = []
    rows = 0
    for _ in range(repeats):
        start = time.perf_counter()
        table = fn()
        times.append(time.perf_counter() - start)
        rows = table.num_rows
    return statistics.median(times), times, rows


def main() -> None:
    import boto3
    import pyarrow as pa
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq
    import s3fs
    from moto.server import ThreadedMotoServer

    from uzo_connectors.base import ConnectorContext, ReadRequest
    from uzo_connectors.registry import create_connector
    from uzo_connectors.ssrf import EndpointPolicy

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        creds = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
        boto3.client("s3", endpoint_url=endpoint, region_name="us-west-2", **creds).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
        )
        table = make_table(ROWS)
        fs = s3fs.S3FileSystem(
            key="bench", secret="bench", endpoint_url=endpoint,
            client_kwargs={"region_name": "us-west-2"},
        )  # fmt: skip
        with fs.open(f"{BUCKET}/{KEY}", "wb") as fh:
            pq.write_table(table, fh, row_group_size=256 * 1024)
        size = fs.size(f"{BUCKET}/{KEY}")
        arrow_s3 = pafs.S3FileSystem(
            access_key="bench", secret_key="bench", endpoint_override=f"{host}:{port}",
            scheme="http", region="us-west-2",
        )  # fmt: skip
        connector = create_connector(
            "s3",
            {
                "bucket": BUCKET,
                "prefix": "bench",
                "endpoint_url": endpoint,
                "region": "us-west-2",
                "access_key_id": "bench",
                "secret_access_key": "bench",
            },
            ConnectorContext(EndpointPolicy(allow_loopback=True)),
        )

        def direct_s3fs() -> pa.Table:
            return pq.read_table(f"{BUCKET}/{KEY}", filesystem=fs)

        def direct_arrow() -> pa.Table:
            return pq.read_table(f"{BUCKET}/{KEY}", filesystem=arrow_s3)

        def through_connector() -> pa.Table:
            plan = connector.plan_read(ReadRequest("data.parquet", batch_size=256 * 1024))
            batches = [b for task in plan.tasks for b in task.read()]
            return pa.Table.from_batches(batches, schema=plan.schema)

        runs = {
            "pyarrow + s3fs": direct_s3fs,
            "pyarrow S3FileSystem": direct_arrow,
            "uzo s3 connector": through_connector,
        }
        for fn in runs.values():  # warm up clients and connection pools
            fn()
        results: dict[str, Any] = {}
        for name, fn in runs.items():
            median, times, rows = timed(fn, REPEATS)
            assert rows == ROWS, (name, rows)
            results[name] = {"median_s": round(median, 4), "runs_s": [round(t, 4) for t in times]}
    finally:
        server.stop()

    connector_s = results["uzo s3 connector"]["median_s"]
    ratios = {
        "connector_vs_pyarrow_s3fs": round(connector_s / results["pyarrow + s3fs"]["median_s"], 3),
        "connector_vs_pyarrow_s3": round(
            connector_s / results["pyarrow S3FileSystem"]["median_s"], 3
        ),
    }
    print(f"Parquet from moto S3: {ROWS:,} rows x 6 columns, {size / 2**20:.1f} MiB")
    print(f"{'reader':<24} {'median':>9}  runs")
    for name, r in results.items():
        runs_text = ", ".join(f"{t:.3f}" for t in r["runs_s"])
        print(f"{name:<24} {r['median_s']:>8.3f}s  {runs_text}")
    for name, ratio in ratios.items():
        print(f"{name}: {ratio:.2f}x (goal <= 1.2x)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "connectors_s3",
                "rows": ROWS,
                "columns": 6,
                "object_bytes": size,
                "repeats": REPEATS,
                "results": results,
                "ratios": ratios,
                "goal": "connector within 1.2x of pyarrow reading directly",
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
