"""Real faults for the local sinks' tests: a writer process to SIGKILL mid-write, or one
whose file size limit (``RLIMIT_FSIZE``) makes a write fail with ``EFBIG`` part-way.

``python -m tests.unit.sink_faults SINK ROOT DATASET MODE FAULT`` writes ROWS rows of
incompressible data to DATASET under ROOT (confined to it), through ``parquet_sink``
(SINK ``node``) or the ``file`` connector's sink (SINK ``file``, WriteMode MODE).
FAULT ``park``: after the first part is written the writer blocks, still writing,
until it is killed. FAULT ``fsize``: the file size limit is 1 MiB; the exception is
printed as JSON and the process exits 0.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pyarrow as pa

REPO = Path(__file__).resolve().parents[2]
PREFIX = ".uzo-staging-"
FSIZE_LIMIT = 1 << 20
DEADLINE = 120.0  # seconds a writer may take to start writing (a loaded machine)


def batches(rows_per_batch: int, count: int | None) -> Iterator[pa.RecordBatch]:
    """Batches of an id and 16 random (incompressible) bytes; ``count`` None: no end."""
    import pyarrow as pa

    n = 0
    while count is None or n < count:
        blob = pa.Array.from_buffers(
            pa.binary(16), rows_per_batch, [None, pa.py_buffer(os.urandom(16 * rows_per_batch))]
        )
        ids = pa.array(range(n * rows_per_batch, (n + 1) * rows_per_batch), pa.int64())
        yield pa.RecordBatch.from_arrays([ids, blob], ["id", "blob"])
        n += 1


def _park() -> None:
    # the writer is in the middle of its write: it never returns from here
    threading.Event().wait()


def _run_node(root: str, dataset: str, park: bool) -> None:
    import pyarrow as pa

    from uzo_connectors.base import ConnectorContext
    from uzo_connectors.ssrf import EndpointPolicy
    from uzo_engine.nodes import io
    from uzo_engine.plan import StepContext

    # more than one row group (about 25 MB a group): the writer parks after the first
    table = pa.Table.from_batches(list(batches(io.ROW_GROUP_ROWS // 4, 6)))
    checks = 0

    def cancelled() -> bool:
        nonlocal checks
        checks += 1
        if park and checks > 1:  # one row group is in the staging file
            _park()
        return False

    ctx = StepContext(
        "fault",
        cancelled=cancelled,
        connectors=ConnectorContext(EndpointPolicy(), local_roots=(root,)),
    )
    node = io.ParquetSinkNode()
    node.run(node.parse_params({"path": dataset, "compression": "none"}), {"in": table}, ctx)


def _run_file(root: str, dataset: str, mode: str, park: bool) -> None:
    from uzo_connectors.base import ConnectorContext, WriteMode, WriteRequest
    from uzo_connectors.registry import create_connector
    from uzo_connectors.ssrf import EndpointPolicy

    ctx = ConnectorContext(EndpointPolicy(), local_roots=(root,))
    connector = create_connector("file", {"root": root}, ctx)
    first = next(batches(1, 1))
    with connector.open_sink(WriteRequest(dataset, first.schema, WriteMode(mode))) as sink:
        for i, batch in enumerate(batches(16_384, None if park else 16)):
            sink.write(batch)
            if park and i == 2:
                _park()
        sink.commit()


def main(argv: list[str]) -> None:
    sink, root, dataset, mode, fault = argv
    if fault == "fsize":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, resource.RLIM_INFINITY))
    try:
        if sink == "node":
            _run_node(root, dataset, fault == "park")
        else:
            _run_file(root, dataset, mode, fault == "park")
    except Exception as exc:
        report = {"error": type(exc).__name__, "errno": getattr(exc, "errno", None)}
        sys.stdout.write(json.dumps({**report, "text": str(exc)[:500]}) + "\n")
        return
    sys.stdout.write(json.dumps({"error": None}) + "\n")


# ------------------------------------------------------------------ used by the tests


def writer(sink: str, root: Path, dataset: str, mode: str, fault: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.unit.sink_faults", sink, str(root), dataset, mode, fault],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def staged_bytes(directory: Path) -> int:
    """Bytes in the staging entries directly in ``directory`` (files in a staging
    directory counted too)."""
    total = 0
    for entry in directory.iterdir():
        if not entry.name.startswith(PREFIX):
            continue
        paths = entry.rglob("*") if entry.is_dir() else [entry]
        total += sum(p.stat().st_size for p in paths if p.is_file())
    return total


def kill_mid_write(proc: subprocess.Popen[str], directory: Path) -> None:
    """Wait (bounded) until the writer has put bytes in a staging entry, then SIGKILL it;
    fails if it ended by itself first."""
    deadline = time.monotonic() + DEADLINE
    while staged_bytes(directory) == 0:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the writer ended before it was killed: {out}{err}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.communicate()
            raise AssertionError("the writer staged nothing in time")
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def failed_write(proc: subprocess.Popen[str]) -> dict[str, object]:
    out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, err
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def staging_entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(PREFIX))


if __name__ == "__main__":
    main(sys.argv[1:])
