"""The engine's ``llm`` node against the OpenAI-shaped stub server, on the local executor.

The stub (``connectors_http/server.py``) answers each prompt in upper case, with
word counts as token usage, counts its calls, and fails the next N chat calls with
429 when told to. It runs on loopback, which the SSRF policy allows here through
``UZO_CONNECTORS_ALLOW_LOOPBACK`` (as a deployment would configure it), reaching the node
through the operator's connector context that the runs are given (as ``uzo run`` does).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest
import uvicorn

from tests.integration.connectors_http.server import OPENAI_KEY, ServerState, create_app
from tests.unit.uzo_engine.helpers import chain, node, operator_ctx
from uzo_connectors import settings as connector_settings
from uzo_engine.compiler import compile_workflow
from uzo_engine.lineage import node_lineage
from uzo_engine.nodes.genai import LlmNode
from uzo_engine.runtime.local import run_workflow
from uzo_engine.validation import WorkflowValidationError, validate_workflow

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from uzo_engine.plan import StepContext

pytestmark = pytest.mark.integration

PEOPLE: list[dict[str, Any]] = [
    {"name": "alice", "n": 1},
    {"name": "bob", "n": 2},
    {"name": "carol", "n": 3},
    {"name": "dave", "n": 4},
    {"name": "erin", "n": 5},
]


@pytest.fixture(scope="module")
def stub() -> Iterator[tuple[str, ServerState]]:
    """The stub app under uvicorn on 127.0.0.1 in a thread (as connectors_http/conftest.py)."""
    state = ServerState()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(state), log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="llm-stub", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the stub server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/v1", state
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def state(stub: tuple[str, ServerState]) -> ServerState:
    s = stub[1]
    with s.lock:
        s.calls.clear()
        s.chat_failures = 0
    return s


@pytest.fixture
def base_url(stub: tuple[str, ServerState]) -> str:
    return stub[0]


@pytest.fixture(autouse=True)
def loopback_allowed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("UZO_CONNECTORS_ALLOW_LOOPBACK", "true")
    connector_settings.get_settings.cache_clear()
    LlmNode._caches.clear()  # the process-wide response caches: each test starts cold
    yield
    LlmNode._caches.clear()
    connector_settings.get_settings.cache_clear()


def llm_workflow(
    base_url: str, rows: list[dict[str, Any]] | None = None, **config: Any
) -> dict[str, Any]:
    llm = {
        "base_url": base_url,
        "api_key": OPENAI_KEY,
        "model": "stub-chat",
        "template": "Say {name} ({n})",
        **config,
    }
    return chain(node("people", "values", rows=rows or PEOPLE), node("ask", "llm", **llm))


def run(doc: dict[str, Any], ctx: StepContext | None = None) -> Any:
    """Run as the operator's CLI does (its connector context, from the environment)."""
    return run_workflow(doc, name="llm-test", ctx=ctx or operator_ctx("llm-test"))


def test_answers_in_row_order_with_usage_columns(base_url: str, state: ServerState) -> None:
    doc = llm_workflow(
        base_url,
        output_column="said",
        usage_columns=True,
        batch_size=2,
        max_concurrency=4,
        temperature=0,
        max_tokens=16,
    )
    result = run(doc)
    assert result.status == "succeeded", result.error
    out = result.table("ask")
    assert out.column_names == [
        "name",
        "n",
        "said",
        "said_prompt_tokens",
        "said_completion_tokens",
        "said_total_tokens",
    ]
    assert out["name"].to_pylist() == [p["name"] for p in PEOPLE]
    assert out["said"].to_pylist() == [f"SAY {p['name'].upper()} ({p['n']})" for p in PEOPLE]
    assert out["said_prompt_tokens"].to_pylist() == [3] * 5  # "Say alice (1)": 3 words
    assert out["said_total_tokens"].to_pylist() == [6] * 5
    assert state.calls["chat"] == 5
    node_result = result.results["ask"]
    assert node_result.status == "succeeded"
    assert (node_result.rows_in, node_result.rows_out) == (5, 5)
    assert [c.name for c in node_result.output_schema][-4:] == [
        "said",
        "said_prompt_tokens",
        "said_completion_tokens",
        "said_total_tokens",
    ]
    assert node_result.profile is not None
    assert node_result.profile["row_count"] == 5
    assert node_result.profile["columns"]["said"]["null_count"] == 0


