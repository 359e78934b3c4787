"""Every pagination style returns all records across pages and honours a row limit."""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, Any

import pytest

from tests.integration.connectors_http.helpers import connector, read_all
from tests.integration.connectors_http.server import ITEMS
from uzo_connectors.base import Incremental, ReadRequest
from uzo_connectors.errors import ConnectorError

if TYPE_CHECKING:
    from tests.integration.connectors_http.conftest import LocalServer
    from tests.integration.connectors_http.server import ServerState
    from uzo_connectors.base import ConnectorContext

pytestmark = pytest.mark.integration

RESOURCES: dict[str, dict[str, Any]] = {
    "page": {
        "path": "/items/page",
        "pagination": {"type": "page", "page_size": 10},
    },
    "offset": {
        "path": "/items/offset",
        "records_path": "results",
        "pagination": {"type": "offset", "page_size": 10},
    },
    "cursor": {
        "path": "/items/cursor",
        "records_path": "$.data.items",
        "pagination": {
            "type": "cursor",
            "cursor_path": "meta.next_cursor",
            "size_param": "size",
            "page_size": 10,
        },
    },
    "stripe": {
        "path": "/items/stripe",
        "records_path": "data",
        "pagination": {
            "type": "cursor",
            "cursor_param": "starting_after",
            "cursor_field": "id",
            "has_more_path": "has_more",
            "size_param": "limit",
            "page_size": 10,
        },
    },
    "link": {"path": "/items/link", "pagination": {"type": "link"}},
}


def _connector(context: ConnectorContext, url: str, style: str) -> Any:
    return connector(context, url, resources=[{"name": style, **RESOURCES[style]}])


@pytest.mark.parametrize("style", sorted(RESOURCES))
def test_reads_every_page(
    style: str, http_server: LocalServer, state: ServerState, loopback: ConnectorContext
) -> None:
    conn = _connector(loopback, http_server.url, style)
    state.calls.clear()  # planning sampled the data to infer the schema
    table = read_all(conn, style)
    assert table.column("id").to_pylist() == [i["id"] for i in ITEMS]
    assert table.schema.field("owner").type.num_fields == 2  # nested objects stay structs
    assert state.calls[style.replace("stripe", "stripe")] >= 4  # 35 records, 10 a page


@pytest.mark.parametrize("style", sorted(RESOURCES))
def test_limit_stops_paging_early(
    style: str, http_server: LocalServer, state: ServerState, loopback: ConnectorContext
) -> None:
    conn = _connector(loopback, http_server.url, style)
    plan = conn.plan_read(ReadRequest(dataset=style, limit=12))
    state.calls.clear()
    rows = [r for task in plan.tasks for b in task.read() for r in b.to_pylist()]
    assert [r["id"] for r in rows] == list(range(1, 13))
    assert state.calls[style] == 2  # pages 1 and 2 only


def test_max_pages_bounds_the_walk(http_server: LocalServer, loopback: ConnectorContext) -> None:
    resource = {"name": "page", **RESOURCES["page"], "max_pages": 2}
    conn = connector(loopback, http_server.url, resources=[resource])
    assert read_all(conn, "page").num_rows == 20


def test_read_task_is_picklable_and_projection_applies(
    http_server: LocalServer, loopback: ConnectorContext
) -> None:
    conn = _connector(loopback, http_server.url, "offset")
    plan = conn.plan_read(ReadRequest(dataset="offset", columns=("name", "id"), limit=3))
    task = pickle.loads(pickle.dumps(plan.tasks[0]))
    table = list(task.read())
    assert table[0].schema.names == ["name", "id"]
    assert table[0].to_pylist() == [{"name": f"item-{i}", "id": i} for i in (1, 2, 3)]
    assert plan.pushed_down == {"projection", "limit"}


def test_incremental_sends_the_watermark(
    http_server: LocalServer, state: ServerState, loopback: ConnectorContext
) -> None:
    resource = {
        "name": "inc",
        "path": "/items/incremental",
        "incremental": {"field": "updated_at", "param": "since"},
        "columns": {"id": "int64", "updated_at": "timestamp"},
    }
    conn = connector(loopback, http_server.url, resources=[resource])
    after = "2024-01-25T00:00:00Z"
    table = read_all(conn, "inc", incremental=Incremental(column="updated_at", after=after))
    expected = [i["id"] for i in ITEMS if i["updated_at"] > after]  # since is inclusive server-side
    assert table.column("id").to_pylist() == expected
    assert str(table.schema.field("updated_at").type) == "timestamp[us, tz=UTC]"


def test_flatten_option_and_discover(http_server: LocalServer, loopback: ConnectorContext) -> None:
    resources = [
        {"name": "flat", **RESOURCES["page"], "nested": "flatten", "flatten_separator": "_"},
        {"name": "json", **RESOURCES["page"], "nested": "json"},
    ]
    conn = connector(loopback, http_server.url, resources=resources)
    infos = {i.name: i for i in conn.discover()}
    flat = infos["flat"].schema
    assert flat is not None
    assert {"owner_login", "owner_id"} <= set(flat.names)
    table = read_all(conn, "json", limit=1)
    assert table.column("owner").to_pylist() == ['{"login": "user1", "id": 1}']


def test_path_templates_quote_parameters(
    http_server: LocalServer, state: ServerState, loopback: ConnectorContext
) -> None:
    resource = {"name": "one", "path": "/flaky/{key}", "params": {"key": "a b?x=1"}}
    conn = connector(loopback, http_server.url, resources=[resource])
    assert read_all(conn, "one").num_rows == 2
    assert state.calls["flaky:a b?x=1"] >= 1  # one path segment, not a query string
    traversal = ReadRequest(dataset="one", options={"params": {"key": "../x"}})
    with pytest.raises(ConnectorError, match="%2F"):
        conn.plan_read(traversal)
