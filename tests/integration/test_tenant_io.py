"""A tenant's workflow cannot read or write outside its roots or reach internal addresses
through any node (issue 13, item 2).

Every registered node type is classified: the ones that read or write (files, the
network) are in :data:`IO_TYPES`, each attacked below under a subscription's connector
context (:func:`confined`: its own root, the default endpoint policy) and under the
locked-down default of a step context that names none; every other type is in
:data:`NO_IO_TYPES` with the reason it does no I/O (the two that could, ``sql`` and
``loop``, are checked too). A node type nobody classified fails
:func:`test_every_node_type_is_classified`.

The internal address is a server on 127.0.0.1 that counts the connections it accepts
(:mod:`tests.integration.tenant_io_support`): a refusal is the count staying at 0; the
positive controls (the root's own files, the operator's context with
``UZO_CONNECTORS_ALLOW_LOOPBACK=true``) show the same nodes do reach what they may.
"""

from __future__ import annotations

import json
import pickle
import sqlite3
import uuid
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.integration.tenant_io_support import (
    ITEMS,
    OWN,
    SECRET,
    Loopback,
    Tenant,
    lay_out,
    outside_files,
    serve_loopback,
)
from tests.unit.uzo_engine.helpers import chain, confined, edge, node, operator_ctx, tenant_ctx
from uzo_connectors.base import ConnectorContext
from uzo_connectors.errors import BlockedEndpointError
from uzo_connectors.settings import ConnectorSettings
from uzo_connectors.ssrf import EndpointPolicy
from uzo_engine.nodes.genai import LlmNode
from uzo_engine.nodes.registry import available_node_types, get_node_type
from uzo_engine.plan import StepContext
from uzo_engine.runtime.actors import plain_context
from uzo_engine.runtime.local import run_workflow
from uzo_engine.validation import validation_errors

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from uzo_engine.runtime.local import RunResult

pytestmark = pytest.mark.integration

OUTSIDE = "outside the directories this subscription may use"
NO_MATCH = "no Parquet file matches"

# node types that do no I/O, and why (a new type must be added here or to IO_TYPES)
NO_IO_TYPES: dict[str, str] = {
    **dict.fromkeys(
        ("values", "filter", "select", "derive", "cast", "fill_null", "sort", "limit"),
        "computes its output from its config and inputs (expressions compile to Polars)",
    ),
    **dict.fromkeys(
        ("distinct", "sample", "aggregate", "join", "union", "pivot", "unpivot", "window"),
        "a Polars plan over its inputs",
    ),
    "router": "control flow over its input",
    "branch": "control flow over its input",
    "sql": "a locked DuckDB: no file, network or extension access (test_sql_reaches_nothing)",
    "loop": "runs its sub-workflow's nodes under the same step context (test_loop_...)",
    "loop_input": "a placeholder for the loop's current item",
}


@pytest.fixture(scope="module")
def loopback_server() -> Iterator[Loopback]:
    yield from serve_loopback()


@pytest.fixture
def server(loopback_server: Loopback) -> Loopback:
    loopback_server.reset()
    return loopback_server


