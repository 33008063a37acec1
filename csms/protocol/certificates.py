"""Certificate management block: SignCertificate (1.6 security extension and 2.0.1 A02/A03).

A charger sends its CSR; the CSMS answers at once, and when it accepted, sends
``CertificateSigned`` with the chain afterwards, from the connection's outbox (a CALL
awaited inside a handler would deadlock the connection's reader). Without a configured CA
(:mod:`csms.charger_ca`) the answer is an honest ``Rejected``, as it is for a CSR the CA will
not sign and for a certificate type it does not issue (2.0.1 ``V2GCertificate``: the ISO 15118
PKI is not ours). The request, the answer and the certificate sent are kept as notifications.

The 2.0.1 messages about ISO 15118 contract certificates and OCSP (``Get15118EVCertificate``,
``GetCertificateStatus``) are answered ``Failed``: this CSMS has neither service.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from csms.charger_ca import IssuedCertificate
from csms.context import CsmsContext
from csms.errors import CsrRefused
from csms.protocol import notifications
from qr_extension.wire import ocpp_timestamp

LOG = logging.getLogger("csms.certificates")
CHARGING_STATION = "ChargingStationCertificate"
NO_SERVICE = "NotSupported"  # statusInfo.reasonCode (string[20]) of what the CSMS cannot do


@dataclass(frozen=True, slots=True)
class SignAnswer:
    """``Accepted`` with the certificate to send, or ``Rejected`` with a reason code (2.0.1
    ``statusInfo.reasonCode``, string[20]) and the reason in words."""

    status: str
    code: str | None = None
    reason: str | None = None
    issued: IssuedCertificate | None = None

    def status_info(self) -> dict[str, str] | None:
        """The 2.0.1 ``statusInfo`` (snake_case, for the library) saying why, if rejected."""
        if self.code is None or self.reason is None:
            return None
        return {"reason_code": self.code, "additional_info": self.reason[:512]}


async def sign_certificate(
    ctx: CsmsContext, charger_id: str, *, csr: str, certificate_type: str | None = None
) -> SignAnswer:
    """Decides and, when it can, signs; the caller answers, then sends the certificate."""
    if certificate_type not in (None, CHARGING_STATION):
        answer = SignAnswer("Rejected", NO_SERVICE, f"{certificate_type} not issued here")
    elif ctx.charger_ca is None:
        answer = SignAnswer("Rejected", NO_SERVICE, "no CA is configured to sign certificates")
    else:
        try:  # signing is CPU work (an RSA CA key takes milliseconds): not on the event loop
            issued = await asyncio.to_thread(ctx.charger_ca.sign, csr, charger_id, now=ctx.clock())
            answer = SignAnswer("Accepted", issued=issued)
        except CsrRefused as refused:
            answer = SignAnswer("Rejected", "InvalidCSR", str(refused))
    if answer.reason:
        LOG.warning("%s: SignCertificate rejected: %s", charger_id, answer.reason)
    return answer


async def record(
    ctx: CsmsContext, charger_id: str, request: dict[str, Any], answer: SignAnswer
) -> None:
    """Keeps the request (snake_case, as the handler got it) with the answer and, when one
    was signed, the certificate that will be sent."""
    await notifications.record(ctx, charger_id, "SignCertificate", request, answer=answer.status)
    if answer.issued is not None:
        await notifications.record(
            ctx,
            charger_id,
            "CertificateSigned",
            {
                "serialNumber": answer.issued.serial_number,
                "notAfter": ocpp_timestamp(answer.issued.not_after),
                "certificateChain": answer.issued.chain_pem,
            },
            snake_case=False,
        )


def certificate_signed(version: str, issued: IssuedCertificate) -> dict[str, Any]:
    """The ``CertificateSigned`` request (camelCase) that delivers ``issued``."""
    payload: dict[str, Any] = {"certificateChain": issued.chain_pem}
    if version != "1.6":
        payload["certificateType"] = CHARGING_STATION
    return payload


def no_service(what: str) -> dict[str, str]:
    """The 2.0.1 ``statusInfo`` (snake_case) of a request for a service this CSMS lacks."""
    return {"reason_code": NO_SERVICE, "additional_info": f"this CSMS has no {what}"}
