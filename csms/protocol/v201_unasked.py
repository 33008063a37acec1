"""OCPP 2.0.1 adapter, continued: what a station may send unasked beyond the core messages.

Monitoring events and reports, customer information, display messages, charging limits and
needs, reservation updates and firmware publication are acknowledged and kept
(:mod:`csms.protocol.notifications`); certificate requests go to the certificate block
(:mod:`csms.protocol.certificates`). Where an answer has a status, it says the truth: this
CSMS computes no charging schedules, has no ISO 15118 contract-certificate service and no
OCSP responder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ocpp.v201 import call_result
from ocpp.v201.enums import Action

from csms.context import CsmsContext
from csms.protocol import certificates, notifications, reservations
from csms.protocol.base import on


class Unasked201:
    """Handlers mixed into :class:`~csms.protocol.v201.ChargePoint201`."""

    _ctx: CsmsContext

    if TYPE_CHECKING:  # provided by CsmsChargePoint

        @property
        def charger_id(self) -> str: ...

        def defer(self, action: str, payload: dict[str, Any]) -> None: ...

    async def _keep(self, action: str, payload: dict[str, Any], answer: str | None = None) -> None:
        await notifications.record(self._ctx, self.charger_id, action, payload, answer=answer)

    # --- diagnostics and monitoring (N) -------------------------------------------------------

    @on(Action.notify_event)
    async def on_notify_event(self, **payload: Any) -> call_result.NotifyEvent:
        await self._keep("NotifyEvent", payload)
        return call_result.NotifyEvent()

    @on(Action.notify_monitoring_report)
    async def on_notify_monitoring_report(
        self, **payload: Any
    ) -> call_result.NotifyMonitoringReport:
        await self._keep("NotifyMonitoringReport", payload)
        return call_result.NotifyMonitoringReport()

    @on(Action.notify_customer_information)
    async def on_notify_customer_information(
        self, **payload: Any
    ) -> call_result.NotifyCustomerInformation:
        await self._keep("NotifyCustomerInformation", payload)
        return call_result.NotifyCustomerInformation()

    # --- display messages (O), reservations (H), firmware publication (L) ---------------------

    @on(Action.notify_display_messages)
    async def on_notify_display_messages(self, **payload: Any) -> call_result.NotifyDisplayMessages:
        await self._keep("NotifyDisplayMessages", payload)
        return call_result.NotifyDisplayMessages()

    @on(Action.reservation_status_update)
    async def on_reservation_status_update(
        self, **payload: Any
    ) -> call_result.ReservationStatusUpdate:
        await self._keep("ReservationStatusUpdate", payload)
        await reservations.status_update(
            self._ctx,
            self.charger_id,
            payload["reservation_id"],
            payload["reservation_update_status"],
        )
        return call_result.ReservationStatusUpdate()

    @on(Action.publish_firmware_status_notification)
    async def on_publish_firmware_status(
        self, **payload: Any
    ) -> call_result.PublishFirmwareStatusNotification:
        await self._keep("PublishFirmwareStatusNotification", payload)
        return call_result.PublishFirmwareStatusNotification()

    # --- smart charging (K) -------------------------------------------------------------------

    @on(Action.report_charging_profiles)
    async def on_report_charging_profiles(
        self, **payload: Any
    ) -> call_result.ReportChargingProfiles:
        await self._keep("ReportChargingProfiles", payload)
        return call_result.ReportChargingProfiles()

    @on(Action.notify_charging_limit)
    async def on_notify_charging_limit(self, **payload: Any) -> call_result.NotifyChargingLimit:
        await self._keep("NotifyChargingLimit", payload)
        return call_result.NotifyChargingLimit()

    @on(Action.cleared_charging_limit)
    async def on_cleared_charging_limit(self, **payload: Any) -> call_result.ClearedChargingLimit:
        await self._keep("ClearedChargingLimit", payload)
        return call_result.ClearedChargingLimit()

    @on(Action.notify_ev_charging_needs)
    async def on_notify_ev_charging_needs(
        self, **payload: Any
    ) -> call_result.NotifyEVChargingNeeds:
        """``Rejected``: no schedule will follow (the station charges without one)."""
        await self._keep("NotifyEVChargingNeeds", payload, answer="Rejected")
        return call_result.NotifyEVChargingNeeds(
            status="Rejected", status_info=certificates.no_service("charging schedules")
        )

    @on(Action.notify_ev_charging_schedule)
    async def on_notify_ev_charging_schedule(
        self, **payload: Any
    ) -> call_result.NotifyEVChargingSchedule:
        await self._keep("NotifyEVChargingSchedule", payload, answer="Accepted")
        return call_result.NotifyEVChargingSchedule(status="Accepted")

    # --- certificates (A, M) ------------------------------------------------------------------

    @on(Action.sign_certificate)
    async def on_sign_certificate(self, csr: str, **kw: Any) -> call_result.SignCertificate:
        certificate_type = kw.get("certificate_type")
        answer = await certificates.sign_certificate(
            self._ctx, self.charger_id, csr=csr, certificate_type=certificate_type
        )
        await certificates.record(self._ctx, self.charger_id, {"csr": csr, **kw}, answer)
        if answer.issued is not None:  # sent once this answer is
            self.defer("CertificateSigned", certificates.certificate_signed("2.0.1", answer.issued))
        return call_result.SignCertificate(status=answer.status, status_info=answer.status_info())

    @on(Action.get_15118_ev_certificate)
    async def on_get_15118_ev_certificate(
        self, **payload: Any
    ) -> call_result.Get15118EVCertificate:
        await self._keep("Get15118EVCertificate", payload, answer="Failed")
        return call_result.Get15118EVCertificate(
            status="Failed",
            exi_response="",
            status_info=certificates.no_service("ISO 15118 certificate service"),
        )

    @on(Action.get_certificate_status)
    async def on_get_certificate_status(self, **payload: Any) -> call_result.GetCertificateStatus:
        await self._keep("GetCertificateStatus", payload, answer="Failed")
        return call_result.GetCertificateStatus(
            status="Failed", status_info=certificates.no_service("OCSP responder")
        )
