"""The ``file`` connector on the local filesystem: the contract for every format, plus
globs, hive partitions, pushdown, path safety and staging."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from uzo_connectors.base import ConnectorContext, ReadRequest, WriteMode, WriteRequest
from uzo_connectors.errors import ConfigError, DatasetNotFoundError, WriteError
from uzo_connectors.files.connector import FileConnector
from uzo_connectors.files.formats import FileFormat, Writer
from uzo_connectors.registry import create_connector
from uzo_connectors.ssrf import EndpointPolicy
from uzo_connectors.testing import (
    BadCredentials,
    ConnectorContract,
    make_sample_table,
    read_all,
    read_plan,
    same_rows,
    write_table,
)

if TYPE_CHECKING:
    from pathlib import Path

EXTENSIONS = {
    FileFormat.CSV: ".csv",
    FileFormat.TSV: ".tsv",
    FileFormat.JSON: ".json",
    FileFormat.NDJSON: ".ndjson",
    FileFormat.PARQUET: ".parquet",
    FileFormat.IPC: ".feather",
    FileFormat.EXCEL: ".xlsx",
}


def context() -> ConnectorContext:
    return ConnectorContext(endpoint_policy=EndpointPolicy())


def local(root: Path, **config: Any) -> FileConnector:
    connector = create_connector("file", {"root": str(root), **config}, context())
    assert isinstance(connector, FileConnector)
    return connector


def write_file(path: Path, table: pa.Table, fmt: FileFormat) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        writer = Writer(fh, fmt, table.schema)
        for batch in table.to_batches(max_chunksize=3):
            writer.write(batch)
        writer.close()


@pytest.fixture(params=list(EXTENSIONS), ids=[f.value for f in EXTENSIONS])
def fmt(request: pytest.FixtureRequest) -> FileFormat:
    value: FileFormat = request.param
    return value


class TestLocalFileContract(ConnectorContract):
    """Each format as single files (``out/target.<ext>``)."""

    @pytest.fixture
    def connector(self, tmp_path: Path) -> FileConnector:
        return local(tmp_path)

    @pytest.fixture
    def sample_dataset(self, tmp_path: Path, sample_table: pa.Table, fmt: FileFormat) -> str:
        name = "sample" + EXTENSIONS[fmt]
        write_file(tmp_path / name, sample_table, fmt)
        return name

    @pytest.fixture
    def writable_dataset(self, fmt: FileFormat) -> str:
        return "out/target" + EXTENSIONS[fmt]

    @pytest.fixture
    def bad_credentials(self) -> BadCredentials | None:
        return None  # local files have no credentials


class TestLocalDirectoryContract(ConnectorContract):
    """Directory datasets of part files (append adds parts; overwrite swaps the directory)."""

    @pytest.fixture
    def connector(self, tmp_path: Path) -> FileConnector:
        return local(tmp_path, format="parquet")

    @pytest.fixture
    def sample_dataset(self, tmp_path: Path, sample_table: pa.Table) -> str:
        pq.write_table(sample_table.slice(0, 4), tmp_path / "sample" / "part-0.parquet")
        pq.write_table(sample_table.slice(4), tmp_path / "sample" / "part-1.parquet")
        return "sample"

    @pytest.fixture(autouse=True)
    def _sample_dir(self, tmp_path: Path) -> None:
        (tmp_path / "sample").mkdir()

    @pytest.fixture
    def writable_dataset(self) -> str:
        return "out/table"

    @pytest.fixture
    def bad_credentials(self) -> BadCredentials | None:
        return None


def test_hive_partitions_become_columns(tmp_path: Path) -> None:
    table = make_sample_table(6)
    for year in (2023, 2024):
        for region in ("eu", "us"):
            part = tmp_path / "sales" / f"year={year}" / f"region={region}"
            part.mkdir(parents=True)
            pq.write_table(table, part / "data.parquet")
    (tmp_path / "sales" / "_SUCCESS").write_text("")
    connector = local(tmp_path)
    result = read_all(connector, "sales")
    assert result.num_rows == 24
    assert result.schema.field("year").type == pa.int64()
    assert result.schema.field("region").type == pa.string()
    filtered = read_all(connector, "sales", predicate="year = 2024 AND region = 'eu' AND id > 4")
    assert filtered.num_rows == 2
    assert set(filtered.column("year").to_pylist()) == {2024}
    plan = connector.plan_read(ReadRequest("sales", columns=("region", "id")))
    assert plan.schema.names == ["region", "id"]
    assert len(plan.tasks) == 4


def test_hive_partitions_for_csv(tmp_path: Path) -> None:
    for day in ("a", "b"):
        write_file(tmp_path / "logs" / f"day={day}" / "x.csv", make_sample_table(3), FileFormat.CSV)
    result = read_all(local(tmp_path), "logs", predicate="day = 'b'")
    assert result.column("day").to_pylist() == ["b"] * 3


def test_glob_selects_files(tmp_path: Path) -> None:
    for i in range(3):
        write_file(tmp_path / "in" / f"f{i}.csv", make_sample_table(2), FileFormat.CSV)
    write_file(tmp_path / "in" / "other.parquet", make_sample_table(5), FileFormat.PARQUET)
    connector = local(tmp_path)
    assert read_all(connector, "in/f*.csv").num_rows == 6
    assert read_all(connector, "in/*.parquet").num_rows == 5
    with pytest.raises(DatasetNotFoundError):
        read_all(connector, "in/none*.csv")


def test_a_predicate_arrow_cannot_answer_as_duckdb_is_left_to_the_caller(tmp_path: Path) -> None:
    """No second SQL dialect here: what is not pushed down is not evaluated at all
    (the engine's source node filters with its own compiler), and the limit then
    waits for that filter too."""
    write_file(tmp_path / "a.parquet", make_sample_table(12), FileFormat.PARQUET)
    connector = local(tmp_path)
    plan = connector.plan_read(
        ReadRequest("a.parquet", columns=("id",), predicate="name LIKE '%1'", limit=3)
    )
    assert plan.pushed_down == {"projection"}
    assert read_plan(plan).column("id").to_pylist() == list(range(1, 13))
    # the conjuncts Arrow answers exactly are still pushed into the scan
    partial = connector.plan_read(
        ReadRequest("a.parquet", columns=("id",), predicate="id > 9 AND name LIKE '%1'")
    )
    assert "predicate" not in partial.pushed_down
    assert read_plan(partial).column("id").to_pylist() == [10, 11, 12]
    with pytest.raises(ConfigError, match="unknown column"):
        connector.plan_read(ReadRequest("a.parquet", predicate="nope > 1"))


def test_arithmetic_is_not_pushed_down_with_arrows_semantics(tmp_path: Path) -> None:
    """Arrow divides integers as integers (3 / 2 = 1); DuckDB gives 1.5."""
    pq.write_table(pa.table({"x": [1, 2, 3, 4]}), tmp_path / "x.parquet")
    plan = local(tmp_path).plan_read(ReadRequest("x.parquet", predicate="x / 2 = 1"))
    assert "predicate" not in plan.pushed_down
    assert read_plan(plan).num_rows == 4  # unfiltered: the engine applies x / 2 = 1


PUSHED = [
    ("id > 3 AND id <= 6", [4, 5, 6]),
    ("3 < id AND name <> 'name-5' AND id < 7", [4, 6]),
    ("id IN (1, 5, 99) OR name = 'name-2'", [1, 2, 5]),
    ("NOT (id IN (1, 2)) AND id BETWEEN 2 AND 4", [3, 4]),
    ("amount >= 7.5 AND amount < 9", [5]),
    ("amount > 1e300", [7]),  # NaN is greater than every number, as in DuckDB
    ("flag", [1, 3, 5]),
    ("NOT flag", [2, 4, 6]),  # NULL flags are neither
    ("flag IS NULL AND id > 0", [7]),
    ("amount IS NOT NULL AND id = -(-2)", [2]),
]


@pytest.mark.parametrize(("predicate", "ids"), PUSHED)
def test_pushed_predicates_give_duckdbs_rows(
    tmp_path: Path, predicate: str, ids: list[int]
) -> None:
    import duckdb

    table = make_sample_table(7).append_column(
        "flag", pa.array([True, False, True, False, True, False, None])
    )
    amounts = table.column("amount").to_pylist()
    amounts[6] = float("nan")
    table = table.set_column(2, "amount", pa.array(amounts))
    pq.write_table(table, tmp_path / "t.parquet")
    plan = local(tmp_path).plan_read(ReadRequest("t.parquet", predicate=predicate))
    assert "predicate" in plan.pushed_down
    assert sorted(read_plan(plan).column("id").to_pylist()) == ids
    duck = duckdb.connect()
    duck.register("t", table)  # (DuckDB 2.0 compares NaN read from Parquet differently)
    rows = duck.execute(f"SELECT id FROM t WHERE {predicate} ORDER BY id").fetchall()
    assert [row[0] for row in rows] == ids


def test_big_parquet_is_split_by_row_groups(tmp_path: Path) -> None:
    pq.write_table(make_sample_table(1000), tmp_path / "big.parquet", row_group_size=100)
    connector = local(tmp_path)
    plan = connector.plan_read(
        ReadRequest("big.parquet", options={"split_bytes": 1, "bucket_bytes": 1})
    )
    assert len(plan.tasks) > 1
    assert same_rows(read_plan(plan), make_sample_table(1000))


def test_limit_reads_only_what_it_needs(tmp_path: Path) -> None:
    for i in range(3):
        write_file(tmp_path / "d" / f"{i}.parquet", make_sample_table(50), FileFormat.PARQUET)
    plan = local(tmp_path).plan_read(ReadRequest("d", limit=60, batch_size=16))
    assert len(plan.tasks) == 1
    assert read_plan(plan).num_rows == 60


@pytest.mark.parametrize("name", ["../x.csv", "/etc/passwd", "a/../../x.csv", "s3://b/k", "C:/x"])
def test_datasets_cannot_leave_the_root(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError):
        local(tmp_path / "root").plan_read(ReadRequest(name))


def test_symlink_escape_is_refused(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "secret.csv").write_text("a\n1\n")
    (tmp_path / "root" / "link.csv").symlink_to(tmp_path / "secret.csv")
    with pytest.raises(ConfigError, match="leaves the root"):
        local(tmp_path / "root").plan_read(ReadRequest("link.csv"))


def test_relative_root_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="root"):
        create_connector("file", {"root": "relative/dir"}, context()).discover()


def test_relative_root_is_inside_the_subscriptions_directory(tmp_path: Path) -> None:
    own = tmp_path / "tenant"
    (own / "sales").mkdir(parents=True)
    (own / "sales" / "a.csv").write_text("x\n1\n")
    tenant = ConnectorContext(endpoint_policy=EndpointPolicy(), local_roots=(str(own),))
    found = create_connector("file", {"root": "sales"}, tenant).discover()
    assert [d.name for d in found] == ["a.csv"]
    with pytest.raises(ConfigError, match="stay inside"):
        create_connector("file", {"root": "../other"}, tenant)


def test_abort_of_new_target_leaves_nothing(tmp_path: Path) -> None:
    connector = local(tmp_path)
    table = make_sample_table()
    for dataset in ("new.parquet", "newdir"):
        sink = connector.open_sink(WriteRequest(dataset, table.schema, mode=WriteMode.OVERWRITE))
        sink.write(table.to_batches()[0])
        sink.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_fail_if_exists_is_checked_at_start(tmp_path: Path) -> None:
    connector = local(tmp_path)
    table = make_sample_table()
    write_table(connector, "t.csv", table)
    with pytest.raises(WriteError, match="already exists"):
        connector.open_sink(WriteRequest("t.csv", table.schema, mode=WriteMode.FAIL_IF_EXISTS))


def test_upsert_needs_keys(tmp_path: Path) -> None:
    table = make_sample_table()
    with pytest.raises(ConfigError, match="key"):
        local(tmp_path).open_sink(WriteRequest("t.parquet", table.schema, mode=WriteMode.UPSERT))


def test_discover_lists_files_and_directories(tmp_path: Path) -> None:
    write_file(tmp_path / "a.csv", make_sample_table(), FileFormat.CSV)
    write_file(tmp_path / "dir" / "p.parquet", make_sample_table(), FileFormat.PARQUET)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / ".hidden.csv").write_text("a\n1\n")
    found = {d.name: d for d in local(tmp_path).discover()}
    assert sorted(found) == ["a.csv", "dir"]
    assert found["dir"].schema is not None
    assert found["dir"].schema.names == ["id", "name", "amount"]


@pytest.mark.parametrize(
    ("root", "named"),
    [
        ("memory://uzo-test-files", "local absolute path or an http(s) URL"),
        ("s3://bucket/prefix", "'s3' connector"),
        ("gs://bucket", "'gcs' connector"),
        ("abfs://container", "'azure_blob' connector"),
        ("sftp://host/x", "'sftp' connector"),
        ("ftp://127.0.0.1/x", "'ftp' connector"),
        ("zip::file:///etc/passwd", "chained"),
        ("simplecache::http://example.com/x", "chained"),
        ("http://user:pw@example.com/x", "user name or password"),
        ("http://example.com/x?token=1", "query string"),
    ],
)
def test_only_local_and_http_roots_are_accepted(root: str, named: str) -> None:
    """Every other fsspec protocol is refused at validation, naming the connector to use."""
    with pytest.raises(ConfigError, match="root") as info:
        create_connector("file", {"root": root}, context())
    assert named in str(info.value)
    assert "pw@" not in str(info.value)  # the input is never echoed


def test_file_url_root_is_a_local_path(tmp_path: Path) -> None:
    write_file(tmp_path / "a.csv", make_sample_table(3), FileFormat.CSV)
    connector = create_connector("file", {"root": f"file://{tmp_path}"}, context())
    assert connector.config.root == str(tmp_path)
    assert read_all(connector, "a.csv").num_rows == 3


@pytest.mark.parametrize(
    ("root", "options", "refused"),
    [
        ("/data", {"auto_mkdir": True}, "auto_mkdir"),
        ("/data", {"block_size": 10}, "block_size"),
        ("http://example.com/", {"headers": {"Authorization": "x"}}, "headers"),
        ("http://example.com/", {"client_kwargs": {"trust_env": True}}, "proxy"),
        ("http://example.com/", {"proxy": "http://10.0.0.1:3128"}, "proxy"),
        ("http://example.com/", {"endpoint_url": "http://10.0.0.1"}, "endpoint_url"),
        ("http://example.com/", {"block_size": 10**12}, "between"),
        ("http://example.com/", {"get_client": "x"}, "get_client"),
    ],
)
def test_storage_options_are_allow_listed(root: str, options: dict[str, Any], refused: str) -> None:
    with pytest.raises(ConfigError, match="storage_options") as info:
        create_connector("file", {"root": root, "storage_options": options}, context())
    assert refused in str(info.value)


def test_harmless_http_storage_options_pass() -> None:
    connector = create_connector(
        "file",
        {"root": "http://example.com/", "storage_options": {"block_size": "1024"}},
        context(),
    )
    assert connector.config.storage_options == {"block_size": 1024}


@pytest.mark.parametrize("timeout", [0, -1, 301, 1e308, float("inf"), float("nan")])
def test_timeout_is_bounded(timeout: float) -> None:
    with pytest.raises(ConfigError, match="timeout"):
        create_connector("file", {"root": "http://example.com/", "timeout": timeout}, context())


def test_root_is_an_endpoint_field() -> None:
    assert FileConnector.config_model.endpoint_fields == frozenset({"root"})


def test_http_roots_are_read_only() -> None:
    connector = create_connector("file", {"root": "http://example.com/"}, context())
    schema = make_sample_table().schema
    with pytest.raises(ConfigError, match="read-only"):
        connector.open_sink(WriteRequest("x.csv", schema, mode=WriteMode.OVERWRITE))


def test_url_roots_are_checked_against_the_ssrf_policy() -> None:
    from uzo_connectors.errors import BlockedEndpointError

    for root in ("http://169.254.169.254/latest/", "http://127.0.0.1/x", "http://[::1]/x"):
        connector = create_connector("file", {"root": root}, context())
        with pytest.raises(BlockedEndpointError):
            connector.plan_read(ReadRequest("a.csv"))
        with pytest.raises(BlockedEndpointError):
            connector.discover()