@pytest.fixture
def tenant(tmp_path: Path) -> Tenant:
    return lay_out(tmp_path)


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No UZO_CONNECTORS_* of the surrounding environment; LLM caches start cold."""
    for name in ("ALLOW_LOOPBACK", "ALLOW_PRIVATE", "ALLOWED_HOSTS", "AMBIENT_CREDENTIALS"):
        monkeypatch.delenv(f"UZO_CONNECTORS_{name}", raising=False)
    LlmNode._caches.clear()
    yield
    LlmNode._caches.clear()


def refused(result: RunResult, node_id: str, *words: str) -> str:
    """The run failed in ``node_id`` with an error naming every one of ``words``."""
    assert result.status == "failed", f"{node_id} was not refused"
    error = result.results[node_id].error or ""
    assert result.results[node_id].status == "failed", result.results[node_id]
    for word in words:
        assert word in error, error
    assert str(SECRET) not in error
    return error


def source(path: str, node_id: str = "s") -> dict[str, Any]:
    return node(node_id, "parquet_source", path=path)


# ---------------------------------------------------------------- parquet_source

# (path, expected words): named outside the roots, refused before anything is looked at
READ_ESCAPES = [
    ("{outside}/secret.parquet", OUTSIDE),
    ("/etc/hostname", OUTSIDE),
    ("../outside/secret.parquet", OUTSIDE),
    ("link.parquet", OUTSIDE),  # a file link that leads outside
    ("linkdir/secret.parquet", OUTSIDE),  # through a directory link
    ("linkdir", OUTSIDE),  # the linked directory as a dataset
    ("{outside}", OUTSIDE),
    ("{outside}/*.parquet", OUTSIDE),  # a glob whose fixed part is outside
    ("linkdir/*.parquet", OUTSIDE),
    ("../*/secret.parquet", OUTSIDE),
    # a glob inside the root whose matches lead outside: skipped, so nothing matches
    ("*/../../outside/*.parquet", NO_MATCH),
    ("*/secret.parquet", NO_MATCH),
    ("link*.parquet", NO_MATCH),
    # URLs: Polars would fetch them unchecked (no SSRF guard, no pinning, ambient keys)
    ("{url}/data.parquet", "not URLs"),
    ("file:///etc/hostname", "not URLs"),
    ("s3://bucket/data.parquet", "not URLs"),
]


def _fill(template: str, tenant: Tenant, server: Loopback) -> str:
    return template.format(outside=tenant.outside, url=server.url)


@pytest.mark.parametrize(("template", "words"), READ_ESCAPES, ids=[t for t, _ in READ_ESCAPES])
def test_parquet_source_reads_nothing_outside_the_roots(
    template: str, words: str, tenant: Tenant, server: Loopback
) -> None:
    path = _fill(template, tenant, server)
    refused(run_workflow(chain(source(path)), ctx=tenant_ctx(tenant.root)), "s", words)
    assert server.connections == 0
    # validation reads schemas only through a context given to it, within its roots
    issues = validation_errors(chain(source(path)), connectors=confined(tenant.root))
    assert [(i.code, i.node_id) for i in issues] == [("source_error", "s")]
    assert words in issues[0].message
    assert server.connections == 0


def test_parquet_source_reads_the_roots_own_files(tenant: Tenant) -> None:
    """The positive control: the same node reads inside the root, whichever way it is
    named; a directory or glob skips its entries that lead outside."""
    ctx = tenant_ctx(tenant.root)
    for path in ("own.parquet", str(tenant.root / "own.parquet"), "*.parquet", ".", "./"):
        result = run_workflow(chain(source(path)), ctx=ctx)
        assert result.status == "succeeded", (path, result.error)
        assert result.table("s").equals(OWN), path
    hive = tenant.root / "sales"
    for year in (2023, 2024):
        (hive / f"year={year}").mkdir(parents=True)
        pq.write_table(pa.table({"v": [year]}), hive / f"year={year}" / "part.parquet")
    (hive / "year=2024" / "leak.parquet").symlink_to(tenant.secret)
    result = run_workflow(chain(source("sales")), ctx=ctx)
    assert result.status == "succeeded", result.error
    assert result.table("s").to_pylist() == [{"v": 2023, "year": 2023}, {"v": 2024, "year": 2024}]


def test_a_step_context_that_names_none_allows_no_file(tenant: Tenant) -> None:
    own = str(tenant.root / "own.parquet")
    refused(run_workflow(chain(source(own))), "s", OUTSIDE)
    written = chain(node("v", "values", rows=[{"a": 1}]), node("w", "parquet_sink", path=own))
    refused(run_workflow(written), "w", OUTSIDE)
    assert pq.read_table(own).equals(OWN)  # untouched


def test_validation_reads_no_file_without_a_context(tenant: Tenant) -> None:
    """Without a context (the API saving a workflow, the compiler) a Parquet schema is
    unknown: a missing file is no error, so nothing was opened; with the root's context
    the schema is read, and a filter on a column it lacks is caught."""
    for path in (str(tenant.secret), str(tenant.root / "missing.parquet")):
        doc = chain(source(path), node("f", "filter", condition="nope > 1"))
        assert validation_errors(doc) == []
    doc = chain(source("own.parquet"), node("f", "filter", condition="nope > 1"))
    issues = validation_errors(doc, connectors=confined(tenant.root))
    assert [(i.code, i.node_id, i.column) for i in issues] == [("missing_column", "f", "nope")]


# ---------------------------------------------------------------- parquet_sink

WRITE_ESCAPES = [
    ("{outside}/w.parquet", OUTSIDE),
    ("../outside/w.parquet", OUTSIDE),
    ("linkdir/w.parquet", OUTSIDE),
    ("dangling.parquet", OUTSIDE),  # a dangling link to a file outside
    ("link.parquet", OUTSIDE),  # a link to an existing file outside
    ("{url}/w.parquet", "not URLs"),
    ("s3://bucket/w.parquet", "not URLs"),
]


@pytest.mark.parametrize(("template", "words"), WRITE_ESCAPES, ids=[t for t, _ in WRITE_ESCAPES])
def test_parquet_sink_writes_nothing_outside_the_roots(
    template: str, words: str, tenant: Tenant, server: Loopback
) -> None:
    before = outside_files(tenant)
    doc = chain(
        node("v", "values", rows=[{"a": 1}]),
        node("w", "parquet_sink", path=_fill(template, tenant, server)),
    )
    refused(run_workflow(doc, ctx=tenant_ctx(tenant.root)), "w", words)
    assert outside_files(tenant) == before
    assert not tenant.planted.exists()
    assert pq.read_table(tenant.secret).column("secret").to_pylist() == [SECRET]
    assert server.connections == 0


def test_parquet_sink_writes_inside_the_root(tenant: Tenant) -> None:
    doc = chain(node("v", "values", rows=[{"a": 1}]), node("w", "parquet_sink", path="out.parquet"))
    result = run_workflow(doc, ctx=tenant_ctx(tenant.root))
    assert result.status == "succeeded", result.error
    assert pq.read_table(tenant.root / "out.parquet").to_pylist() == [{"a": 1}]


# ---------------------------------------------------------------- source / sink (connectors)


def _http(server: Loopback) -> dict[str, Any]:
    return {
        "base_url": server.url,
        "resources": [
            {"name": "items", "path": "/items"},
            {"name": "sink", "path": "/sink", "readable": False, "write": {}},
        ],
    }


def _outside_db(tenant: Tenant) -> str:
    path = tenant.outside / "db.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (secret INTEGER)")
        db.execute("INSERT INTO t VALUES (?)", (SECRET,))
    db.close()
    return str(path)


def connector_source(connector: str, config: dict[str, Any], dataset: str) -> dict[str, Any]:
    return node("s", "source", connector=connector, config=config, dataset=dataset)


def test_source_reads_nothing_outside_the_roots_nor_on_loopback(
    tenant: Tenant, server: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the deployment allows loopback, but this subscription's context (built without it)
    # is what the node gets: the environment never reaches a node directly
    monkeypatch.setenv("UZO_CONNECTORS_ALLOW_LOOPBACK", "true")
    ctx = tenant_ctx(tenant.root)
    attacks = [
        (connector_source("file", {"root": str(tenant.outside)}, "secret.parquet"), OUTSIDE),
        (connector_source("file", {"root": "."}, "link.parquet"), "leaves the root"),
        (connector_source("file", {"root": "."}, "../outside/secret.parquet"), "leaves the root"),
        (connector_source("file", {"root": "linkdir"}, "secret.parquet"), OUTSIDE),
        (connector_source("sqlite", {"path": _outside_db(tenant)}, "t"), "outside"),
        (connector_source("http", _http(server), "items"), "loopback"),
        (connector_source("postgres", {"host": "127.0.0.1", "port": server.port}, "t"), "loopback"),
        (connector_source("file", {"root": f"{server.url}/"}, "data.parquet"), "loopback"),
    ]
    for doc, words in attacks:
        refused(run_workflow(chain(doc), ctx=ctx), "s", words)
    assert server.connections == 0
    # positive control: the same source inside the root
    own = run_workflow(chain(connector_source("file", {"root": "."}, "own.parquet")), ctx=ctx)
    assert own.status == "succeeded", own.error
    assert own.table("s").equals(OWN)


def test_sink_writes_nothing_outside_the_roots_nor_on_loopback(
    tenant: Tenant, server: Loopback
) -> None:
    before = outside_files(tenant)
    ctx = tenant_ctx(tenant.root)
    for connector, config, dataset, words in (
        ("file", {"root": str(tenant.outside)}, "w.parquet", OUTSIDE),
        ("file", {"root": "linkdir"}, "w.parquet", OUTSIDE),
        ("file", {"root": "."}, "../outside/w.parquet", "leaves the root"),
        ("sqlite", {"path": str(tenant.outside / "new.sqlite"), "create": True}, "t", "outside"),
        ("http", _http(server), "sink", "loopback"),
    ):
        sink = node("w", "sink", connector=connector, config=config, dataset=dataset)
        doc = chain(node("v", "values", rows=[{"a": 1}]), sink)
        refused(run_workflow(doc, ctx=ctx), "w", words)
    assert outside_files(tenant) == before
    assert server.connections == 0


@pytest.mark.parametrize(
    ("variable", "value"),
    [("UZO_CONNECTORS_ALLOW_LOOPBACK", "true"), ("UZO_CONNECTORS_ALLOWED_HOSTS", "127.0.0.1")],
)
def test_the_deployments_settings_reach_connector_nodes(
    variable: str, value: str, tenant: Tenant, server: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through whoever builds the context: the operator's (the CLI) and a subscription's
    (the API's ``tenant_context``) both carry the deployment's endpoint policy."""
    doc = chain(connector_source("http", _http(server), "items"))
    refused(run_workflow(doc, ctx=operator_ctx()), "s", "loopback")
    assert server.connections == 0
    monkeypatch.setenv(variable, value)
    api_context = ConnectorSettings().tenant_context(str(uuid.uuid4()), tenant.root)
    for ctx in (operator_ctx(), StepContext("api", connectors=api_context)):
        result = run_workflow(doc, ctx=ctx)
        assert result.status == "succeeded", result.error
        assert result.table("s").to_pylist() == ITEMS
    assert server.connections >= 2


