"""Our ``org.qrcharge`` DataTransfers on one connection, and what the CSMS made of them.

The vendor messages (``SettlementKey``, ``Settlement``, ``Synced``) are an extension: a CSMS
without it must still get a normal 1.6 / 2.0.1 charger. A CSMS shows it lacks the extension
by answering a vendor message with a ``NotImplemented`` / ``NotSupported`` CALLERROR, or with
``UnknownVendorId`` / ``UnknownMessageId``. From then on, for the rest of the connection,
:class:`VendorChannel` sends none of them: one warning says so, and a settlement reaches that
CSMS only through the driver's upload (and the OCPP transaction, if the CSMS took it). The
next connection asks again, so a CSMS that gains the extension is noticed after a reconnect.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from charge_point.protocol.callerrors import CALL_REFUSED, error_code, has_no_handler
from qr_extension.wire import MSG_SETTLEMENT, VENDOR_ID

log = logging.getLogger(__name__)

UNKNOWN_TO_CSMS = frozenset({"UnknownVendorId", "UnknownMessageId"})


class VendorChannel:
    """Sends our vendor DataTransfers unless the CSMS is known to lack the extension."""

    def __init__(self, send: Callable[[str, str], Awaitable[str]], charger_id: str) -> None:
        self._send = send
        self._charger_id = charger_id
        self.lacking = False  # the CSMS showed, on this connection, that it has no extension

    async def send(self, message_id: str, data: str) -> str | None:
        """The DataTransfer's status (``Accepted``, ``Rejected`` ...), or None when it was not
        sent or the CSMS does not know it. CALLERRORs other than ``NotImplemented`` /
        ``NotSupported`` (``InternalError`` ...) propagate: the caller decides."""
        if self.lacking:
            return None
        try:
            status = await self._send(message_id, data)
        except CALL_REFUSED as exc:
            if not has_no_handler(exc):
                raise
            answer = f"a {error_code(exc)} CALLERROR"
        else:
            if status not in UNKNOWN_TO_CSMS:
                return status
            answer = status
        self.lacking = True
        log.warning(
            "%s: the CSMS answered DataTransfer %s/%s with %s: it has no %s extension; "
            "no vendor messages on this connection (settlements reach it by the driver's upload)",
            self._charger_id,
            VENDOR_ID,
            message_id,
            answer,
            VENDOR_ID,
        )
        return None

    async def deliver_settlement(self, payload: dict[str, Any]) -> None:
        """A queued ``settlement`` row. Not sent to a CSMS that lacks the extension (the row is
        done: the driver's upload settles the order); other CALLERRORs propagate to the queue,
        which retries within its bounded policy."""
        status = await self.send(MSG_SETTLEMENT, payload["token"])
        if status is None:
            log.info(
                "%s: settlement %s not sent: the CSMS has no %s extension",
                self._charger_id,
                payload["seq"],
                VENDOR_ID,
            )
        elif status != "Accepted":
            log.warning("%s: Settlement %s answered %s", self._charger_id, payload["seq"], status)
