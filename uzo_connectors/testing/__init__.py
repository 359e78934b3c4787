"""The contract every connector passes: a pytest mixin plus helpers.

The helpers here (sample data, reading a plan, writing through a sink, leak
checks) need no pytest, so this module imports anywhere UZO does. The mixin,
:class:`ConnectorContract`, lives in :mod:`uzo_connectors.testing.contract`
and is re-exported here on first use (that import needs pytest).

Use it by subclassing :class:`ConnectorContract` in a test class named
``Test...`` and overriding the fixtures it asks for::

    class TestMyConnector(ConnectorContract):
        @pytest.fixture
        def connector(self, ...) -> BaseConnector: ...        # ready to use
        @pytest.fixture
        def sample_dataset(self, connector, sample_table) -> str: ...  # holds sample_table
        @pytest.fixture
        def writable_dataset(self) -> str: ...                # does not exist yet
        @pytest.fixture
        def bad_credentials(self) -> BadCredentials | None: ...  # None: no credentials

``sample_table`` defaults to :func:`make_sample_table` (an ``id`` key column,
a string, a float); override it and ``upsert_keys``/``incremental_column`` if
your data differs. Tests for write modes run for exactly the modes the
connector's capabilities claim, and the incremental test runs when
``capabilities.incremental`` is set.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from uzo_connectors.base import (
    BaseConnector,
    ReadPlan,
    ReadRequest,
    WriteMode,
    WriteRequest,
    WriteResult,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from uzo_connectors.testing.contract import ConnectorContract


@dataclass(frozen=True)
class BadCredentials:
    """A connector configured with a wrong secret, and that secret (must never leak)."""

    connector: BaseConnector[Any]
    secret: str


def make_sample_table(rows: int = 10) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(1, rows + 1), pa.int64()),
            "name": pa.array([f"name-{i}" for i in range(1, rows + 1)], pa.string()),
            "amount": pa.array([i * 1.5 for i in range(1, rows + 1)], pa.float64()),
        }
    )


def iter_plan(plan: ReadPlan) -> Iterator[pa.RecordBatch]:
    for task in plan.tasks:
        yield from task.read()


def read_plan(plan: ReadPlan) -> pa.Table:
    """Run every task of ``plan`` in order; every batch must carry ``plan.schema`` exactly."""
    batches = list(iter_plan(plan))
    for batch in batches:
        assert batch.schema.equals(plan.schema), (
            f"batch schema differs from the plan's:\n{batch.schema}\nvs\n{plan.schema}"
        )
    return pa.Table.from_batches(batches, schema=plan.schema)


def read_all(connector: BaseConnector[Any], dataset: str, **request: Any) -> pa.Table:
    return read_plan(connector.plan_read(ReadRequest(dataset=dataset, **request)))


def write_table(
    connector: BaseConnector[Any],
    dataset: str,
    table: pa.Table,
    mode: WriteMode = WriteMode.APPEND,
    keys: tuple[str, ...] = (),
    batch_rows: int = 4,
) -> WriteResult:
    """Write ``table`` through a sink in several batches and commit."""
    sink = connector.open_sink(WriteRequest(dataset, table.schema, mode=mode, keys=keys))
    try:
        for batch in table.to_batches(max_chunksize=batch_rows):
            sink.write(batch)
        return sink.commit()
    except BaseException:
        sink.abort()
        raise


def same_rows(actual: pa.Table, expected: pa.Table, keys: tuple[str, ...] = ("id",)) -> bool:
    """Same rows in expected's columns (cast to expected's types), ignoring order."""
    missing = set(expected.column_names) - set(actual.column_names)
    assert not missing, f"columns missing from what was read: {sorted(missing)}"
    actual = actual.select(expected.column_names).cast(expected.schema)
    order = [(k, "ascending") for k in keys]
    return bool(actual.sort_by(order).to_pylist() == expected.sort_by(order).to_pylist())


def assert_no_secret(exc: BaseException, secret: str) -> None:
    """Neither the error nor anything it chains to mentions ``secret``."""
    seen: BaseException | None = exc
    while seen is not None:
        assert secret not in str(seen), f"the secret leaked into {type(seen).__name__}"
        assert secret not in repr(seen), f"the secret leaked into repr({type(seen).__name__})"
        seen = seen.__cause__ or seen.__context__


def __getattr__(name: str) -> Any:
    """``ConnectorContract`` is imported on first use: it needs pytest, the helpers do not."""
    if name == "ConnectorContract":
        try:
            module = importlib.import_module("uzo_connectors.testing.contract")
        except ImportError as exc:
            if exc.name != "pytest":
                raise
            raise ImportError(
                "uzo_connectors.testing.ConnectorContract is a pytest mixin: install pytest "
                "to use it (the other helpers of uzo_connectors.testing work without it)",
                name="pytest",
            ) from exc
        contract: type[ConnectorContract] = module.ConnectorContract
        return contract
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
