"""Node events and the sink that receives them (the API, the CLI or a test)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from uzo_engine.plan import NodeResult, NodeStatus


@dataclass(frozen=True)
class NodeEvent:
    execution_id: str
    node_id: str
    status: NodeStatus
    result: NodeResult | None = None
    message: str | None = None
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


@dataclass(frozen=True)
class RunEvent:
    execution_id: str
    status: NodeStatus
    message: str | None = None
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


class EventSink(Protocol):
    def node_event(self, event: NodeEvent) -> None: ...

    def run_event(self, event: RunEvent) -> None: ...


class CollectingSink:
    """Keeps every event in memory (CLI summaries, tests)."""

    def __init__(self) -> None:
        self.node_events: list[NodeEvent] = []
        self.run_events: list[RunEvent] = []

    def node_event(self, event: NodeEvent) -> None:
        self.node_events.append(event)

    def run_event(self, event: RunEvent) -> None:
        self.run_events.append(event)

    def final(self) -> dict[str, NodeEvent]:
        out: dict[str, NodeEvent] = {}
        for ev in self.node_events:
            out[ev.node_id] = ev
        return out