def test_schema_inference_adds_the_string_column(base_url: str) -> None:
    wf = validate_workflow(llm_workflow(base_url, usage_columns=True))
    schemas = wf.nodes["ask"].output_schemas
    assert schemas is not None
    assert dict(schemas["out"]) == {
        "name": pl.String(),
        "n": pl.Int64(),
        "response": pl.String(),
        "response_prompt_tokens": pl.Int64(),
        "response_completion_tokens": pl.Int64(),
        "response_total_tokens": pl.Int64(),
    }
    assert node_lineage(wf.nodes["ask"])["out"]["response"] == (("in", "name"), ("in", "n"))
    assert node_lineage(wf.nodes["ask"])["out"]["name"] == (("in", "name"),)


def test_second_run_is_answered_from_the_cache(base_url: str, state: ServerState) -> None:
    doc = llm_workflow(base_url, batch_size=2)
    first = run(doc)
    assert first.status == "succeeded", first.error
    assert state.calls["chat"] == 5
    second = run(doc)
    assert second.status == "succeeded", second.error
    assert state.calls["chat"] == 5  # no new HTTP call
    assert second.table("ask").equals(first.table("ask"))

    uncached = run(llm_workflow(base_url, batch_size=2, cache=False))
    assert uncached.status == "succeeded", uncached.error
    assert state.calls["chat"] == 10

    changed_params = run(llm_workflow(base_url, batch_size=2, temperature=0.5))
    assert changed_params.status == "succeeded"
    assert state.calls["chat"] == 15  # the params are part of the cache key


def test_identical_prompts_are_sent_once(base_url: str, state: ServerState) -> None:
    rows = [{"name": "same", "n": 1}] * 4 + [{"name": "other", "n": 1}]
    result = run(llm_workflow(base_url, rows=rows, batch_size=10, usage_columns=True))
    assert result.status == "succeeded", result.error
    assert result.table("ask")["response"].to_pylist() == ["SAY SAME (1)"] * 4 + ["SAY OTHER (1)"]
    assert state.calls["chat"] == 2
    # a shared prompt is paid once: tokens are charged to its first row only
    assert result.table("ask")["response_total_tokens"].to_pylist() == [6, 0, 0, 0, 6]


def test_disk_cache_survives_a_new_process_cache(
    base_url: str, state: ServerState, tmp_path: Path
) -> None:
    doc = llm_workflow(base_url, cache_dir=str(tmp_path / "llm-cache"))
    assert run(doc).status == "succeeded"
    assert state.calls["chat"] == 5
    LlmNode._caches.clear()  # as if another process ran it
    again = run(doc)
    assert again.status == "succeeded", again.error
    assert state.calls["chat"] == 5
    assert (tmp_path / "llm-cache").is_dir()


def test_on_error_null_gives_null_answers_and_carries_on(base_url: str, state: ServerState) -> None:
    state.chat_failures = 2  # the stub answers the next two chat calls with 429
    doc = llm_workflow(
        base_url,
        rows=PEOPLE[:3],
        config={"max_attempts": 1},  # (the node sets the attempts: retries + 1)
        retries=0,
        batch_size=1,
        max_concurrency=1,
        on_error="null",
        usage_columns=True,
    )
    result = run(doc)
    assert result.status == "succeeded", result.error
    out = result.table("ask")
    assert out["response"].to_pylist() == [None, None, "SAY CAROL (3)"]
    assert out["response_total_tokens"].to_pylist() == [None, None, 6]
    assert state.calls["chat"] == 3

    # the failed rows were not cached: a second run asks again for them only
    again = run(doc)
    assert again.table("ask")["response"].to_pylist() == [
        "SAY ALICE (1)",
        "SAY BOB (2)",
        "SAY CAROL (3)",
    ]
    assert state.calls["chat"] == 5


def test_on_error_null_with_a_rejecting_endpoint(base_url: str, state: ServerState) -> None:
    result = run(llm_workflow(base_url, api_key="sk-wrong", on_error="null"))
    assert result.status == "succeeded", result.error
    assert result.table("ask")["response"].to_pylist() == [None] * 5
    assert state.calls["chat"] == 0  # the stub refuses the key before counting