def test_allow_private_reaches_the_nodes_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """UZO_CONNECTORS_ALLOW_PRIVATE is in the context the node gets (checked without
    connecting: the tests reach no address but loopback)."""
    assert ConnectorSettings().operator_context().endpoint_policy.allow_private is False
    with pytest.raises(BlockedEndpointError, match="private"):
        operator_ctx().connectors.endpoint_policy.check_host("10.1.2.3")
    monkeypatch.setenv("UZO_CONNECTORS_ALLOW_PRIVATE", "true")
    assert operator_ctx().connectors.endpoint_policy.check_host("10.1.2.3")


# ---------------------------------------------------------------- llm


def llm(base_url: str, **config: Any) -> dict[str, Any]:
    ask = node(
        "ask", "llm", base_url=base_url, api_key="sk-test", model="m", template="hi {a}", **config
    )
    return chain(node("v", "values", rows=[{"a": "x"}]), ask)


def test_llm_reaches_no_internal_endpoint_and_caches_only_inside_the_roots(
    tenant: Tenant, server: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UZO_CONNECTORS_ALLOW_LOOPBACK", "true")  # the node does not read it
    base = f"{server.url}/v1"
    refused(run_workflow(llm(base), ctx=tenant_ctx(tenant.root)), "ask", "loopback")
    refused(run_workflow(llm(base)), "ask", "loopback")  # the locked-down default
    assert server.connections == 0
    # a context that allows loopback still keeps the response cache inside its roots
    loopback_ok = ConnectorContext(
        EndpointPolicy(allow_loopback=True), local_roots=(str(tenant.root),)
    )
    ctx = StepContext("llm", connectors=loopback_ok)
    for cache_dir in (str(tenant.outside / "cache"), "../outside/cache", "linkdir/cache"):
        refused(run_workflow(llm(base, cache_dir=cache_dir), ctx=ctx), "ask", OUTSIDE)
    assert not (tenant.outside / "cache").exists()
    assert server.connections == 0
    # positive controls: the operator's context (from the environment), a cache in the root
    for run_ctx, config in ((operator_ctx(), {}), (ctx, {"cache_dir": "cache"})):
        result = run_workflow(llm(base, **config), ctx=run_ctx)
        assert result.status == "succeeded", result.error
        assert result.table("ask").column("response").to_pylist() == ["HI X"]
    assert server.connections >= 2
    assert (tenant.root / "cache" / "genai-cache.sqlite3").is_file()


# ---------------------------------------------------------------- the node types without I/O


def test_sql_reaches_nothing(tenant: Tenant, server: Loopback) -> None:
    """Not even in the operator's context: refused when validated (the query runs
    ``LIMIT 0`` in the locked DuckDB) and when run."""
    sql = get_node_type("sql")
    for query in (
        f"SELECT * FROM read_parquet('{tenant.secret}')",
        "SELECT * FROM read_csv('/etc/hostname')",
        f"SELECT * FROM read_json('{server.url}/items')",
    ):
        [issue] = validation_errors(chain(node("q", "sql", query=query)))
        assert "not allowed in UZO SQL" in issue.message, issue
        with pytest.raises(PermissionError, match="not allowed in UZO SQL"):
            sql.run(sql.parse_params({"query": query}), {}, operator_ctx())
    assert server.connections == 0


def test_loop_runs_its_sub_workflow_under_the_same_context(tenant: Tenant) -> None:
    def loop(path: str) -> dict[str, Any]:
        sub = {
            "nodes": [node("i", "loop_input"), source(path, "p"), node("u", "union")],
            "edges": [edge("i", "u"), edge("p", "u")],
        }
        body = node("l", "loop", workflow=sub, input_node="i", output_node="u")
        return chain(node("v", "values", rows=[{"v": 0}]), body)

    refused(run_workflow(loop(str(tenant.secret)), ctx=tenant_ctx(tenant.root)), "l", OUTSIDE)
    inside = run_workflow(loop("own.parquet"), ctx=tenant_ctx(tenant.root))
    assert inside.status == "succeeded", inside.error
    assert sorted(inside.table("l").column("v").to_pylist()) == [0, 1, 2]


# ---------------------------------------------------------------- the walk


IO_TESTS: dict[str, list[Callable[..., Any]]] = {
    "parquet_source": [
        test_parquet_source_reads_nothing_outside_the_roots,
        test_a_step_context_that_names_none_allows_no_file,
        test_validation_reads_no_file_without_a_context,
    ],
    "parquet_sink": [
        test_parquet_sink_writes_nothing_outside_the_roots,
        test_a_step_context_that_names_none_allows_no_file,
    ],
    "source": [
        test_source_reads_nothing_outside_the_roots_nor_on_loopback,
        test_the_deployments_settings_reach_connector_nodes,
    ],
    "sink": [test_sink_writes_nothing_outside_the_roots_nor_on_loopback],
    "llm": [test_llm_reaches_no_internal_endpoint_and_caches_only_inside_the_roots],
}
IO_TYPES = frozenset(IO_TESTS)


def test_every_node_type_is_classified() -> None:
    """Each registered node type either reads/writes (and has its attacks above) or is
    declared as doing no I/O: a new type that nobody classified fails here."""
    registered = set(available_node_types())
    unclassified = registered - IO_TYPES - set(NO_IO_TYPES)
    assert not unclassified, f"classify these node types in {__name__}: {sorted(unclassified)}"
    assert not IO_TYPES & set(NO_IO_TYPES)
    assert set(NO_IO_TYPES) | IO_TYPES <= registered, "a classified type is not registered"


# ---------------------------------------------------------------- crossing into actors


def test_a_tenant_step_context_survives_pickling(tenant: Tenant) -> None:
    """The step context crosses into Ray actors pickled (as the runtime ships it, with
    its own ``cancelled``): the copy confines as the original does."""
    settings = ConnectorSettings(allow_loopback=True, allowed_hosts=["db.internal"])
    connectors = settings.tenant_context(str(uuid.uuid4()), tenant.root)
    ctx = plain_context(StepContext("pickled", preview_limit=5, connectors=connectors))
    copy = pickle.loads(pickle.dumps(ctx))
    assert copy.connectors == connectors
    assert copy.connectors.scope() == connectors.scope()
    own = copy.connectors.local_roots[0]  # the subscription's directory, made 0700
    pq.write_table(OWN, f"{own}/own.parquet")
    result = run_workflow(chain(source("own.parquet")), ctx=copy)
    assert result.status == "succeeded", result.error
    assert result.table("s").num_rows == 2
    refused(run_workflow(chain(source(str(tenant.secret))), ctx=copy), "s", OUTSIDE)
    assert copy.connectors.endpoint_policy.check_host("127.0.0.1")


# ---------------------------------------------------------------- the operator's CLI


def test_the_cli_runs_in_the_operators_context(
    tenant: Tenant, server: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``uzo validate`` still reads Parquet schemas and ``uzo run`` reads and writes any
    local path (the operator's own machine); the endpoint policy is the settings'."""
    from uzo_api.cli import app

    runner = CliRunner()
    flow = tenant.root / "flow.json"

    def invoke(*args: str, doc: dict[str, Any]) -> Any:
        flow.write_text(json.dumps(doc))
        return runner.invoke(app, [*args, str(flow)])

    bad = chain(source(str(tenant.secret)), node("f", "filter", condition="nope > 1"))
    checked = invoke("validate", doc=bad)
    assert checked.exit_code == 1
    assert "nope" in checked.stderr
    target = tenant.outside / "copy.parquet"
    copied = chain(source(str(tenant.secret)), node("w", "parquet_sink", path=str(target)))
    ran = invoke("run", "--local", doc=copied)
    assert ran.exit_code == 0, ran.stdout + ran.stderr
    assert pq.read_table(target).column("secret").to_pylist() == [SECRET]
    remote = chain(connector_source("http", _http(server), "items"))
    blocked = invoke("run", "--local", doc=remote)
    assert blocked.exit_code == 1
    assert "loopback" in blocked.stdout + blocked.stderr
    assert server.connections == 0
    monkeypatch.setenv("UZO_CONNECTORS_ALLOW_LOOPBACK", "true")
    reached = invoke("run", "--local", doc=remote)
    assert reached.exit_code == 0, reached.stdout + reached.stderr
    assert server.connections > 0
    # settings that do not validate are a usage error, before anything runs
    monkeypatch.setenv("UZO_CONNECTORS_SHARED_ROOTS", '{"not-a-subscription": []}')
    unusable = invoke("validate", "--json", doc=remote)
    assert unusable.exit_code == 2
    assert json.loads(unusable.stdout)["errors"][0]["code"] == "invalid_settings"
