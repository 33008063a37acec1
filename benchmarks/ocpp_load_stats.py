"""Counters and latency samples of the load run, merged across workers and printed.

Workers fill a :class:`WorkerReport` (plain picklable data); the parent merges them into a
:class:`Summary` whose ``as_dict`` is the ``--json`` output and whose ``table`` is the printout.
Percentiles are nearest-rank over every sample (no histogram buckets: at most a few hundred
thousand floats per run).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from benchmarks.ocpp_load_check import check_table
from benchmarks.ocpp_load_frames import SessionLog


@dataclass(slots=True)
class WorkerReport:
    """What one worker process saw; every time is in milliseconds, wall times in epoch s."""

    attempted: int = 0
    connected: int = 0
    booted: int = 0
    connect_failures: Counter[str] = field(default_factory=Counter)  # gave up, by last reason
    connect_retries: Counter[str] = field(default_factory=Counter)  # failed attempts retried
    connect_ms: list[float] = field(default_factory=list)  # scheduled start -> boot answered
    first_attempt_at: float = math.inf
    last_booted_at: float = 0.0
    sent: int = 0
    answered: int = 0
    callerrors: Counter[str] = field(default_factory=Counter)
    timeouts: int = 0
    lost: int = 0  # calls whose connection closed before the answer
    latencies: dict[str, list[float]] = field(default_factory=dict)
    incoming_calls: Counter[str] = field(default_factory=Counter)
    disconnects: int = 0
    held_at_end: int = 0
    stuck: int = 0  # charger tasks cancelled after the end-of-run grace period
    window_s: float = 0.0
    cpu_s: float = 0.0  # this worker's CPU time during the load phase
    dropped: int = 0  # connections lost during the load phase (each then reconnects)
    reconnected: int = 0
    reconnect_ms: list[float] = field(default_factory=list)  # loss noticed -> booted again
    last_rebooted_at: float = 0.0
    resent: int = 0  # messages sent again after a lost answer (transaction, settlement)
    undelivered: int = 0  # such messages still unanswered at the end
    key_answers: Counter[str] = field(default_factory=Counter)  # SettlementKey at each boot
    sessions: list[SessionLog] = field(default_factory=list)

    def record(self, action: str, latency_ms: float) -> None:
        self.latencies.setdefault(action, []).append(latency_ms)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (``q`` in [0, 100]); NaN when empty."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50_ms": percentile(ordered, 50),
        "p95_ms": percentile(ordered, 95),
        "p99_ms": percentile(ordered, 99),
        "max_ms": ordered[-1] if ordered else math.nan,
    }


@dataclass(slots=True)
class Summary:
    """The merged result of one run plus the CSMS memory figures the parent sampled."""

    label: str
    chargers: int
    storm: bool
    offered_rate: float
    duration_s: float
    workers: list[WorkerReport]
    rss_peak_mb: float = math.nan  # sampled during connect + load
    rss_end_mb: float = math.nan
    rss_hwm_mb: float = math.nan  # kernel high-water mark, includes registration
    rss_start_mb: float = math.nan  # after registration, before the first connection
    csms_cpu_s: float = math.nan  # the target's CPU time during the load phase
    load_average: tuple[float, float] = (math.nan, math.nan)  # 1-min, at start and end of load
    cpu_by_process: dict[str, float] = field(default_factory=dict)  # pid -> CPU s in the window
    rss_by_process: dict[str, float] = field(default_factory=dict)  # pid -> MB at the end
    rss_grown_mb: float = math.nan  # summed RSS growth of the CSMS processes since idle
    servers_cpu_s: dict[str, float] = field(default_factory=dict)  # PostgreSQL, Redis
    events: dict[str, float] = field(default_factory=dict)  # kill / restart, s into the load
    http: dict[str, Any] = field(default_factory=dict)  # the set-up and capture requests
    check: dict[str, Any] | None = None  # the database count (benchmarks.ocpp_load_check)
    load_epoch: float = 0.0  # when the load phase began (epoch s)

    def total(self, name: str) -> int:
        return sum(getattr(w, name) for w in self.workers)

    def counter(self, name: str) -> Counter[str]:
        merged: Counter[str] = Counter()
        for w in self.workers:
            merged.update(getattr(w, name))
        return merged

    def latencies(self) -> dict[str, list[float]]:
        merged: dict[str, list[float]] = {}
        for w in self.workers:
            for action, values in w.latencies.items():
                merged.setdefault(action, []).extend(values)
        return merged

    def as_dict(self) -> dict[str, Any]:
        per_action = self.latencies()
        every = [v for values in per_action.values() for v in values]
        window = max((w.window_s for w in self.workers), default=0.0)
        answered = self.total("answered")
        first = min((w.first_attempt_at for w in self.workers), default=math.inf)
        last = max((w.last_booted_at for w in self.workers), default=0.0)
        connect = _quantiles([v for w in self.workers for v in w.connect_ms])
        connect["all_booted_s"] = last - first if last >= first else math.nan
        reconnect = _quantiles([v for w in self.workers for v in w.reconnect_ms])
        reconnect["count"] = self.total("reconnected")
        back = max((w.last_rebooted_at for w in self.workers), default=0.0)
        lost_at = self.events.get("restart_killed", self.events.get("killed", math.nan))
        reconnect["all_back_s_after_kill"] = (
            back - (self.load_epoch + lost_at) if back and not math.isnan(lost_at) else math.nan
        )
        ready = self.events.get("restart_ready", math.nan)
        reconnect["all_back_s_after_ready"] = (
            back - (self.load_epoch + ready) if back and not math.isnan(ready) else math.nan
        )
        held = self.total("held_at_end")
        csms_ms_per_msg = 1000 * self.csms_cpu_s / answered if answered else math.nan
        return {
            "label": self.label,
            "chargers": self.chargers,
            "mode": "storm" if self.storm else "ramp",
            "offered_rate": self.offered_rate,
            "duration_s": self.duration_s,
            "connections": {
                "attempted": self.total("attempted"),
                "connected": self.total("connected"),
                "booted": self.total("booted"),
                "held_at_end": self.total("held_at_end"),
                "disconnects": self.total("disconnects"),
                "stuck_at_end": self.total("stuck"),
                "failures": dict(self.counter("connect_failures")),
                "retried": dict(self.counter("connect_retries")),
                "dropped_during_load": self.total("dropped"),
                "settlement_key_answers": dict(self.counter("key_answers")),
            },
            "connect": connect,
            "reconnect": reconnect,
            "events_s_into_load": self.events,
            "messages": {
                "sent": self.total("sent"),
                "answered": answered,
                "callerrors": dict(self.counter("callerrors")),
                "timeouts": self.total("timeouts"),
                "lost": self.total("lost"),
                "resent": self.total("resent"),
                "undelivered": self.total("undelivered"),
                "incoming_calls": dict(self.counter("incoming_calls")),
                "window_s": window,
                "answered_per_s": answered / window if window > 0 else math.nan,
            },
            "latency": _quantiles(every),
            "latency_by_action": {a: _quantiles(v) for a, v in sorted(per_action.items())},
            "machine_load_average_1min": {
                "load_start": self.load_average[0],
                "load_end": self.load_average[1],
            },
            "cpu_percent_of_one_core": {
                "csms": 100 * self.csms_cpu_s / self.duration_s,
                "csms_by_process": {
                    pid: 100 * cpu / self.duration_s for pid, cpu in self.cpu_by_process.items()
                },
                "generator": 100 * sum(w.cpu_s for w in self.workers) / self.duration_s,
                "servers": {k: 100 * v / self.duration_s for k, v in self.servers_cpu_s.items()},
            },
            "csms_cpu_ms_per_answered_message": csms_ms_per_msg,
            "csms_rss_mb": {
                "after_registration": self.rss_start_mb,
                "peak": self.rss_peak_mb,
                "end": self.rss_end_mb,
                "high_water_mark": self.rss_hwm_mb,
                "by_process_end": self.rss_by_process,
                # (sum of the processes' RSS at the end - the same before any charger
                # connected) / chargers held x 1000; and the whole RSS at the end per 1000
                "grown_per_1000_chargers": 1000 * self.rss_grown_mb / held if held else math.nan,
                "total_per_1000_chargers": 1000 * self.rss_end_mb / held if held else math.nan,
            },
            "http": self.http,
            "check": self.check,
        }

    def table(self) -> str:
        d = self.as_dict()
        c, m, lat, con = d["connections"], d["messages"], d["latency"], d["connect"]
        rss, cpu = d["csms_rss_mb"], d["cpu_percent_of_one_core"]
        errors = sum(m["callerrors"].values()) + m["timeouts"] + m["lost"]
        lines = [
            f"== {d['label']}: {d['chargers']} chargers, {d['mode']}, offered "
            f"{d['offered_rate']:.0f} msg/s for {d['duration_s']:.0f} s",
            f"connections  attempted {c['attempted']}  booted {c['booted']}  held at end "
            f"{c['held_at_end']}  dropped {c['disconnects']}  stuck {c['stuck_at_end']}"
            f"  failures {c['failures'] or 0}",
            f"connect      all booted in {con['all_booted_s']:.1f} s  p50 {con['p50_ms']:.0f} ms"
            f"  p99 {con['p99_ms']:.0f} ms  max {con['max_ms']:.0f} ms"
            f"  retried {c['retried'] or 0}",
            f"messages     sent {m['sent']}  answered {m['answered']}  errors {errors} "
            f"(CALLERROR {m['callerrors'] or 0}, timeout {m['timeouts']}, lost {m['lost']})",
            f"throughput   {m['answered_per_s']:.0f} answered msg/s over {m['window_s']:.1f} s",
            f"latency      p50 {lat['p50_ms']:.1f}  p95 {lat['p95_ms']:.1f}  p99 "
            f"{lat['p99_ms']:.1f}  max {lat['max_ms']:.1f} ms",
            f"CSMS RSS     {rss['after_registration']:.0f} MB idle -> peak {rss['peak']:.0f} MB,"
            f" end {rss['end']:.0f} MB (high-water {rss['high_water_mark']:.0f} MB)",
            f"CPU (load)   CSMS {cpu['csms']:.0f} %  generator {cpu['generator']:.0f} %"
            f" of one core; machine load average {self.load_average[0]:.1f} ->"
            f" {self.load_average[1]:.1f} on {os.cpu_count()} CPUs",
        ]
        if self.cpu_by_process:
            per = "  ".join(
                f"{c:.0f}" for c in d["cpu_percent_of_one_core"]["csms_by_process"].values()
            )
            servers = d["cpu_percent_of_one_core"]["servers"]
            lines.append(
                f"per process  CPU % {per}; {d['csms_cpu_ms_per_answered_message']:.3f} ms CSMS CPU"
                f" per answered message; RSS per 1000 chargers {rss['grown_per_1000_chargers']:.0f}"
                f" MB grown ({rss['total_per_1000_chargers']:.0f} MB total); servers "
                + "  ".join(f"{k} {v:.0f} %" for k, v in servers.items())
            )
        r = d["reconnect"]
        after_ready = (
            ""
            if math.isnan(r["all_back_s_after_ready"])
            else f" ({r['all_back_s_after_ready']:.1f} s after the restarted CSMS answered)"
        )
        if r["count"] or c["dropped_during_load"]:
            lines.append(
                f"reconnect    dropped {c['dropped_during_load']}  back {r['count']}  p50 "
                f"{r['p50_ms']:.0f} ms  p99 {r['p99_ms']:.0f} ms  all back "
                f"{r['all_back_s_after_kill']:.1f} s after the kill{after_ready}; resent "
                f"{m['resent']}, undelivered {m['undelivered']}; events {self.events}"
            )
        if self.check is not None:
            lines.extend(check_table(self.check))
        for action, q in d["latency_by_action"].items():
            lines.append(
                f"  {action:<20} {q['count']:>7}  p50 {q['p50_ms']:7.1f}  p99 "
                f"{q['p99_ms']:7.1f}  max {q['max_ms']:7.1f} ms"
            )
        return "\n".join(lines)
