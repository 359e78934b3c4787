"""What the mirror sends to Prefect's REST API, in one place (Prefect 3.9's shapes).

Measured on the reference machine (2 cores, SQLite): Prefect's server spends
20-30 ms of CPU on every object it writes, whichever way it arrives, and
Prefect's httpx client 1.5-3 ms per request. So the mirror writes as few
objects and sends as few requests as it can:

- a flow run is created with one request, directly in its final state when the
  run is over by then (``create_flow_run``); only a run still going gets a
  RUNNING flow run and a second request for its final state;
- task runs are created the way Prefect's own client has created them since 3.0:
  as task-run state events, which the server's ``task_run_recorder`` service turns
  into task runs with the start and end times they carry; many in one
  ``POST /events`` request (``task_run_event``, ``emit_events``);
- one ``POST /flow_runs/filter`` finds every mirrored flow run someone asked to
  cancel (``cancel_requested``).

Names, parameters and tags carry ids only: Prefect's UI has no tenancy.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from prefect.client.orchestration import PrefectClient

FLOW_NAME = "uzo-workflow"
TAGS = ["uzo"]
TASK_KEY = "uzo-step"
EVENTS_PER_REQUEST = 500
MESSAGE_LIMIT = 5000  # characters of a state message (Prefect keeps 100,000)

# UZO status -> Prefect (state type, state name)
RUN_STATES = {
    "succeeded": ("COMPLETED", "Completed"),
    "failed": ("FAILED", "Failed"),
    "cancelled": ("CANCELLED", "Cancelled"),
}
STEP_STATES = {
    "succeeded": ("COMPLETED", "Completed"),
    "skipped": ("COMPLETED", "Skipped"),
    "failed": ("FAILED", "Failed"),
    # Prefect has no terminal state for "never ran, an upstream failed" (its own
    # engine leaves such a task Pending/NotReady): a named FAILED keeps it terminal
    "upstream_failed": ("FAILED", "UpstreamFailed"),
    "cancelled": ("CANCELLED", "Cancelled"),
}
_CANCEL_ASKED = ["CANCELLING", "CANCELLED"]


class PrefectUnavailable(Exception):
    """The API did not answer, or answered that it cannot now (5xx, 408, 429): retry later."""


def classify(exc: BaseException) -> BaseException:
    """``exc`` as :class:`PrefectUnavailable` when retrying later may succeed, else as is."""
    import httpx

    if isinstance(exc, httpx.TransportError | OSError | TimeoutError):
        return PrefectUnavailable(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, httpx.HTTPStatusError):
        code = exc.response.status_code
        if code >= 500 or code in {408, 429}:
            return PrefectUnavailable(f"HTTP {code}")
    return exc


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()


def _message(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


async def ensure_flow(client: PrefectClient) -> str:
    """The id of the one flow every mirrored run belongs to (created on first use)."""
    response = await client.request("POST", "/flows/", json={"name": FLOW_NAME, "tags": TAGS})
    return str(response.json()["id"])


async def create_flow_run(
    client: PrefectClient,
    flow_id: str,
    execution_id: str,
    idempotency_key: str,
    state: tuple[str, str, str | None],
) -> str:
    """Create the flow run of ``execution_id`` in ``state`` (type, name, message); its id.

    The idempotency key makes a retried request return the flow run the first
    one created (Prefect does not accept an id chosen by the client here).
    """
    type_, name, message = state
    body = {
        "flow_id": flow_id,
        "name": execution_id,
        "parameters": {"execution_id": execution_id},
        "tags": TAGS,
        "idempotency_key": idempotency_key,
        "state": {"type": type_, "name": name, "message": _message(message or "")},
    }
    response = await client.request("POST", "/flow_runs/", json=body)
    return str(response.json()["id"])


async def set_flow_run_state(
    client: PrefectClient, flow_run_id: str, state: tuple[str, str, str | None]
) -> None:
    """Force the flow run's final state (no orchestration rules: UZO decided it)."""
    type_, name, message = state
    body = {
        "state": {"type": type_, "name": name, "message": _message(message or "")},
        "force": True,
    }
    await client.request(
        "POST", "/flow_runs/{id}/set_state", path_params={"id": flow_run_id}, json=body
    )


def task_run_event(
    flow_run_id: str,
    task_run_id: str,
    step_id: str,
    node_ids: Sequence[str],
    status: str,
    started_at: float,
    ended_at: float,
    message: str | None,
) -> dict[str, Any]:
    """A finished step as the event Prefect's client emits for a task run's final state.

    The server's task-run recorder creates the task run from it, with the start
    and end times given (which a REST-created task run cannot carry).
    """
    type_, name = STEP_STATES.get(status, ("FAILED", status.title().replace("_", "")))
    text = _message(message or f"{len(node_ids)} node(s): {', '.join(node_ids[:20])}")
    return {
        "id": str(uuid.uuid4()),
        "occurred": _iso(ended_at),
        "event": f"prefect.task-run.{name}",
        "resource": {
            "prefect.resource.id": f"prefect.task-run.{task_run_id}",
            "prefect.resource.name": step_id,
            "prefect.run-count": "1",
            "prefect.state-message": text,
            "prefect.state-name": name,
            "prefect.state-timestamp": _iso(ended_at),
            "prefect.state-type": type_,
            "prefect.orchestration": "client",
        },
        "related": [
            _related(f"prefect.flow-run.{flow_run_id}", "flow-run"),
            *(_related(f"prefect.tag.{tag}", "tag") for tag in TAGS),
        ],
        "payload": {
            "intended": {"from": None, "to": type_},
            "initial_state": None,
            "validated_state": {"type": type_, "name": name, "message": text, "state_details": {}},
            "task_run": {
                "name": step_id,
                "task_key": TASK_KEY,
                "dynamic_key": step_id,
                "run_count": 1,
                "flow_run_run_count": 1,
                "expected_start_time": _iso(started_at),
                "start_time": _iso(started_at),
                "end_time": _iso(ended_at),
                "total_run_time": max(0.0, ended_at - started_at),
                "tags": TAGS,
                "empirical_policy": {},
                "task_inputs": {},
            },
        },
    }


def _related(resource_id: str, role: str) -> dict[str, str]:
    return {"prefect.resource.id": resource_id, "prefect.resource.role": role}


async def emit_events(client: PrefectClient, events: Sequence[dict[str, Any]]) -> None:
    """Send events in requests of up to ``EVENTS_PER_REQUEST``."""
    for start in range(0, len(events), EVENTS_PER_REQUEST):
        chunk = list(events[start : start + EVENTS_PER_REQUEST])
        await client.request("POST", "/events", json=chunk)


async def cancel_requested(client: PrefectClient, flow_run_ids: Iterable[str]) -> set[str]:
    """Which of these flow runs were set to CANCELLING or CANCELLED in Prefect."""
    ids = list(flow_run_ids)
    found: set[str] = set()
    for start in range(0, len(ids), 200):
        chunk = ids[start : start + 200]
        body = {
            "flow_runs": {"id": {"any_": chunk}, "state": {"type": {"any_": _CANCEL_ASKED}}},
            "limit": len(chunk),
        }
        response = await client.request("POST", "/flow_runs/filter", json=body)
        found.update(str(run["id"]) for run in response.json())
    return found
