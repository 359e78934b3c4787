"""The pytest mixin of the connector contract (needs pytest; see :mod:`uzo_connectors.testing`).

Import it as ``from uzo_connectors.testing import ConnectorContract``.
"""

from __future__ import annotations

import pickle
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from uzo_connectors.base import BaseConnector, Incremental, ReadRequest, WriteMode, WriteRequest
from uzo_connectors.errors import ConfigError, ConnectionTestError, ConnectorError
from uzo_connectors.registry import validate_config
from uzo_connectors.testing import (
    BadCredentials,
    assert_no_secret,
    make_sample_table,
    read_all,
    read_plan,
    same_rows,
    write_table,
)


class ConnectorContract:
    """Mix into a ``Test...`` class; override the fixtures below that raise."""

    # ----- fixtures the concrete test class provides -------------------------------------------

    @pytest.fixture
    def connector(self) -> BaseConnector[Any]:
        pytest.fail("the test class must provide a `connector` fixture")

    @pytest.fixture
    def sample_dataset(self) -> str:
        pytest.fail("the test class must provide `sample_dataset` (a dataset holding sample_table)")

    @pytest.fixture
    def writable_dataset(self) -> str:
        pytest.fail("the test class must provide `writable_dataset` (a name not used yet)")

    @pytest.fixture
    def bad_credentials(self) -> BadCredentials | None:
        pytest.fail("the test class must provide `bad_credentials` (None if it has none)")

    @pytest.fixture
    def sample_table(self) -> pa.Table:
        return make_sample_table()

    @pytest.fixture
    def upsert_keys(self) -> tuple[str, ...]:
        return ("id",)

    @pytest.fixture
    def incremental_column(self) -> str:
        return "id"

    # ----- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _require_mode(connector: BaseConnector[Any], mode: WriteMode) -> None:
        caps = connector.capabilities
        if not caps.write or mode not in caps.write_modes:
            pytest.skip(f"{connector.type_key!r} does not claim write mode {mode.value!r}")

    @staticmethod
    def _setup_mode(connector: BaseConnector[Any]) -> WriteMode:
        """A mode that creates or replaces a dataset, among those the connector claims."""
        modes = connector.capabilities.write_modes
        for mode in (WriteMode.OVERWRITE, WriteMode.APPEND, WriteMode.FAIL_IF_EXISTS):
            if mode in modes:
                return mode
        pytest.skip(f"{connector.type_key!r} claims no mode that creates a dataset")

    # ----- the contract ------------------------------------------------------------------------

    def test_connection_ok(self, connector: BaseConnector[Any]) -> None:
        connector.test_connection()

    def test_discover_finds_sample(
        self, connector: BaseConnector[Any], sample_dataset: str, sample_table: pa.Table
    ) -> None:
        if not connector.capabilities.discover:
            pytest.skip(f"{connector.type_key!r} does not claim discover")
        found = {d.name: d for d in connector.discover()}
        assert sample_dataset in found, f"{sample_dataset!r} not in {sorted(found)}"
        schema = found[sample_dataset].schema
        assert schema is not None, "discover() returned no Arrow schema"
        assert set(sample_table.column_names) <= set(schema.names)

    def test_read_everything(
        self, connector: BaseConnector[Any], sample_dataset: str, sample_table: pa.Table
    ) -> None:
        plan = connector.plan_read(ReadRequest(dataset=sample_dataset))
        for task in plan.tasks:
            pickle.dumps(task.read)  # tasks run in Ray workers
        assert same_rows(read_plan(plan), sample_table)

    def test_read_with_limit(
        self, connector: BaseConnector[Any], sample_dataset: str, sample_table: pa.Table
    ) -> None:
        table = read_all(connector, sample_dataset, limit=3)
        assert table.num_rows == min(3, sample_table.num_rows)
        assert read_all(connector, sample_dataset, limit=0).num_rows == 0

    def test_projection(
        self, connector: BaseConnector[Any], sample_dataset: str, sample_table: pa.Table
    ) -> None:
        columns = tuple(reversed(sample_table.column_names[:2]))
        plan = connector.plan_read(ReadRequest(dataset=sample_dataset, columns=columns))
        assert tuple(plan.schema.names) == columns
        table = read_plan(plan)
        assert same_rows(table, sample_table.select(list(columns)), keys=("id",))

    def test_predicate(
        self, connector: BaseConnector[Any], sample_dataset: str, sample_table: pa.Table
    ) -> None:
        if not connector.capabilities.predicate_pushdown:
            pytest.skip(f"{connector.type_key!r} does not claim predicate pushdown")
        table = read_all(connector, sample_dataset, predicate="id > 3 AND id <= 6")
        expected = sample_table.filter((pc.field("id") > 3) & (pc.field("id") <= 6))
        assert same_rows(table, expected)

    def test_incremental(
        self,
        connector: BaseConnector[Any],
        sample_dataset: str,
        sample_table: pa.Table,
        incremental_column: str,
    ) -> None:
        if not connector.capabilities.incremental:
            pytest.skip(f"{connector.type_key!r} does not claim incremental reads")
        values = sorted(sample_table.column(incremental_column).to_pylist())
        after = values[len(values) // 2]
        plan = connector.plan_read(
            ReadRequest(dataset=sample_dataset, incremental=Incremental(incremental_column, after))
        )
        table = read_plan(plan)
        expected = sample_table.filter(pc.field(incremental_column) > after)
        assert table.num_rows == expected.num_rows
        assert same_rows(table, expected)
        if plan.high_water_mark is not None:  # the mark is the last value read
            assert plan.high_water_mark == max(values)
            again = read_all(
                connector,
                sample_dataset,
                incremental=Incremental(incremental_column, plan.high_water_mark),
            )
            assert again.num_rows == 0

    def test_write_append(
        self, connector: BaseConnector[Any], writable_dataset: str, sample_table: pa.Table
    ) -> None:
        self._require_mode(connector, WriteMode.APPEND)
        first = write_table(connector, writable_dataset, sample_table, WriteMode.APPEND)
        assert first.rows_written == sample_table.num_rows
        write_table(connector, writable_dataset, sample_table, WriteMode.APPEND)
        table = read_all(connector, writable_dataset)
        assert table.num_rows == 2 * sample_table.num_rows
        doubled = pa.concat_tables([sample_table, sample_table])
        assert same_rows(table, doubled)

    def test_write_overwrite(
        self, connector: BaseConnector[Any], writable_dataset: str, sample_table: pa.Table
    ) -> None:
        self._require_mode(connector, WriteMode.OVERWRITE)
        write_table(connector, writable_dataset, sample_table, WriteMode.OVERWRITE)
        assert same_rows(read_all(connector, writable_dataset), sample_table)
        head = sample_table.slice(0, 2)
        write_table(connector, writable_dataset, head, WriteMode.OVERWRITE)
        assert same_rows(read_all(connector, writable_dataset), head)

    def test_write_upsert(
        self,
        connector: BaseConnector[Any],
        writable_dataset: str,
        sample_table: pa.Table,
        upsert_keys: tuple[str, ...],
    ) -> None:
        self._require_mode(connector, WriteMode.UPSERT)
        write_table(connector, writable_dataset, sample_table, self._setup_mode(connector))
        changed = sample_table.slice(0, 1).to_pylist()[0]
        new_id = max(sample_table.column("id").to_pylist()) + 1
        changes = pa.Table.from_pylist(
            [{**changed, "name": "changed"}, {**changed, "id": new_id, "name": "new"}],
            schema=sample_table.schema,
        )
        write_table(connector, writable_dataset, changes, WriteMode.UPSERT, keys=upsert_keys)
        rows = {r["id"]: r for r in read_all(connector, writable_dataset).to_pylist()}
        assert len(rows) == sample_table.num_rows + 1
        assert rows[changed["id"]]["name"] == "changed"
        assert rows[new_id]["name"] == "new"

    def test_write_fail_if_exists(
        self, connector: BaseConnector[Any], writable_dataset: str, sample_table: pa.Table
    ) -> None:
        self._require_mode(connector, WriteMode.FAIL_IF_EXISTS)
        write_table(connector, writable_dataset, sample_table, WriteMode.FAIL_IF_EXISTS)
        with pytest.raises(ConnectorError):
            write_table(
                connector, writable_dataset, sample_table.slice(0, 1), WriteMode.FAIL_IF_EXISTS
            )
        assert same_rows(read_all(connector, writable_dataset), sample_table)

    def test_abort_leaves_target_untouched(
        self, connector: BaseConnector[Any], writable_dataset: str, sample_table: pa.Table
    ) -> None:
        caps = connector.capabilities
        if not caps.write or not caps.write_modes:
            pytest.skip(f"{connector.type_key!r} does not claim writes")
        write_table(connector, writable_dataset, sample_table, self._setup_mode(connector))
        before = read_all(connector, writable_dataset)
        other = sample_table.slice(0, 3)
        for mode in caps.write_modes:
            if mode is WriteMode.FAIL_IF_EXISTS:
                continue
            keys = ("id",) if mode is WriteMode.UPSERT else ()
            request = WriteRequest(writable_dataset, other.schema, mode=mode, keys=keys)
            sink = connector.open_sink(request)
            for batch in other.to_batches(max_chunksize=1):
                sink.write(batch)
            sink.abort()
            assert same_rows(read_all(connector, writable_dataset), before), mode

    def test_bad_credentials(self, bad_credentials: BadCredentials | None) -> None:
        if bad_credentials is None:
            pytest.skip("no bad-credentials case: the connector (or its test server) checks none")
        with pytest.raises(ConnectionTestError) as info:
            bad_credentials.connector.test_connection()
        assert_no_secret(info.value, bad_credentials.secret)

    def test_unknown_config_field(self, connector: BaseConnector[Any]) -> None:
        config = {**connector.config.model_dump(), "no_such_field": 1}
        with pytest.raises(ConfigError, match="no_such_field"):
            validate_config(type(connector), config)

    def test_config_repr_hides_secrets(
        self, connector: BaseConnector[Any], bad_credentials: BadCredentials | None
    ) -> None:
        if bad_credentials is None:
            pytest.skip("no bad-credentials case: the connector (or its test server) checks none")
        assert bad_credentials.secret not in repr(bad_credentials.connector.config)
        assert bad_credentials.secret not in str(bad_credentials.connector.config)
