"""Incremental file reads return a high-water mark and read nothing above it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from uzo_connectors import registry
from uzo_connectors.base import ConnectorContext, Incremental, ReadRequest
from uzo_connectors.ssrf import EndpointPolicy
from uzo_connectors.testing import read_plan

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_mark_is_returned_and_bounds_the_read(tmp_path: Path, fmt: str) -> None:
    table = pa.table({"id": [1, 2, 3, 4], "v": ["a", "b", "c", "d"]})
    folder = tmp_path / "events"
    folder.mkdir()
    if fmt == "parquet":
        pq.write_table(table, folder / "part-0.parquet")
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, folder / "part-0.csv")
    connector = registry.create_connector(
        "file", {"root": str(tmp_path)}, ConnectorContext(endpoint_policy=EndpointPolicy())
    )
    plan = connector.plan_read(ReadRequest(dataset="events", incremental=Incremental("id", 2)))
    assert plan.high_water_mark == 4
    # rows that arrive after planning are above the mark: left for the next read
    late = pa.table({"id": [5], "v": ["e"]})
    if fmt == "parquet":
        pq.write_table(late, folder / "part-1.parquet")
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(late, folder / "part-1.csv")
    assert sorted(read_plan(plan).column("id").to_pylist()) == [3, 4]
    following = connector.plan_read(
        ReadRequest(dataset="events", incremental=Incremental("id", plan.high_water_mark))
    )
    assert following.high_water_mark == 5
    assert read_plan(following).column("id").to_pylist() == [5]
    nothing_new = connector.plan_read(
        ReadRequest(dataset="events", incremental=Incremental("id", 5))
    )
    assert nothing_new.high_water_mark is None
    assert read_plan(nothing_new).num_rows == 0
