"""A charger's registration as one connection knows it, and which CALLs that lets through.

The operator decides whether a charger may work (``chargers.registration``: Accepted,
Pending, Rejected); the charger learns it from the answer to its BootNotification. Until that
answer is ``Accepted`` the charger may send (OCPP 1.6 section 4.2, 2.0.1 B01-B03):

* BootNotification, always;
* while ``Pending``, what the CSMS asked for on this connection: the NotifyReport parts of a
  GetBaseReport or GetReport it accepted, and the message a TriggerMessage requested, except
  the ones that carry transactions or meter data;
* while ``Rejected``, nothing else.

Everything else is refused with CALLERROR ``SecurityError`` (2.0.1 B01.FR.10, B02.FR.09,
B03.FR.07; 1.6 names no code for it, and its ``SecurityError`` is "a security issue prevented
the receiver from completing the action"). A DataTransfer is never among the asked-for
messages, so nothing a charger sends before it is accepted reaches money or keys.

A connection opens in the state stored for the charger (a charger accepted before may
reconnect without booting again). The state then changes by this table, where an operator's
decision can only take acceptance away at once; giving it takes a new boot, whose answer
tells the charger (the CSMS asks for one with TriggerMessage)::

    state      boot answered S   operator: Accepted   operator: Pending   operator: Rejected
    Accepted   S                 Accepted             Pending             Rejected
    Pending    S                 Pending              Pending             Rejected
    Rejected   S                 Rejected             Rejected            Rejected

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ocpp_rpc.violations import Violation

ACCEPTED, PENDING, REJECTED = "Accepted", "Pending", "Rejected"
STATES = (ACCEPTED, PENDING, REJECTED)  # in order: each refuses more than the one before
BOOT = "BootNotification"
# what a request of the CSMS, once accepted by a pending charger, lets it send
_REPORTS = {"GetBaseReport": "NotifyReport", "GetReport": "NotifyReport"}
# TriggerMessage's requestedMessage (1.6 and 2.0.1) -> the action it asks for; MeterValues and
# TransactionEvent are left out: a charger that is not accepted sends no transaction data
_TRIGGERABLE = {
    "BootNotification": BOOT,
    "Heartbeat": "Heartbeat",
    "StatusNotification": "StatusNotification",
    "FirmwareStatusNotification": "FirmwareStatusNotification",
    "DiagnosticsStatusNotification": "DiagnosticsStatusNotification",
    "LogStatusNotification": "LogStatusNotification",
    "PublishFirmwareStatusNotification": "PublishFirmwareStatusNotification",
    "SignChargingStationCertificate": "SignCertificate",
    "SignV2GCertificate": "SignCertificate",
    "SignCombinedCertificate": "SignCertificate",
}


@dataclass(frozen=True, slots=True)
class Registration:
    """``state``: what the charger may do now; ``asked``: the actions the CSMS asked a
    pending charger for."""

    state: str
    asked: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"registration {self.state!r} is not one of {STATES}")

    @property
    def accepted(self) -> bool:
        return self.state == ACCEPTED

    def refusal(self, action: str) -> Violation | None:
        """Why the charger may not send ``action`` now, or None when it may."""
        if self.state == ACCEPTED or action == BOOT:
            return None
        if self.state == PENDING and action in self.asked:
            return None
        may = "BootNotification and what the CSMS asks for"
        if self.state != PENDING:
            may = "only BootNotification"
        detail = (
            f"the charger is {self.state}: until a BootNotification is answered Accepted it "
            f"may send {may}"
        )
        return Violation("registration", detail, action=action)

    def booted(self, status: str) -> Registration:
        """After the CSMS answered a BootNotification with ``status``."""
        return Registration(status)

    def decided(self, registration: str) -> Registration:
        """After the operator set the charger's registration: acceptance is taken away at
        once; it is given only by the answer to the next boot."""
        if STATES.index(registration) <= STATES.index(self.state):
            return self
        return Registration(registration)

    def answered(
        self, action: str, request: Mapping[str, Any], answer: Mapping[str, Any]
    ) -> Registration:
        """After the charger answered the CSMS's ``action``: what it was asked to send."""
        if self.state != PENDING or answer.get("status") != "Accepted":
            return self
        if action == "TriggerMessage":
            wanted = _TRIGGERABLE.get(str(request.get("requestedMessage")))
        else:
            wanted = _REPORTS.get(action)
        if wanted is None:
            return self
        return Registration(self.state, self.asked | {wanted})
