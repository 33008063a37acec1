// The commands a charger can be sent from its page: for each, a few fields and the payload
// of the charger's own OCPP version (1.6 or 2.0.1) built from them, sent through
// POST /api/v1/admin/chargers/{id}/commands/{action}; the charger's answer is shown as is.

import { call, enc } from "./api.js";
import { t } from "./i18n.js";
import { answer, failure, field, h, replace, table } from "./ui.js";

const V16 = "1.6";
const num = (v, name) => (v[name] === undefined ? undefined : Number(v[name]));
const iso = (text) => (text ? new Date(text).toISOString() : undefined);
const inMinutes = (minutes) => {
  const at = new Date(Date.now() + minutes * 60_000);
  at.setSeconds(0, 0);
  return new Date(at.getTime() - at.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
};
const randomId = () => 1 + Math.floor(Math.random() * 2 ** 30);

/** Drops undefined members, so optional fields left empty are not sent. */
function clean(obj) {
  return JSON.parse(JSON.stringify(obj));
}

const CONNECTOR = { name: "connector", key: "cmd.connector", type: "number", min: 0, value: 1 };
const EVSE = { name: "evse", key: "cmd.evse", type: "number", min: 0, value: 1 };
const OPTIONAL_EVSE = { name: "evse", key: "cmd.evse_optional", type: "number", min: 0 };
const ID_TAG = { name: "id_tag", key: "cmd.id_tag", value: "OPERATOR" };

/** name -> {fields(version), build(values, version)}; `only` restricts to one version. */
export const COMMANDS = {
  Reset: {
    fields: (v) => [{ name: "type", key: "cmd.reset_type", options: v === V16 ? ["Soft", "Hard"] : ["Immediate", "OnIdle"] },
      ...(v === V16 ? [] : [OPTIONAL_EVSE])],
    build: (x, v) => (v === V16 ? { type: x.type } : clean({ type: x.type, evseId: num(x, "evse") })),
  },
  ChangeAvailability: {
    fields: (v) => [v === V16 ? CONNECTOR : OPTIONAL_EVSE, { name: "status", key: "cmd.availability", options: ["Inoperative", "Operative"] }],
    build: (x, v) => (v === V16
      ? { connectorId: num(x, "connector") ?? 0, type: x.status }
      : clean({ operationalStatus: x.status, evse: x.evse ? { id: num(x, "evse") } : undefined })),
  },
  UnlockConnector: {
    fields: (v) => (v === V16 ? [CONNECTOR] : [EVSE, { ...CONNECTOR, name: "connector" }]),
    build: (x, v) => (v === V16 ? { connectorId: num(x, "connector") }
      : { evseId: num(x, "evse"), connectorId: num(x, "connector") }),
  },
  TriggerMessage: {
    fields: (v) => [{ name: "message", key: "cmd.message", options: v === V16
      ? ["StatusNotification", "Heartbeat", "BootNotification", "MeterValues", "FirmwareStatusNotification", "DiagnosticsStatusNotification"]
      : ["StatusNotification", "Heartbeat", "BootNotification", "MeterValues", "TransactionEvent", "FirmwareStatusNotification", "LogStatusNotification"] },
    v === V16 ? { ...CONNECTOR, key: "cmd.connector_optional", value: "" } : OPTIONAL_EVSE],
    build: (x, v) => (v === V16
      ? clean({ requestedMessage: x.message, connectorId: num(x, "connector") })
      : clean({ requestedMessage: x.message, evse: x.evse ? { id: num(x, "evse") } : undefined })),
  },
  ClearCache: { fields: () => [], build: () => ({}) },
  GetLocalListVersion: { fields: () => [], build: () => ({}) },
  RemoteStartTransaction: {
    only: V16,
    fields: () => [{ ...CONNECTOR, min: 1 }, ID_TAG],
    build: (x) => ({ connectorId: num(x, "connector"), idTag: x.id_tag }),
  },
  RemoteStopTransaction: {
    only: V16,
    fields: () => [{ name: "transaction", key: "cmd.transaction", type: "number", required: true }],
    build: (x) => ({ transactionId: num(x, "transaction") }),
  },
  RequestStartTransaction: {
    only: "2.0.1",
    fields: () => [{ ...EVSE, min: 1 }, ID_TAG],
    build: (x) => ({ evseId: num(x, "evse"), remoteStartId: randomId(), idToken: { idToken: x.id_tag, type: "Central" } }),
  },
  RequestStopTransaction: {
    only: "2.0.1",
    fields: () => [{ name: "transaction", key: "cmd.transaction", required: true }],
    build: (x) => ({ transactionId: x.transaction }),
  },
  GetConfiguration: {
    only: V16,
    fields: () => [{ name: "keys", key: "cmd.config_keys" }],
    build: (x) => clean({ key: x.keys ? x.keys.split(",").map((k) => k.trim()).filter(Boolean) : undefined }),
  },
  ChangeConfiguration: {
    only: V16,
    fields: () => [{ name: "key", key: "cmd.config_key", required: true }, { name: "value", key: "cmd.value", required: true }],
    build: (x) => ({ key: x.key, value: x.value }),
  },
  GetVariables: {
    only: "2.0.1",
    fields: () => [{ name: "component", key: "cmd.component", required: true }, { name: "variable", key: "cmd.variable", required: true }],
    build: (x) => ({ getVariableData: [{ component: { name: x.component }, variable: { name: x.variable } }] }),
  },
  SetVariables: {
    only: "2.0.1",
    fields: () => [{ name: "component", key: "cmd.component", required: true }, { name: "variable", key: "cmd.variable", required: true },
      { name: "value", key: "cmd.value", required: true }],
    build: (x) => ({ setVariableData: [{ component: { name: x.component }, variable: { name: x.variable }, attributeValue: x.value }] }),
  },
  GetBaseReport: {
    only: "2.0.1",
    fields: () => [{ name: "report", key: "cmd.report", options: ["FullInventory", "ConfigurationInventory", "SummaryInventory"] }],
    build: (x) => ({ reportBase: x.report }),
  },
  ReserveNow: {
    fields: (v) => [v === V16 ? { ...CONNECTOR, min: 0 } : OPTIONAL_EVSE, ID_TAG,
      { name: "expiry", key: "cmd.expiry", type: "datetime-local", value: inMinutes(30), required: true },
      { name: "reservation", key: "cmd.reservation", type: "number", min: 0, value: String(randomId() % 100000) }],
    build: (x, v) => (v === V16
      ? { connectorId: num(x, "connector") ?? 0, expiryDate: iso(x.expiry), idTag: x.id_tag, reservationId: num(x, "reservation") }
      : clean({ id: num(x, "reservation"), expiryDateTime: iso(x.expiry), evseId: num(x, "evse"),
        idToken: { idToken: x.id_tag, type: "Central" } })),
  },
  CancelReservation: {
    fields: () => [{ name: "reservation", key: "cmd.reservation", type: "number", min: 0, required: true }],
    build: (x) => ({ reservationId: num(x, "reservation") }),
  },
  UpdateFirmware: {
    fields: () => [{ name: "location", key: "cmd.firmware_location", type: "url", required: true },
      { name: "retrieve", key: "cmd.retrieve_at", type: "datetime-local", value: inMinutes(0), required: true },
      { name: "retries", key: "cmd.retries", type: "number", min: 0 }],
    build: (x, v) => (v === V16
      ? clean({ location: x.location, retrieveDate: iso(x.retrieve), retries: num(x, "retries") })
      : clean({ requestId: randomId(), retries: num(x, "retries"),
        firmware: { location: x.location, retrieveDateTime: iso(x.retrieve) } })),
  },
  GetDiagnostics: {
    only: V16,
    fields: () => [{ name: "location", key: "cmd.upload_location", type: "url", required: true }],
    build: (x) => ({ location: x.location }),
  },
  GetLog: {
    only: "2.0.1",
    fields: () => [{ name: "location", key: "cmd.upload_location", type: "url", required: true },
      { name: "log", key: "cmd.log_type", options: ["DiagnosticsLog", "SecurityLog"] }],
    build: (x) => ({ logType: x.log, requestId: randomId(), log: { remoteLocation: x.location } }),
  },
  SetChargingProfile: {
    fields: (v) => [v === V16 ? { ...CONNECTOR, value: 0 } : { ...EVSE, value: 0 },
      { name: "purpose", key: "cmd.purpose", options: v === V16
        ? ["ChargePointMaxProfile", "TxDefaultProfile"] : ["ChargingStationMaxProfile", "TxDefaultProfile"] },
      { name: "unit", key: "cmd.rate_unit", options: [["W", "W"], ["A", "A"]] },
      { name: "limit", key: "cmd.limit", type: "number", min: 0, step: "0.1", required: true, value: 7400 },
      { name: "profile", key: "cmd.profile_id", type: "number", min: 1, value: 1 },
      { name: "stack", key: "cmd.stack_level", type: "number", min: 0, value: 0 }],
    build: (x, v) => {
      const period = [{ startPeriod: 0, limit: Number(x.limit) }];
      const start = new Date().toISOString();
      if (v === V16) {
        return { connectorId: num(x, "connector"), csChargingProfiles: {
          chargingProfileId: num(x, "profile"), stackLevel: num(x, "stack"), chargingProfilePurpose: x.purpose,
          chargingProfileKind: "Absolute",
          chargingSchedule: { chargingRateUnit: x.unit, startSchedule: start, chargingSchedulePeriod: period } } };
      }
      return { evseId: num(x, "evse"), chargingProfile: {
        id: num(x, "profile"), stackLevel: num(x, "stack"), chargingProfilePurpose: x.purpose,
        chargingProfileKind: "Absolute",
        chargingSchedule: [{ id: num(x, "profile"), chargingRateUnit: x.unit, startSchedule: start, chargingSchedulePeriod: period }] } };
    },
  },
  ClearChargingProfile: {
    fields: () => [{ name: "profile", key: "cmd.profile_id_optional", type: "number", min: 1 }],
    build: (x, v) => (v === V16 ? clean({ id: num(x, "profile") }) : clean({ chargingProfileId: num(x, "profile") })),
  },
  GetCompositeSchedule: {
    fields: (v) => [v === V16 ? { ...CONNECTOR, value: 0 } : { ...EVSE, value: 0 },
      { name: "duration", key: "cmd.duration_s", type: "number", min: 1, value: 3600 },
      { name: "unit", key: "cmd.rate_unit", options: [["W", "W"], ["A", "A"]] }],
    build: (x, v) => (v === V16
      ? { connectorId: num(x, "connector"), duration: num(x, "duration"), chargingRateUnit: x.unit }
      : { evseId: num(x, "evse"), duration: num(x, "duration"), chargingRateUnit: x.unit }),
  },
};

/** The commands of `version`, in the catalogue's order. */
export function commandsOf(version) {
  return Object.keys(COMMANDS).filter((name) => !COMMANDS[name].only || COMMANDS[name].only === version);
}

function fieldsOf(name, version) {
  return COMMANDS[name].fields(version).map((f) => {
    const { key, options, ...attrs } = f;
    return field(t(key), { ...attrs, name: f.name, id: `cmd-${f.name}` }, options || null);
  });
}

/** The commands card of a charger: pick a command, fill its fields, send, see the answer. */
export function commandsPanel(charger, { onAnswer } = {}) {
  const version = charger.ocpp_version || V16;
  const names = commandsOf(version);
  const picker = field(t("cmd.command"), { name: "action", id: "command-action" },
    names.map((n) => [n, n]));
  const fields = h("div", { class: "form-grid", id: "command-fields" });
  const preview = h("pre", { class: "answer hint", id: "command-payload" });
  const out = h("div", { id: "command-answer", "aria-live": "polite" });
  const select = picker.querySelector("select");
  const form = h("form", { id: "command-form" }, picker, fields,
    h("details", {}, h("summary", {}, t("cmd.payload")), preview),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "small primary", id: "command-send" }, t("cmd.send"))),
    out);

  const current = () => {
    const v = {};
    for (const el of fields.querySelectorAll("input, select")) if (el.value.trim() !== "") v[el.name] = el.value.trim();
    return COMMANDS[select.value].build(v, version);
  };
  const showPayload = () => {
    try {
      preview.textContent = JSON.stringify(current(), null, 2);
    } catch {
      preview.textContent = "";
    }
  };
  const pick = () => {
    replace(fields, fieldsOf(select.value, version));
    showPayload();
  };
  select.addEventListener("change", pick);
  fields.addEventListener("input", showPayload);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const action = select.value;
    const button = form.querySelector("#command-send");
    button.disabled = true;
    replace(out, h("p", { class: "hint" }, t("cmd.waiting", { action })));
    try {
      const result = await call("POST", `/api/v1/admin/chargers/${enc(charger.id)}/commands/${action}`, { json: current() });
      const status = result.response && result.response.status;
      replace(out, h("p", { class: "ok-line", "data-command-status": status || "" },
        t("cmd.answered", { action, status: status || "—" })), readable(result.response), answer(result.response));
      if (onAnswer) onAnswer(action, result);
    } catch (err) {
      const text = err.status === 422 && /not an OCPP|action|Input should be/i.test(err.detail || "")
        ? t("cmd.not_offered", { action, detail: err.detail || "" }) : failure(err);
      replace(out, h("p", { class: "error-line", "data-command-error": err.status }, text));
    } finally {
      button.disabled = false;
    }
  });
  pick();
  return form;
}

