"""An open-loop HTTP load generator (asyncio + aiohttp) for the ``api`` benchmark.

Requests are scheduled at fixed intervals (``1 / rate``) whatever the server does:
a slow answer never delays the next send (a closed loop, as wrk or locust run by
default, would wait and hide the queueing). Each latency is measured from the
request's *scheduled* send time to the end of its response, so time spent waiting
in the client's connection pool, in the event loop, or in the server's queues is
counted. ``send_lag`` (actual start - scheduled) shows when the generator itself
fell behind.

The client is aiohttp: it shares the two cores with the server it measures, and on
this machine it spends about 0.5 ms of CPU per request where httpx spent 3.7 ms
(measured by the benchmark's ``client_cpu_s``), which alone would have used most of
a core at 250 requests/s.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    import uuid
    from collections.abc import Sequence

READ_OPS = ("get_workflow", "list_folder", "check_permission")
SAVE_OPS = ("save_workflow",)
DEFAULT_MIX = {"get_workflow": 0.40, "list_folder": 0.25, "check_permission": 0.25,
               "save_workflow": 0.10}  # fmt: skip


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (numpy's default method)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * pct / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summary(latencies_s: Sequence[float]) -> dict[str, float | int | None]:
    ms = [v * 1000 for v in latencies_s]
    if not ms:
        return {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "count": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2),
    }


@dataclass
class Caller:
    """A logged-in user and the objects their requests aim at."""

    name: str
    kind: str  # owner | member
    headers: dict[str, str]
    readable: list[uuid.UUID]  # workflows they may read (decided by the Authorizer)
    writable: list[uuid.UUID]  # ... and save (read_write)
    others: list[uuid.UUID]  # workflows to ask the permission check about


@dataclass
class Targets:
    """What the generated requests address: folders to list, callers, diagrams."""

    callers: list[Caller]
    folders: list[tuple[uuid.UUID, uuid.UUID]]  # (workspace, folder)
    parent_folders: list[tuple[uuid.UUID, uuid.UUID]]  # folders that have sub-folders
    diagrams: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    etags: dict[uuid.UUID, str] = field(default_factory=dict)
    templates: dict[uuid.UUID, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Planned:
    op: str
    caller: int
    method: str
    url: str
    workflow: uuid.UUID | None = None


@dataclass
class Record:
    op: str
    latency_s: float
    send_lag_s: float
    status: int | str  # the HTTP status, or timeout / transport / unfinished
    template: str | None = None


def plan(targets: Targets, n: int, mix: dict[str, float], rng: random.Random) -> list[Planned]:
    """``n`` requests drawn from the mix, each by a random caller at one of its targets."""
    ops, weights = zip(*mix.items(), strict=True)
    out: list[Planned] = []
    for op in rng.choices(ops, weights, k=n):
        c = rng.randrange(len(targets.callers))
        caller = targets.callers[c]
        if op == "get_workflow" and caller.readable:
            w = rng.choice(caller.readable)
            out.append(Planned(op, c, "GET", f"/api/workflows/{w}", w))
        elif op == "save_workflow" and caller.writable:
            w = rng.choice(caller.writable)  # re-chosen at send time if it is in flight
            out.append(Planned(op, c, "PATCH", f"/api/workflows/{w}", w))
        elif op == "check_permission" or op in ("get_workflow", "save_workflow"):
            pool = caller.others if rng.random() < 0.5 or not caller.readable else caller.readable
            w = rng.choice(pool)
            level = rng.choice(("read", "read_write"))
            url = f"/api/permissions/check?object_type=workflow&object_id={w}&level={level}"
            out.append(Planned("check_permission", c, "GET", url, w))
        elif rng.random() < 0.5 or not targets.parent_folders:
            _, folder = rng.choice(targets.folders)  # the folder's jobs
            out.append(Planned(op, c, "GET", f"/api/folders/{folder}/jobs"))
        else:
            ws, folder = rng.choice(targets.parent_folders)  # the folder's sub-folders
            url = f"/api/workspaces/{ws}/folders?parent_folder_id={folder}"
            out.append(Planned(op, c, "GET", url))
    return out


class Driver:
    """Sends planned requests at a fixed rate and records what happened to each."""

    def __init__(self, base_url: str, targets: Targets, *, timeout_s: float, connections: int):
        self.base_url = base_url
        self.targets = targets
        self.timeout_s = timeout_s
        self.connections = connections
        self.in_flight: Counter[uuid.UUID] = Counter()  # saves sent or queued, per workflow
        #: one save of a workflow at a time: a save re-aimed at a busy workflow waits for
        #: the one before it (and that wait counts), so it always sends the current ETag
        self.save_locks: dict[uuid.UUID, asyncio.Lock] = {}
        self.slots = asyncio.Semaphore(connections)
        self.nudge: dict[uuid.UUID, int] = {}
        self.rng = random.Random(11)
        #: workflows whose last save got no answer (cancelled at the end of a phase, timed
        #: out): the server may have saved it, so its ETag is read again before the next
        self.stale: set[uuid.UUID] = set()

    def client(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            base_url=self.base_url,
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            connector=aiohttp.TCPConnector(limit=self.connections),
        )

    def _save_body(self, workflow: uuid.UUID) -> bytes:
        """The workflow's diagram with its first node moved by a pixel (a real change)."""
        doc = copy.deepcopy(self.targets.diagrams[workflow])
        step = self.nudge[workflow] = self.nudge.get(workflow, 0) + 1
        position = doc["nodes"][0].setdefault("position", {"x": 0, "y": 0})
        position["x"] = float(position.get("x", 0)) + (1 if step % 2 else -1)
        self.targets.diagrams[workflow] = doc
        return json.dumps({"diagram": doc}).encode()

    async def _one(
        self, client: aiohttp.ClientSession, req: Planned, scheduled: float, out: list[Record]
    ) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        workflow = req.workflow
        if req.op == "save_workflow" and workflow is not None:
            if workflow in self.in_flight:  # prefer a workflow nobody is saving
                caller = self.targets.callers[req.caller]
                free = [w for w in caller.writable if w not in self.in_flight]
                workflow = self.rng.choice(free) if free else workflow
            status = await self._save(client, req, workflow)
        else:
            status = await self._send(client, req.method, req.url, req.caller)
        ended = loop.time()
        saved = req.op == "save_workflow" and workflow is not None
        template = self.targets.templates.get(workflow) if saved and workflow else None
        out.append(Record(req.op, ended - scheduled, started - scheduled, status, template))

    async def _save(
        self, client: aiohttp.ClientSession, req: Planned, workflow: uuid.UUID
    ) -> int | str:
        """One save, after any save of the same workflow before it (the wait counts)."""
        self.in_flight[workflow] += 1
        lock = self.save_locks.setdefault(workflow, asyncio.Lock())
        status: int | str = "unfinished"
        try:
            async with lock:
                if workflow in self.stale:  # an earlier save went unanswered
                    await self._refresh(client, workflow)
                extra = {"If-Match": self.targets.etags[workflow],
                         "Content-Type": "application/json"}  # fmt: skip
                url = f"/api/workflows/{workflow}"
                status = await self._send(
                    client, "PATCH", url, req.caller, extra, self._save_body(workflow), workflow
                )
        finally:
            self.in_flight[workflow] -= 1
            if not self.in_flight[workflow]:
                del self.in_flight[workflow]
            if not isinstance(status, int):
                self.stale.add(workflow)
        return status

    async def _send(
        self,
        client: aiohttp.ClientSession,
        method: str,
        url: str,
        caller: int,
        extra: dict[str, str] | None = None,
        content: bytes | None = None,
        saving: uuid.UUID | None = None,
    ) -> int | str:
        headers = {**self.targets.callers[caller].headers, **(extra or {})}
        try:
            # at most `connections` requests in flight; the wait here still counts, from
            # the scheduled time
            async with (
                self.slots,
                client.request(method, url, headers=headers, data=content) as response,
            ):
                await response.read()
                if saving is not None and response.status == 200:
                    self.targets.etags[saving] = response.headers["etag"]
                return response.status
        except TimeoutError:
            return "timeout"
        except aiohttp.ClientError:
            return "transport"

    async def _refresh_stale(self, client: aiohttp.ClientSession) -> None:
        """Read again, untimed, the ETag and diagram of workflows whose save went unanswered."""
        for workflow in sorted(self.stale):
            await self._refresh(client, workflow)

    async def _refresh(self, client: aiohttp.ClientSession, workflow: uuid.UUID) -> None:
        owner = self.targets.callers[0].headers  # the owner reads every workflow
        async with client.get(f"/api/workflows/{workflow}", headers=owner) as response:
            if response.status == 200:
                self.targets.etags[workflow] = response.headers["etag"]
                self.targets.diagrams[workflow] = (await response.json())["diagram"]
                self.stale.discard(workflow)

    async def run(self, requests: list[Planned], rate: float, drain_s: float) -> Phase:
        """Send ``requests`` at ``rate`` per second; wait up to ``drain_s`` for the last."""
        out: list[Record] = []
        loop = asyncio.get_running_loop()
        self.slots = asyncio.Semaphore(self.connections)
        cpu0 = time.process_time()
        async with self.client() as client:
            await self._refresh_stale(client)
            interval = 1.0 / rate
            start = loop.time() + 0.05
            tasks = []
            for i, req in enumerate(requests):
                at = start + i * interval
                delay = at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(self._one(client, req, at, out)))
            sent_until = loop.time()
            _done, pending = await asyncio.wait(tasks, timeout=drain_s) if tasks else (set(), set())
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            ended = loop.time()
        unfinished = len(requests) - len(out)
        out.extend(
            Record("unfinished", ended - start, 0.0, "unfinished") for _ in range(unfinished)
        )
        return Phase(
            records=out,
            rate=rate,
            scheduled_s=len(requests) * interval,
            send_s=sent_until - start,
            wall_s=ended - start,
            client_cpu_s=time.process_time() - cpu0,
        )


