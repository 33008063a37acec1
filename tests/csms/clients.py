"""OCPP clients for the tests: the ``ocpp`` library's own ChargePoint classes over websockets."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from typing import Any

import websockets
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as Cp16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as Cp201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from websockets.typing import Subprotocol


class Client16(Cp16):  # type: ignore[misc]
    """A 1.6 charger that records what the CSMS sent it and answers remote commands."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.data_transfers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.certificates: asyncio.Queue[dict[str, Any]] = asyncio.Queue()  # CertificateSigned

    def _note(self, action: str, **kw: Any) -> None:
        self.received.append((action, kw))

    @on("DataTransfer")
    async def on_data_transfer(self, vendor_id: str, **kw: Any) -> Any:
        await self.data_transfers.put({"vendor_id": vendor_id, **kw})
        return result16.DataTransfer(status="Accepted")

    @on("CertificateSigned")
    async def on_certificate_signed(self, certificate_chain: str) -> Any:
        await self.certificates.put({"certificate_chain": certificate_chain})
        return result16.CertificateSigned(status="Accepted")

    @on("Reset")
    def on_reset(self, type: str) -> Any:
        self._note("Reset", type=type)
        return result16.Reset(status="Accepted")

    @on("ChangeConfiguration")
    def on_change_configuration(self, key: str, value: str) -> Any:
        self._note("ChangeConfiguration", key=key, value=value)
        return result16.ChangeConfiguration(status="Accepted")

    @on("GetConfiguration")
    def on_get_configuration(self, **kw: Any) -> Any:
        self._note("GetConfiguration", **kw)
        return result16.GetConfiguration(
            configuration_key=[{"key": "HeartbeatInterval", "readonly": False, "value": "120"}]
        )

    @on("RemoteStartTransaction")
    def on_remote_start(self, id_tag: str, **kw: Any) -> Any:
        self._note("RemoteStartTransaction", id_tag=id_tag, **kw)
        return result16.RemoteStartTransaction(status="Accepted")

    @on("RemoteStopTransaction")
    def on_remote_stop(self, transaction_id: int) -> Any:
        self._note("RemoteStopTransaction", transaction_id=transaction_id)
        return result16.RemoteStopTransaction(status="Accepted")

    @on("UnlockConnector")
    def on_unlock(self, connector_id: int) -> Any:
        self._note("UnlockConnector", connector_id=connector_id)
        return result16.UnlockConnector(status="Unlocked")

    @on("TriggerMessage")
    def on_trigger(self, requested_message: str, **kw: Any) -> Any:
        self._note("TriggerMessage", requested_message=requested_message, **kw)
        return result16.TriggerMessage(status="Accepted")

    @on("SendLocalList")
    def on_send_local_list(self, list_version: int, update_type: str, **kw: Any) -> Any:
        self._note("SendLocalList", list_version=list_version, update_type=update_type, **kw)
        return result16.SendLocalList(status="Accepted")

    @on("GetLocalListVersion")
    def on_get_local_list_version(self) -> Any:
        self._note("GetLocalListVersion")
        return result16.GetLocalListVersion(list_version=7)

    @on("ClearCache")
    def on_clear_cache(self) -> Any:
        self._note("ClearCache")
        return result16.ClearCache(status="Accepted")


# What Client201 reports for GetBaseReport / GetReport (snake_case, as the library takes it):
# two NotifyReport parts, as a charger splits a long report.
REPORT_PARTS: list[list[dict[str, Any]]] = [
    [
        {
            "component": {"name": "OCPPCommCtrlr"},
            "variable": {"name": "HeartbeatInterval"},
            "variable_attribute": [{"type": "Actual", "value": "120", "persistent": True}],
            "variable_characteristics": {"data_type": "integer", "supports_monitoring": False},
        },
        {
            "component": {"name": "AuthCtrlr"},
            "variable": {"name": "Enabled"},
            "variable_attribute": [{"value": "true", "mutability": "ReadOnly"}],
        },
    ],
    [
        {
            "component": {"name": "EVSE", "evse": {"id": 1}},
            "variable": {"name": "Power"},
            "variable_attribute": [{"type": "MaxSet", "value": "22000"}],
            "variable_characteristics": {"data_type": "decimal", "supports_monitoring": True},
        },
    ],
]


