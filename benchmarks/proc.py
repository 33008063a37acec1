"""Reading a process's figures from Linux's ``/proc``, for the benchmarks' CPU accounting."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def stat(pid: int) -> tuple[str, list[str]] | None:
    """(command name, the fields after it) of ``/proc/<pid>/stat``; None once it is gone.
    The name is cut at its last ``)``: a command name may hold spaces and brackets."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    head, _, rest = text.rpartition(")")
    return head.partition("(")[2], rest.split()


def cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far; None once it is gone."""
    found = stat(pid)
    if found is None:
        return None
    fields = found[1]
    return (int(fields[11]) + int(fields[12])) / TICK


def thread_counts(pid: int) -> dict[int, tuple[float, int, int]]:
    """Per thread of process ``pid`` (by its native id): user + system CPU seconds, voluntary
    and involuntary context switches so far. A voluntary switch is a wait: for a lock (the GIL
    too), a queue or the network; many per unit of work mean threads hand work to each other."""
    found: dict[int, tuple[float, int, int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "stat").read_text()
            status = (task / "status").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        # the task's own file: /proc/<thread id>/stat holds the whole process's CPU
        rest = text.rpartition(")")[2].split()
        switches = dict(
            line.split(":", 1) for line in status.splitlines() if "ctxt_switches" in line
        )
        found[int(task.name)] = (
            (int(rest[11]) + int(rest[12])) / TICK,
            int(switches["voluntary_ctxt_switches"]),
            int(switches["nonvoluntary_ctxt_switches"]),
        )
    return found
