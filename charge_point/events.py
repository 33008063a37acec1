"""The charger's outbound events, as stored in the durable queue.

The station speaks in these protocol-independent terms; the 1.6 and 2.0.1 adapters translate
them into OCPP messages when they are delivered. Each kind is a queue row: ``kind``, the local
transaction id ``txn`` and a JSON ``payload`` (the fields below).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from charge_point.evse import Status, charging_state_201

if TYPE_CHECKING:
    from charge_point.session import Session


class Kind(StrEnum):
    """Queue row kinds, in the order a transaction produces them."""

    STARTED = "started"  # evse_id, id_tag, token_type, meter_wh, timestamp, offline, seq_no,
    #                      remote_start_id, charging_state, trigger
    UPDATED = "updated"  # evse_id, meter_wh, power_w, timestamp, offline, seq_no,
    #                      charging_state, trigger
    ENDED = "ended"  # evse_id, id_tag, meter_wh, timestamp, offline, seq_no, reason,
    #                  charging_state
    SETTLEMENT = "settlement"  # token, seq (DataTransfer Settlement after the above)


ORDER_TOKEN_TYPE = "Central"
"""The 2.0.1 idToken type of our order ids, and of queue rows and saved sessions
written before rows carried their token's type (the type those were always sent with)."""


class StopReason(StrEnum):
    """Why a transaction ended (OCPP 1.6 ``Reason`` names; the 2.0.1 adapter maps them)."""

    LOCAL = "Local"  # stop button
    REMOTE = "Remote"  # RemoteStop / RequestStopTransaction
    EV_DISCONNECTED = "EVDisconnected"
    POWER_LOSS = "PowerLoss"  # the charger restarted in the middle of the transaction
    HARD_RESET = "HardReset"
    SOFT_RESET = "SoftReset"
    UNLOCK_COMMAND = "UnlockCommand"
    DEAUTHORIZED = "DeAuthorized"
    OTHER = "Other"  # e.g. a fault


class Trigger(StrEnum):
    """Why a transaction message was sent (2.0.1 ``TriggerReasonEnumType`` names)."""

    AUTHORIZED = "Authorized"
    REMOTE_START = "RemoteStart"
    CHARGING_STATE_CHANGED = "ChargingStateChanged"
    METER_VALUE_PERIODIC = "MeterValuePeriodic"
    ENERGY_LIMIT_REACHED = "EnergyLimitReached"
    TIME_LIMIT_REACHED = "TimeLimitReached"
    STOP_AUTHORIZED = "StopAuthorized"
    REMOTE_STOP = "RemoteStop"
    EV_DEPARTED = "EVDeparted"
    ABNORMAL_CONDITION = "AbnormalCondition"
    RESET_COMMAND = "ResetCommand"
    UNLOCK_COMMAND = "UnlockCommand"


def transaction_row(
    session: Session,
    kind: Kind,
    *,
    status: Status,
    power_w: float,
    trigger: Trigger,
    at: float,
    online: bool,
    reason: StopReason | None = None,
) -> dict[str, Any]:
    """The payload of one transaction queue row; takes the session's next ``seq_no``."""
    return {
        "evse_id": session.evse_id,
        "id_tag": session.id_tag,
        "token_type": session.token_type,
        "meter_wh": session.meter_start_wh if kind is Kind.STARTED else session.meter_wh,
        "power_w": round(power_w),
        "timestamp": at,
        "offline": not online,  # the event happened while the link was down
        "seq_no": session.next_seq_no(),
        "charging_state": charging_state_201(status),
        "trigger": trigger.value,
        "remote_start_id": session.remote_start_id,
        "reservation_id": session.reservation_id if kind is Kind.STARTED else None,
        "reason": None if reason is None else reason.value,
    }
