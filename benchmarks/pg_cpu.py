"""CPU used by the PostgreSQL server for one benchmark run, read from ``/proc``.

The server shares the machine with the CSMS and the load generator, so its CPU belongs in
the figures. :func:`backend_cpu` sums the user + system CPU seconds of the backends connected
to one database (``pg_stat_activity``: the CSMS's pooled connections and database threads,
which live as long as the run) and, separately, of the server's own processes (WAL writer,
checkpointer, background writer: shared by every database of the cluster).
:func:`server_total_s` is the whole server's CPU, backends that came and went included (a
connection pool under load opens and closes its overflow connections: counting only the
backends alive at both readings missed them). Only for a server on this machine whose
processes this user may read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import proc

_AUXILIARY = ("walwriter", "checkpointer", "background writer", "autovacuum launcher")


@dataclass(frozen=True, slots=True)
class ServerCpu:
    """CPU seconds so far: per backend of the database (by pid) and of the auxiliaries; and
    the backends' voluntary context switches (a backend sleeps once per round trip it waits
    for, so their growth counts the round trips)."""

    backends: dict[int, float]
    auxiliary: float
    sleeps: dict[int, int] = field(default_factory=dict)

    def sleeps_since(self, before: ServerCpu) -> int:
        return sum(n - before.sleeps.get(pid, 0) for pid, n in self.sleeps.items())

    def since(self, before: ServerCpu) -> tuple[float, float]:
        """(backends, auxiliaries) CPU seconds from ``before`` to this sample; a backend
        that started in between counts from zero."""
        used = sum(cpu - before.backends.get(pid, 0.0) for pid, cpu in self.backends.items())
        return used, self.auxiliary - before.auxiliary


def _cpu_s(pid: int) -> float:
    return proc.cpu_s(pid) or 0.0  # 0 once gone


def server_total_s(name: str = "postgres") -> float:
    """CPU seconds so far of every server process called ``name`` on this machine (PostgreSQL
    by default; ``redis-server`` and its save forks too): each top process's own and that of
    its children that exited (the kernel adds a reaped child's time to its parent's
    ``cutime``/``cstime``), plus its live children's. The difference of two readings is the
    server's CPU in between, whatever connected or disconnected meanwhile (less a child that
    exited in the few milliseconds before it was reaped, if a reading falls just then)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            found = proc.stat(int(entry.name))
            if found is not None and found[0] == name:
                stats[int(entry.name)] = found[1]
    # field 1 is the parent's pid; 11-14 utime, stime, cutime, cstime (in ticks)
    masters = {pid for pid, fields in stats.items() if int(fields[1]) not in stats}
    total = 0
    for pid, fields in stats.items():
        own = int(fields[11]) + int(fields[12])
        total += own + (int(fields[13]) + int(fields[14]) if pid in masters else 0)
    return total / tick


def _sleeps(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def backend_cpu(admin_dsn: str, database: str) -> ServerCpu:
    """The CPU so far of ``database``'s backends and of the server's auxiliary processes."""
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, datname, backend_type FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
        ).fetchall()
    ours = [pid for pid, datname, _kind in rows if datname == database]
    auxiliary = sum(_cpu_s(pid) for pid, _db, kind in rows if kind in _AUXILIARY)
    return ServerCpu({pid: _cpu_s(pid) for pid in ours}, auxiliary, {p: _sleeps(p) for p in ours})