/** The answers that are lists (configuration keys, variables) as a table; null otherwise. */
function readable(response) {
  if (Array.isArray(response.configurationKey)) {
    return table([t("cmd.config_key"), t("cmd.value"), t("cmd.readonly")],
      response.configurationKey.map((k) => h("tr", { "data-config-key": k.key },
        h("td", {}, k.key), h("td", { class: "wrap" }, k.value ?? ""), h("td", {}, k.readonly ? t("cmd.readonly") : ""))));
  }
  const results = response.getVariableResult || response.setVariableResult;
  if (Array.isArray(results)) {
    return table([t("cmd.component"), t("cmd.variable"), t("cmd.status"), t("cmd.value")],
      results.map((r) => h("tr", {},
        h("td", {}, r.component?.name ?? ""), h("td", {}, r.variable?.name ?? ""),
        h("td", {}, r.attributeStatus ?? ""), h("td", { class: "wrap" }, r.attributeValue ?? ""))));
  }
  return null;
}

/** The lists the remote-control API keeps per charger; a CSMS without one says so. */
export const LISTS = [
  ["reservations", "list.reservations"],
  ["charging-profiles", "list.charging_profiles"],
  ["firmware", "list.firmware"],
  ["uploads", "list.uploads"],
];

/** A list panel's body: the rows as a table of their own keys (and a download for files). */
export async function listBody(chargerId, kind) {
  try {
    const data = await call("GET", `/api/v1/admin/chargers/${enc(chargerId)}/${kind}`);
    const items = Array.isArray(data) ? data : (data && (data.items || data.rows)) || [];
    if (!items.length) return h("p", { class: "hint" }, t("common.nothing"));
    const keys = [...new Set(items.flatMap((i) => Object.keys(i)))].slice(0, 8);
    return table([...keys, ...(kind === "uploads" ? [""] : [])], items.map((i) => h("tr", {},
      keys.map((k) => h("td", { class: "wrap" }, typeof i[k] === "object" && i[k] !== null ? JSON.stringify(i[k]) : String(i[k] ?? ""))),
      kind === "uploads" ? h("td", {}, download(chargerId, i)) : null)));
  } catch (err) {
    if (err.status === 404 || err.status === 405 || err.status === 422) {
      return h("p", { class: "hint unavailable", "data-unavailable": kind }, t("common.unavailable", { status: err.status }));
    }
    return h("p", { class: "error-line" }, failure(err));
  }
}

function download(chargerId, item) {
  const id = item.id ?? item.file_id;
  if (id === undefined) return "";
  return h("a", { href: "#", onclick: async (event) => {
    event.preventDefault();
    const blob = await call("GET", `/api/v1/admin/chargers/${enc(chargerId)}/uploads/${enc(id)}`);
    const link = h("a", { href: URL.createObjectURL(blob), download: item.name || item.filename || `upload-${id}` });
    link.click();
  } }, t("common.download"));
}
