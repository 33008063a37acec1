"""Prometheus metrics of the CSMS process (``prometheus-client``), served at ``/metrics``.

The instruments are the process's, as Prometheus expects of a target: counters of OCPP CALLs
received and sent (by action and outcome), CALLERRORs by code, handshake refusals by reason,
settlements accepted and refused, payments captured, and the store writer's commit time;
the gauges (connected chargers by OCPP version, orders by state, outstanding holds, the store
writer's backlog) are set from the running CSMS (:func:`refresh_live` at every scrape,
:func:`refresh_orders` every few seconds by a task of the app). The client
library's process and platform collectors (CPU, memory, open files, GC) come with the default
registry.

Updating a counter costs about a microsecond: label children of the hot path are cached.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

CALL_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

CALLS_RECEIVED = Counter(
    "qrcharge_ocpp_calls_received_total",
    "CALLs received from chargers, by action and outcome (result or the CALLERROR code)",
    ["action", "outcome"],
)
CALL_SECONDS = Histogram(
    "qrcharge_ocpp_call_seconds",
    "Time from a CALL received to its answer sent, by action",
    ["action"],
    buckets=CALL_SECONDS_BUCKETS,
)
CALLS_SENT = Counter(
    "qrcharge_ocpp_calls_sent_total",
    "CALLs sent to chargers, by action and outcome (result, callerror, timeout, invalid)",
    ["action", "outcome"],
)
CALLERRORS = Counter(
    "qrcharge_ocpp_callerrors_sent_total",
    "CALLERRORs sent to chargers, by error code",
    ["code"],
)
HANDSHAKES_REFUSED = Counter(
    "qrcharge_ocpp_handshakes_refused_total",
    "WebSocket handshakes refused, by reason",
    ["reason"],
)
SETTLEMENTS = Counter(
    "qrcharge_settlements_total",
    "Settlement copies by source (upload, ocpp) and result (recorded, duplicate, or the "
    "refusal reason)",
    ["source", "result"],
)
PAYMENTS_CAPTURED = Counter(
    "qrcharge_payments_captured_total", "Payments captured, by who confirmed", ["kind"]
)
PAYMENTS_CAPTURED_AMOUNT = Counter(
    "qrcharge_payments_captured_minor_units_total", "Amount captured, in minor units"
)
STORE_COMMIT_SECONDS = Histogram(
    "qrcharge_store_commit_seconds",
    "Time of one store writer group commit",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
CONNECTED = Gauge(
    "qrcharge_chargers_connected", "Chargers with an open connection, by OCPP version", ["ocpp"]
)
ORDERS = Gauge("qrcharge_orders", "Orders by state", ["state"])
HOLDS = Gauge("qrcharge_holds_outstanding", "Orders whose hold is still placed")
HOLDS_AMOUNT = Gauge(
    "qrcharge_holds_outstanding_minor_units", "Sum of the holds still placed, in minor units"
)
STORE_BACKLOG = Gauge("qrcharge_store_backlog", "Operations waiting for the store writer")


@cache
def _child(metric: MetricWrapperBase, *labels: str) -> MetricWrapperBase:
    """A labelled child, made once (``labels()`` hashes and locks on every call)."""
    return metric.labels(*labels)


def call_received(action: str, outcome: str, seconds: float) -> None:
    _child(CALLS_RECEIVED, action, outcome).inc()  # type: ignore[attr-defined]
    _child(CALL_SECONDS, action).observe(seconds)  # type: ignore[attr-defined]


def call_sent(action: str, outcome: str) -> None:
    _child(CALLS_SENT, action, outcome).inc()  # type: ignore[attr-defined]


def callerror_sent(code: str) -> None:
    _child(CALLERRORS, code).inc()  # type: ignore[attr-defined]


def handshake_refused(reason: str) -> None:
    _child(HANDSHAKES_REFUSED, reason).inc()  # type: ignore[attr-defined]


def settlement(source: str, result: str) -> None:
    _child(SETTLEMENTS, source, result).inc()  # type: ignore[attr-defined]


def payment_captured(kind: str, amount: int) -> None:
    _child(PAYMENTS_CAPTURED, kind).inc()  # type: ignore[attr-defined]
    PAYMENTS_CAPTURED_AMOUNT.inc(amount)


def refresh_live(*, connected: Mapping[str, int], backlog: int) -> None:
    """Sets the gauges read from the process: connections by OCPP version, store backlog."""
    for version in ("1.6", "2.0.1"):
        CONNECTED.labels(version).set(connected.get(version, 0))
    STORE_BACKLOG.set(backlog)


def refresh_orders(*, orders: Mapping[str, int], holds: tuple[int, int]) -> None:
    """Sets the gauges read from the store: orders by state, holds still placed."""
    for state in set(orders) | KNOWN_ORDER_STATES:
        ORDERS.labels(state).set(orders.get(state, 0))
    HOLDS.set(holds[0])
    HOLDS_AMOUNT.set(holds[1])


KNOWN_ORDER_STATES = frozenset({"created", "started", "settled", "paid", "expired", "cancelled"})


# --- the cluster: which node this is, and whether it runs the once-per-cluster jobs ---------
LEADER = Gauge("qrcharge_leader", "1 while this node leads the cluster (runs the reaper), else 0")
NODE = Gauge("qrcharge_node_info", "This node's id (the value is always 1)", ["node"])


def set_leader(leading: bool) -> None:
    LEADER.set(1 if leading else 0)


def set_node(node_id: str) -> None:
    NODE.clear()
    NODE.labels(node_id).set(1)
