"""SqlSink.abort() is safe in every state, including when opening the write failed early."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from uzo_connectors.base import WriteMode, WriteRequest
from uzo_connectors.errors import WriteError
from uzo_connectors.sql.sink import SqlSink
from uzo_connectors.testing import make_sample_table

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from sqlalchemy.engine import Engine

SAMPLE = make_sample_table(4)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'abort.db'}")
    yield engine
    engine.dispose()


def _sink(engine: Engine, mode: WriteMode = WriteMode.APPEND) -> SqlSink:
    return SqlSink(engine, WriteRequest("t", SAMPLE.schema, mode=mode), None, "t", str)


def _boom(*_args: Any, **_kwargs: Any) -> Any:
    raise sa.exc.OperationalError("connect", {}, Exception("server went away"))


def test_connect_failure_is_a_write_error(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "connect", _boom)
    with pytest.raises(WriteError, match="server went away"):
        _sink(engine)


def test_begin_failure_is_a_write_error(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sa.engine.Connection, "begin", _boom)
    with pytest.raises(WriteError, match="server went away"):  # was: AttributeError '_trans'
        _sink(engine)


def test_abort_before_the_transaction_started(engine: Engine) -> None:
    sink = SqlSink.__new__(SqlSink)  # as if __init__ failed before connecting
    sink._done = False
    sink._conn = None
    sink._trans = None
    sink._created_table = None
    sink._engine = engine
    sink.abort()
    sink.abort()


def test_abort_after_commit_and_twice(engine: Engine) -> None:
    sink = _sink(engine, WriteMode.FAIL_IF_EXISTS)
    sink.write(SAMPLE.to_batches()[0])
    sink.commit()
    sink.abort()  # no-op after commit
    with pytest.raises(WriteError, match="already exists"):
        _sink(engine, WriteMode.FAIL_IF_EXISTS)  # fails in _prepare, aborts internally
    other = _sink(engine)
    other.write(SAMPLE.to_batches()[0])
    other.abort()
    other.abort()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM t")).scalar() == SAMPLE.num_rows