class Client201(Cp201):  # type: ignore[misc]
    """A 2.0.1 charger that records what the CSMS sent it and answers remote commands.

    It answers GetBaseReport / GetReport with ``report_status`` and, when that is
    ``Accepted``, then sends ``report_parts`` (GetReport: only the entries its
    ``componentVariable`` names) in NotifyReport parts, ``tbc`` true until the last, from a
    task of its own (a CALL awaited inside a handler would deadlock the reader). The tasks
    are kept in ``report_tasks`` so that a test can await them and see their errors.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.data_transfers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.report_status = "Accepted"
        self.report_parts: list[list[dict[str, Any]]] = REPORT_PARTS
        self.report_tasks: list[asyncio.Task[None]] = []
        self.reports_sent: list[dict[str, Any]] = []  # requestId, seqNo, tbc, entries of each
        self.certificates: asyncio.Queue[dict[str, Any]] = asyncio.Queue()  # CertificateSigned

    def _note(self, action: str, **kw: Any) -> None:
        self.received.append((action, kw))

    @on("DataTransfer")
    async def on_data_transfer(self, vendor_id: str, **kw: Any) -> Any:
        await self.data_transfers.put({"vendor_id": vendor_id, **kw})
        return result201.DataTransfer(status="Accepted")

    @on("CertificateSigned")
    async def on_certificate_signed(self, certificate_chain: str, **kw: Any) -> Any:
        await self.certificates.put({"certificate_chain": certificate_chain, **kw})
        return result201.CertificateSigned(status="Accepted")

    @on("Reset")
    def on_reset(self, type: str, **kw: Any) -> Any:
        self._note("Reset", type=type)
        return result201.Reset(status="Accepted")

    @on("SetVariables")
    def on_set_variables(self, set_variable_data: list[dict[str, Any]]) -> Any:
        self._note("SetVariables", set_variable_data=set_variable_data)
        return result201.SetVariables(
            set_variable_result=[
                {
                    "attribute_status": "Accepted",
                    "component": d["component"],
                    "variable": d["variable"],
                }
                for d in set_variable_data
            ]
        )

    @on("GetVariables")
    def on_get_variables(self, get_variable_data: list[dict[str, Any]]) -> Any:
        self._note("GetVariables", get_variable_data=get_variable_data)
        return result201.GetVariables(
            get_variable_result=[
                {
                    "attribute_status": "Accepted",
                    "attribute_value": "120",
                    "component": d["component"],
                    "variable": d["variable"],
                }
                for d in get_variable_data
            ]
        )

    @on("RequestStartTransaction")
    def on_request_start(self, id_token: dict[str, Any], remote_start_id: int, **kw: Any) -> Any:
        self._note("RequestStartTransaction", id_token=id_token, remote_start_id=remote_start_id)
        return result201.RequestStartTransaction(status="Accepted")

    @on("RequestStopTransaction")
    def on_request_stop(self, transaction_id: str) -> Any:
        self._note("RequestStopTransaction", transaction_id=transaction_id)
        return result201.RequestStopTransaction(status="Accepted")

    @on("UnlockConnector")
    def on_unlock(self, evse_id: int, connector_id: int) -> Any:
        self._note("UnlockConnector", evse_id=evse_id, connector_id=connector_id)
        return result201.UnlockConnector(status="Unlocked")

    @on("TriggerMessage")
    def on_trigger(self, requested_message: str, **kw: Any) -> Any:
        self._note("TriggerMessage", requested_message=requested_message)
        return result201.TriggerMessage(status="Accepted")

    @on("SendLocalList")
    def on_send_local_list(self, version_number: int, update_type: str, **kw: Any) -> Any:
        self._note("SendLocalList", version_number=version_number, update_type=update_type)
        return result201.SendLocalList(status="Accepted")

    @on("GetLocalListVersion")
    def on_get_local_list_version(self) -> Any:
        self._note("GetLocalListVersion")
        return result201.GetLocalListVersion(version_number=7)

    @on("ClearCache")
    def on_clear_cache(self) -> Any:
        self._note("ClearCache")
        return result201.ClearCache(status="Accepted")

    @on("GetBaseReport")
    def on_get_base_report(self, request_id: int, report_base: str, **kw: Any) -> Any:
        self._note("GetBaseReport", request_id=request_id, report_base=report_base)
        return result201.GetBaseReport(status=self.report_status)

    @after("GetBaseReport")
    def after_get_base_report(self, request_id: int, **kw: Any) -> None:
        if self.report_status == "Accepted":
            self._start_report(request_id, self.report_parts)

    @on("GetReport")
    def on_get_report(self, request_id: int, **kw: Any) -> Any:
        self._note("GetReport", request_id=request_id, **kw)
        if self.report_status != "Accepted":
            return result201.GetReport(status=self.report_status)
        parts = self._selected(kw.get("component_variable"))
        return result201.GetReport(status="Accepted" if parts else "EmptyResultSet")

    @after("GetReport")
    def after_get_report(self, request_id: int, **kw: Any) -> None:
        parts = self._selected(kw.get("component_variable"))
        if self.report_status == "Accepted" and parts:
            self._start_report(request_id, parts)

    def _selected(self, wanted: list[dict[str, Any]] | None) -> list[list[dict[str, Any]]]:
        """The report parts limited to the named component (and variable, if given)."""
        if not wanted:
            return self.report_parts

        def named(entry: dict[str, Any]) -> bool:
            return any(
                w["component"]["name"] == entry["component"]["name"]
                and ("variable" not in w or w["variable"]["name"] == entry["variable"]["name"])
                for w in wanted
            )

        parts = [[e for e in part if named(e)] for part in self.report_parts]
        return [part for part in parts if part]

    def _start_report(self, request_id: int, parts: list[list[dict[str, Any]]]) -> None:
        self.report_tasks.append(asyncio.create_task(self._send_report(request_id, parts)))

    async def _send_report(self, request_id: int, parts: list[list[dict[str, Any]]]) -> None:
        for seq_no, part in enumerate(parts):
            tbc = seq_no < len(parts) - 1
            await self.call(
                call201.NotifyReport(
                    request_id=request_id,
                    generated_at="2026-11-27T02:00:00.000Z",
                    seq_no=seq_no,
                    report_data=part,
                    tbc=tbc,
                ),
                suppress=False,  # a CALLERROR raises, and the test sees it in report_tasks
            )
            self.reports_sent.append(
                {"requestId": request_id, "seqNo": seq_no, "tbc": tbc, "entries": len(part)}
            )


@contextlib.asynccontextmanager
async def connect(
    url: str,
    cls: type[Any],
    subprotocol: str,
    headers: dict[str, str],
    *,
    tls: ssl.SSLContext | None = None,
) -> AsyncIterator[Any]:
    """Opens a WebSocket (``tls`` for a wss:// URL), runs the client's reader task, closes both
    at the end."""
    charger_id = url.rsplit("/", 1)[1]
    async with websockets.connect(
        url,
        subprotocols=[Subprotocol(subprotocol)],
        additional_headers=headers,
        open_timeout=5,
        ssl=tls,
    ) as ws:
        cp = cls(charger_id, ws, response_timeout=5)
        reader = asyncio.create_task(cp.start())
        try:
            yield cp
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