@dataclass
class Phase:
    records: list[Record]
    rate: float
    scheduled_s: float
    send_s: float
    wall_s: float
    client_cpu_s: float

    def report(self) -> dict[str, Any]:
        recs = self.records
        ok = [r for r in recs if _ok(r)]
        errors = Counter(str(r.status) for r in recs if not _ok(r))
        done = [r for r in recs if r.status != "unfinished"]
        by_op = {
            op: summary([r.latency_s for r in done if r.op == op]) for op in (*READ_OPS, *SAVE_OPS)
        }
        saves_by_template: dict[str, list[float]] = {}
        for r in done:
            if r.op == "save_workflow" and r.template:
                saves_by_template.setdefault(r.template, []).append(r.latency_s)
        return {
            "target_rps": self.rate,
            "duration_s": round(self.scheduled_s, 2),
            "sent": len(recs),
            "ok": len(ok),
            "errors": sum(errors.values()),
            "error_kinds": dict(sorted(errors.items())),
            "throughput_rps": round(len(ok) / self.wall_s, 1) if self.wall_s else 0.0,
            "send_rps": round(len(recs) / self.send_s, 1) if self.send_s else 0.0,
            "send_lag": summary([r.send_lag_s for r in done]),
            "reads": summary([r.latency_s for r in done if r.op in READ_OPS]),
            "saves": summary([r.latency_s for r in done if r.op in SAVE_OPS]),
            "by_op": by_op,
            "saves_by_template": {k: summary(v) for k, v in sorted(saves_by_template.items())},
            "client_cpu_s": round(self.client_cpu_s, 2),
        }


def _ok(record: Record) -> bool:
    return isinstance(record.status, int) and 200 <= record.status < 300
