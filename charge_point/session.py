"""A running transaction: who started it, what it has used, and whether a limit is reached.

Usage is booked interval by interval with the core's ``split_usage`` / ``merge_usage``, so
the buckets always sum to the meter delta since the start, and the cost is the core's
``compute_cost`` over exactly those buckets: the same numbers the CSMS recomputes from the
settlement. A session started from a start QR carries its :class:`StartAuthorization` (tariff
and limits); a session started by RFID or a remote start has none and is billed by the CSMS
from the OCPP meter data.

A session is persisted as a plain dict (:meth:`to_record`); the start token is kept verbatim,
so a restarted charger re-reads tariff and limits from the very bytes it verified.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from charge_point.events import ORDER_TOKEN_TYPE
from charge_point.qrstart import StartAuthorization, read_authorization
from qr_extension.keys import SigningKey
from qr_extension.settlement import build_settlement, sign_settlement
from qr_extension.tariff import (
    Cost,
    LimitReason,
    UsageBucket,
    compute_cost,
    limit_reached,
    merge_usage,
    split_usage,
)


@dataclass
class Session:
    """One transaction on one EVSE."""

    local_id: str  # the charger's transaction serial (2.0.1 transactionId, settlement txn)
    evse_id: int
    id_tag: str  # 1.6 idTag / 2.0.1 idToken: the order id for QR and remote starts
    started_at: float  # epoch seconds
    meter_start_wh: int
    offline: bool  # started while the CSMS link was down
    token: str | None = None  # the verified start token, if started from a QR code
    remote_start_id: int | None = None
    auth: StartAuthorization | None = None
    usage: tuple[UsageBucket, ...] = ()
    meter_wh: int = 0  # last booked register value
    booked_until: float = 0.0  # time up to which usage is booked
    limit: LimitReason | None = None  # set once a limit suspended the energy
    seq_no: int = 0  # 2.0.1 seqNo of the next TransactionEvent
    last_sample_at: float = 0.0
    token_type: str = ORDER_TOKEN_TYPE  # 2.0.1 idToken type, kept as the token came
    saved_at: float = 0.0  # booked_until when the session was last saved (not persisted)
    reservation_id: int | None = None  # the reservation it used (sent with its start)

    def __post_init__(self) -> None:
        if not self.meter_wh:
            self.meter_wh = self.meter_start_wh
        if not self.booked_until:
            self.booked_until = self.started_at
        if not self.last_sample_at:
            self.last_sample_at = self.started_at

    @property
    def energy_wh(self) -> int:
        return self.meter_wh - self.meter_start_wh

    def next_seq_no(self) -> int:
        """The gapless 2.0.1 ``seqNo`` of the next event of this transaction."""
        value = self.seq_no
        self.seq_no += 1
        return value

    def book(self, until: float, wh: int, *, idle: bool) -> None:
        """Books ``[booked_until, until)`` with ``wh`` delivered (charging) or none (idle)."""
        if until < self.booked_until:
            return
        if self.auth is not None:
            interval = split_usage(self.auth.tariff, self.booked_until, until, wh, idle=idle)
            self.usage = merge_usage(self.usage, interval)
        self.meter_wh += wh
        self.booked_until = until

    def remaining_wh(self) -> float | None:
        """Energy left under the order's energy limit (None: no energy limit)."""
        if self.auth is None or self.auth.limits.energy_wh is None:
            return None
        return max(0, self.auth.limits.energy_wh - self.energy_wh)

    def check_limit(self) -> LimitReason | None:
        """The limit reached now (energy, time, or running cost >= lim.amt), if any."""
        if self.auth is None:
            return None
        return limit_reached(
            self.auth.tariff,
            self.auth.limits,
            self.usage,
            elapsed_s=self.booked_until - self.started_at,
        )

    def cost(self) -> Cost | None:
        """The cost so far, held to the tariff cap and to lim.amt."""
        if self.auth is None:
            return None
        return compute_cost(self.auth.tariff, self.usage, limit_amount=self.auth.limits.amount)

    # --- persistence --------------------------------------------------------------------
    def to_record(self) -> dict[str, Any]:
        return {
            "local_id": self.local_id,
            "evse_id": self.evse_id,
            "id_tag": self.id_tag,
            "started_at": self.started_at,
            "meter_start_wh": self.meter_start_wh,
            "offline": self.offline,
            "token": self.token,
            "remote_start_id": self.remote_start_id,
            "usage": [[b.tou_index, b.wh, b.charging_s, b.idle_s] for b in self.usage],
            "meter_wh": self.meter_wh,
            "booked_until": self.booked_until,
            "limit": None if self.limit is None else self.limit.value,
            "seq_no": self.seq_no,
            "last_sample_at": self.last_sample_at,
            "token_type": self.token_type,
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Session:
        token = rec.get("token")
        return cls(
            local_id=rec["local_id"],
            evse_id=rec["evse_id"],
            id_tag=rec["id_tag"],
            started_at=rec["started_at"],
            meter_start_wh=rec["meter_start_wh"],
            offline=rec["offline"],
            token=token,
            remote_start_id=rec.get("remote_start_id"),
            auth=read_authorization(token) if token else None,
            usage=tuple(UsageBucket(*b) for b in rec["usage"]),
            meter_wh=rec["meter_wh"],
            booked_until=rec["booked_until"],
            limit=None if rec["limit"] is None else LimitReason(rec["limit"]),
            seq_no=rec["seq_no"],
            last_sample_at=rec["last_sample_at"],
            token_type=rec.get("token_type", ORDER_TOKEN_TYPE),
        )


def sign_session(
    session: Session,
    *,
    key: SigningKey,
    audience: str,
    reason: str,
    stopped_at: float,
    seq: int,
    issued_at: float,
) -> str:
    """The signed settlement of a QR-started session that has ended. ``rsn`` is
    the limit that suspended the energy, if one did, else why the session ended."""
    assert session.auth is not None, "only QR-started sessions are settled by the charger"
    settlement = build_settlement(
        session.auth,
        audience=audience,
        transaction_id=session.local_id,
        started_at=int(session.started_at),
        stopped_at=max(int(stopped_at), int(session.started_at)),
        meter_start_wh=session.meter_start_wh,
        meter_stop_wh=session.meter_wh,
        usage=session.usage,
        reason=session.limit.value if session.limit is not None else reason,
        seq=seq,
        offline=session.offline,
        issued_at=int(issued_at),
    )
    return sign_settlement(settlement, key)
