"""Which process a pid is: its start time, so that a pid the kernel handed out again is
not taken for the process a file recorded (server.json, leases, Ray session folders).

On Linux the start time is field 22 of ``/proc/<pid>/stat`` (clock ticks since boot).
Where there is no ``/proc`` (macOS), :func:`start_time` returns None and callers fall back
to "the pid exists", the best that can be known there.
"""

from __future__ import annotations

import functools
import os


def pid_exists(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def start_time(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot; None if it is gone or unknowable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode(errors="replace")
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces or ")"
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])  # field 22 counted from 1; fields[0] is field 3
    except (IndexError, ValueError):
        return None


def same_process(pid: int, started: int | None) -> bool:
    """``pid`` is still the process that had start time ``started``.

    ``started`` None (recorded where there is no /proc, or by an older UZO): the pid exists.
    """
    if not pid_exists(pid):
        return False
    if started is None:
        return True
    now = start_time(pid)
    return now is None or now == started


@functools.cache
def _boot_time() -> float | None:
    try:
        with open("/proc/stat") as fh:
            for line in fh:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def started_at(pid: int) -> float | None:
    """When ``pid`` started, as a Unix time (None where /proc does not say)."""
    ticks = start_time(pid)
    boot = _boot_time()
    if ticks is None or boot is None:
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            raw = fh.read()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
