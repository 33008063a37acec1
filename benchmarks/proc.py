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