def test_on_error_fail_fails_the_node(base_url: str, state: ServerState) -> None:
    state.chat_failures = 1
    doc = llm_workflow(base_url, config={"max_attempts": 1}, retries=0, batch_size=1)
    result = run(doc)
    assert result.status == "failed"
    assert result.status_of("ask") == "failed"
    assert result.error is not None
    assert "'ask'" in result.error
    assert "llm" in result.error
    assert "429" in result.error or "rate limited" in result.error


def test_transient_failures_are_retried(base_url: str, state: ServerState) -> None:
    state.chat_failures = 2
    doc = llm_workflow(base_url, rows=PEOPLE[:1], config={"max_attempts": 1, "backoff_base": 0})
    result = run(doc)
    assert result.status == "succeeded", result.error
    assert result.table("ask")["response"].to_pylist() == ["SAY ALICE (1)"]
    assert state.calls["chat"] == 3  # two 429s, then the answer


def test_saved_connector_config_from_the_context(base_url: str, state: ServerState) -> None:
    doc = chain(
        node("people", "values", rows=PEOPLE[:2]),
        node("ask", "llm", connector_id="conn-1", template="Hi {name}", system="be brief"),
    )
    ctx = operator_ctx(
        execution_id="llm-conn",
        connector_configs={
            "conn-1": {"base_url": base_url, "api_key": OPENAI_KEY, "default_model": "stub-chat"}
        },
    )
    result = run(doc, ctx)
    assert result.status == "succeeded", result.error
    assert result.table("ask")["response"].to_pylist() == ["HI ALICE", "HI BOB"]

    missing = run(doc, operator_ctx(execution_id="llm-no-conn"))
    assert missing.status == "failed"
    assert missing.error is not None
    assert "conn-1" in missing.error


def test_an_inline_endpoint_cannot_redirect_a_saved_connector(
    base_url: str, state: ServerState
) -> None:
    """The saved connector's base_url and key win: a node naming another endpoint next to
    the saved connector's id fails, and no request reaches any server."""
    ctx = operator_ctx(
        execution_id="llm-redirect",
        connector_configs={
            "conn-1": {"base_url": base_url, "api_key": OPENAI_KEY, "default_model": "stub-chat"}
        },
    )
    before = dict(state.calls)
    for override in (
        {"base_url": base_url + "/elsewhere"},
        {"config": {"base_url": "http://127.0.0.1:9"}},
    ):
        doc = chain(
            node("people", "values", rows=PEOPLE[:1]),
            node("ask", "llm", connector_id="conn-1", template="Hi {name}", **override),
        )
        result = run(doc, ctx)
        assert result.status == "failed"
        assert "base_url" in (result.error or "")
        assert "saved connector 'conn-1'" in (result.error or "")
    assert dict(state.calls) == before


def test_loopback_is_refused_unless_allowed(
    base_url: str, state: ServerState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UZO_CONNECTORS_ALLOW_LOOPBACK", "false")
    connector_settings.get_settings.cache_clear()
    result = run(llm_workflow(base_url))
    assert result.status == "failed"
    assert result.error is not None
    assert "'ask'" in result.error
    assert "loopback" in result.error.lower()
    assert state.calls["chat"] == 0


def test_template_with_a_missing_column_is_rejected_before_running(
    base_url: str, state: ServerState
) -> None:
    doc = llm_workflow(base_url, template="Describe {name} from {city}")
    with pytest.raises(WorkflowValidationError) as info:
        compile_workflow(doc, name="llm-test")
    [issue] = info.value.errors
    assert issue.node_id == "ask"
    assert issue.column == "city"
    assert "'city'" in str(issue)
    assert "'ask'" in str(issue)
    assert state.calls["chat"] == 0


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"template": "Hi {name.upper}"}, "plain field name"),
        ({"template": "Hi {0}"}, "plain field name"),
        ({"system": "You know {name}"}, "system prompt"),
        ({"output_column": "name"}, "already exists"),
        ({"on_error": "ignore"}, "on_error"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_invalid_configs_are_rejected_naming_the_node(
    base_url: str, config: dict[str, Any], expected: str
) -> None:
    with pytest.raises(WorkflowValidationError) as info:
        compile_workflow(llm_workflow(base_url, **config), name="llm-test")
    text = str(info.value)
    assert "'ask'" in text
    assert expected in text
