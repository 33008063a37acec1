"""The operator page's command forms build payloads the OCPP schemas accept: every command of
each version, built in Chromium by the page's own module from its default fields (only the
required ones filled) and from every field filled, is validated against the official schema
of that version (the ``ocpp`` library's files, as the CSMS validates them), after the
CSMS's own completion: a generated ``requestId`` (report requests, 2.0.1 firmware and log
requests) or reservation id, and its own upload address for a GetDiagnostics / GetLog whose
location was left empty."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import ocpp
import pytest
from jsonschema import Draft4Validator
from playwright.sync_api import Browser

from csms.api.routes.admin_commands import REPORT_REQUESTS, CommandAction, with_request_id
from csms.protocol.reservations import with_reservation_id
from tests.e2e.conftest import Demo

SCHEMAS = Path(ocpp.__file__).parent
SCRIPT = """async (version) => {
  const { COMMANDS, commandsOf } = await import("/js/operator/commands.js");
  const sample = (f) => {
    if (f.options) return Array.isArray(f.options[0]) ? f.options[0][0] : f.options[0];
    if (f.type === "number") return "7";
    if (f.type === "url") return "https://files.example.org/upload";
    if (f.type === "datetime-local") return "2026-12-06T12:00";
    return "X-1";
  };
  const out = {};
  for (const name of commandsOf(version)) {
    const fields = COMMANDS[name].fields(version);
    const least = {};
    const most = {};
    for (const f of fields) {
      const given = f.value === undefined || f.value === "" ? null : String(f.value);
      if (f.required || given !== null || f.options) least[f.name] = given ?? sample(f);
      most[f.name] = given ?? sample(f);
    }
    out[name] = [COMMANDS[name].build(least, version), COMMANDS[name].build(most, version)];
  }
  return out;
}"""


UPLOAD = "http://127.0.0.1:8000/api/v1/uploads/CP-1/token-of-the-csms"


def completed(action: str, version: str, payload: dict[str, Any]) -> dict[str, Any]:
    """What the CSMS sends for ``payload`` (``csms.protocol.remote.prepare`` and
    :func:`with_request_id`): the fields the page may leave it to fill."""
    if action in REPORT_REQUESTS:
        return with_request_id(CommandAction(action), payload)
    if action == "ReserveNow":
        return with_reservation_id(version, payload)
    payload = dict(payload)
    if version == "2.0.1" and action in ("UpdateFirmware", "GetLog"):
        payload.setdefault("requestId", 7)
    if action == "GetDiagnostics":
        payload.setdefault("location", UPLOAD)
    if action == "GetLog":
        payload["log"] = {"remoteLocation": UPLOAD, **payload.get("log", {})}
    return payload


def schema(version: str, action: str) -> dict[str, Any]:
    if version == "1.6":
        path = SCHEMAS / "v16" / "schemas" / f"{action}.json"
    else:
        path = SCHEMAS / "v201" / "schemas" / f"{action}Request.json"
    loaded: dict[str, Any] = json.loads(path.read_text("utf-8"), parse_float=Decimal)
    return loaded


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_every_command_form_builds_a_valid_payload(
    version: str, demo: Demo, launch: Callable[..., Browser]
) -> None:
    page = launch().new_page()
    page.goto(f"{demo.base_url}/operator")
    built: dict[str, list[dict[str, Any]]] = page.evaluate(SCRIPT, version)
    assert len(built) >= 17, sorted(built)
    for action, payloads in built.items():
        validator = Draft4Validator(schema(version, action))
        for payload in payloads:
            sent = completed(action, version, payload)
            as_sent = json.loads(json.dumps(sent), parse_float=Decimal)
            errors = [e.message for e in validator.iter_errors(as_sent)]
            assert not errors, (action, payload, errors)
    expected = {"Reset", "ChangeAvailability", "ReserveNow", "SetChargingProfile", "UpdateFirmware"}
    assert expected <= built.keys()
    assert ("GetDiagnostics" in built) is (version == "1.6")
    assert ("GetLog" in built) is (version == "2.0.1")
    # an empty upload address is left to the CSMS (its own upload endpoint)
    diagnostics = built["GetDiagnostics" if version == "1.6" else "GetLog"][0]
    assert "location" not in diagnostics and "log" not in diagnostics, diagnostics
    reserve = built["ReserveNow"][0]
    assert "reservationId" not in reserve and "id" not in reserve, reserve  # the CSMS picks it
