"""What the Prefect mirror sends, shaped without a server (the integration tests in
tests/integration/engine/test_mirror.py send it to a real one)."""

from __future__ import annotations

import httpx

from uzo_engine.runtime import prefect_api
from uzo_engine.runtime.prefect_api import PrefectUnavailable, classify
from uzo_engine.runtime.prefect_server import PrefectApi, ui_url


def _status_error(code: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://127.0.0.1:4200/api/flow_runs/")
    response = httpx.Response(code, request=request)
    return httpx.HTTPStatusError(f"HTTP {code}", request=request, response=response)


def test_what_retrying_may_fix_is_an_outage_and_the_rest_a_refusal() -> None:
    for exc in (httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), _status_error(503)):
        assert isinstance(classify(exc), PrefectUnavailable)
    for code in (408, 429, 500):
        assert isinstance(classify(_status_error(code)), PrefectUnavailable)
    refused = _status_error(422)
    assert classify(refused) is refused
    bug = KeyError("id")
    assert classify(bug) is bug


def test_a_step_becomes_a_task_run_event_with_its_times_and_ids_only() -> None:
    event = prefect_api.task_run_event(
        "flow-run-1", "task-run-1", "s1", ["a", "b"], "upstream_failed", 100.0, 102.5, None
    )
    assert event["event"] == "prefect.task-run.UpstreamFailed"
    assert event["resource"]["prefect.resource.id"] == "prefect.task-run.task-run-1"
    assert event["resource"]["prefect.orchestration"] == "client"  # what the recorder reads
    flow_run = {"prefect.resource.id": "prefect.flow-run.flow-run-1"}
    assert {**flow_run, "prefect.resource.role": "flow-run"} in event["related"]
    task_run = event["payload"]["task_run"]
    assert (task_run["name"], task_run["dynamic_key"]) == ("s1", "s1")
    assert task_run["total_run_time"] == 2.5
    assert task_run["start_time"].startswith("1970-01-01T00:01:40")
    assert event["payload"]["validated_state"]["type"] == "FAILED"
    assert event["payload"]["validated_state"]["message"] == "2 node(s): a, b"


def test_every_step_and_run_status_has_a_prefect_state() -> None:
    assert set(prefect_api.STEP_STATES) == {
        "succeeded", "failed", "skipped", "upstream_failed", "cancelled",
    }  # fmt: skip
    assert set(prefect_api.RUN_STATES) == {"succeeded", "failed", "cancelled"}


def test_the_ui_is_at_the_servers_root() -> None:
    api = PrefectApi("http://127.0.0.1:4200/api", pid=1, started_here=False)
    assert ui_url(api) == "http://127.0.0.1:4200/"
