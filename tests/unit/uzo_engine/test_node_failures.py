"""A node's failure of any kind fails that node, by name: a Rust panic from Polars (a
BaseException, not an Exception) and an error while profiling a node's output."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pytest

from tests.unit.uzo_engine.helpers import chain, node, values
from uzo_engine.nodes import registry
from uzo_engine.nodes.base import NodeType, Params
from uzo_engine.plan import runners
from uzo_engine.runtime.local import run_workflow

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    import polars as pl

    from uzo_engine.plan import StepContext


SRC = pa.table({"x": [1, 2, 3]})


class PanicException(BaseException):
    """What pyo3 raises for a Rust panic: a BaseException, as in Polars."""


class PanicParams(Params):
    pass


class PanicNode(NodeType[PanicParams]):
    name = "panics"
    Params = PanicParams

    def infer_schema(
        self, params: PanicParams, inputs: Mapping[str, pl.Schema]
    ) -> dict[str, pl.Schema]:
        return {"out": inputs["in"]}

    def run(
        self, params: PanicParams, inputs: Mapping[str, pa.Table], ctx: StepContext
    ) -> dict[str, pa.Table]:
        raise PanicException("called `Option::unwrap()` on a `None` value")


@pytest.fixture(autouse=True)
def panic_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(registry.BUILTIN_NODE_TYPES, "panics", f"{__name__}:PanicNode")
    registry.get_node_type.cache_clear()
    yield
    registry.get_node_type.cache_clear()


def test_a_panic_fails_its_own_node_and_the_run_goes_on() -> None:
    doc = chain(values("src", SRC), node("p", "panics"), node("after", "limit", n=1))
    result = run_workflow(doc)
    assert result.status == "failed"
    assert result.status_of("src") == "succeeded"
    assert result.status_of("p") == "failed"
    assert result.status_of("after") == "upstream_failed"
    assert result.results["p"].error == (
        "node 'p' (panics): PanicException: called `Option::unwrap()` on a `None` value"
    )


def test_a_failure_while_profiling_is_blamed_on_the_profiled_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(table: pa.Table, **_: object) -> dict[str, object]:
        raise ValueError("no statistics for this column")

    monkeypatch.setattr(runners, "profile_table", broken)
    doc = chain(values("src", SRC), node("f", "filter", condition="x > 0"))  # fused into one step
    result = run_workflow(doc)
    assert result.status == "failed"
    assert result.failed_nodes == ["f"]  # the node whose output was profiled, not src
    assert result.results["f"].error == (
        "node 'f' (filter): profiling its output failed: no statistics for this column"
    )
