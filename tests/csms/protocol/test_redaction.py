"""Secrets are taken out of the frames the message log keeps."""

from __future__ import annotations

import json

from csms.protocol.redaction import REDACTED, redact_frame, redact_url

SECRET = "a3" * 32


def test_the_identification_secret_is_redacted_in_both_versions_and_in_answers() -> None:
    frames = [
        [2, "1", "ChangeConfiguration", {"key": "IdentificationSecret", "value": SECRET}],
        [2, "2", "SetVariables", {"setVariableData": [{
            "attributeValue": SECRET, "component": {"name": "QrChargeCtrlr"},
            "variable": {"name": "IdentificationSecret"}}]}],
        [3, "3", {"configurationKey": [
            {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
            {"key": "IdentificationSecret", "readonly": False, "value": SECRET}]}],
        [3, "4", {"getVariableResult": [{
            "attributeStatus": "Accepted", "attributeValue": SECRET,
            "component": {"name": "QrChargeCtrlr"},
            "variable": {"name": "IdentificationSecret"}}]}],
        [2, "5", "NotifyReport", {"reportData": [{
            "component": {"name": "QrChargeCtrlr"}, "variable": {"name": "IdentificationSecret"},
            "variableAttribute": [{"type": "Actual", "value": SECRET}]}]}],
    ]  # fmt: skip
    for frame in frames:
        out = redact_frame(json.dumps(frame))
        assert SECRET not in out and REDACTED in out, out
    kept = json.loads(redact_frame(json.dumps(frames[2])))
    assert kept[2]["configurationKey"][0]["value"] == "300"  # other keys are kept


def test_upload_tokens_and_url_credentials_are_redacted() -> None:
    token = "Zm9vYmFyLXRva2VuLXRoYXQtaXMtbG9uZy1lbm91Z2g"
    frame = json.dumps([2, "7", "GetLog", {"requestId": 1, "logType": "DiagnosticsLog", "log": {
        "remoteLocation": f"https://csms.example.org/api/v1/uploads/CP-1/{token}"}}])  # fmt: skip
    out = redact_frame(frame)
    assert token not in out and "/api/v1/uploads/CP-1/[redacted]" in out
    assert (
        redact_url("ftp://user:pa55@logs.example.org/in/")
        == "ftp://[redacted]@logs.example.org/in/"
    )
    assert (
        redact_url("mailto-like text a@b without a scheme")
        == "mailto-like text a@b without a scheme"
    )


def test_a_frame_without_secrets_is_kept_as_it_is_and_an_unreadable_one_is_dropped() -> None:
    frame = '[2,"9","Heartbeat",{}]'
    assert redact_frame(frame) is frame
    assert redact_frame('[2,"9","ChangeConfiguration",{"key":"IdentificationSecret"') == REDACTED
