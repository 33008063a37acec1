// The commands a charger can be sent from its page: for each, a few fields and the payload
// of the charger's own OCPP version (1.6 or 2.0.1) built from them, sent through
// POST /api/v1/admin/chargers/{id}/commands/{action}; the charger's answer is shown as is.

import { call, enc } from "./api.js";
import { t } from "./i18n.js";
import { action, answer, failure, field, h, notify, replace, table, when } from "./ui.js";

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
// a reservation is for a driver's order (the id tag is the order id; the charger's open
// orders are offered in a list) or for an RFID card
const RESERVE_FOR = { name: "id_tag", key: "cmd.reserve_for", required: true, list: "open-orders", autocomplete: "off" };
// empty: the CSMS offers its own upload address and lists the file when it comes
const UPLOAD_TO = { name: "location", key: "cmd.upload_location", type: "url", placeholder: "" };

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
    fields: (v) => [v === V16 ? { ...CONNECTOR, min: 0 } : OPTIONAL_EVSE, RESERVE_FOR,
      { name: "expiry", key: "cmd.expiry", type: "datetime-local", value: inMinutes(30), required: true },
      { name: "reservation", key: "cmd.reservation_optional", type: "number", min: 1 }],
    build: (x, v) => (v === V16
      ? clean({ connectorId: num(x, "connector") ?? 0, expiryDate: iso(x.expiry), idTag: x.id_tag, reservationId: num(x, "reservation") })
      : clean({ id: num(x, "reservation"), expiryDateTime: iso(x.expiry), evseId: num(x, "evse"),
        idToken: { idToken: x.id_tag, type: "Central" } })),
  },
  CancelReservation: {
    fields: () => [{ name: "reservation", key: "cmd.reservation", type: "number", min: 0, required: true }],
    build: (x) => ({ reservationId: num(x, "reservation") }),
  },
  UpdateFirmware: {
    fields: () => [{ name: "location", key: "cmd.firmware_location", type: "url", required: true, placeholder: "https://files.example.org/fw/cp-2.4.1.bin" },
      { name: "retrieve", key: "cmd.retrieve_at", type: "datetime-local", value: inMinutes(0), required: true },
      { name: "retries", key: "cmd.retries", type: "number", min: 0 }],
    build: (x, v) => (v === V16
      ? clean({ location: x.location, retrieveDate: iso(x.retrieve), retries: num(x, "retries") })
      : clean({ retries: num(x, "retries"),
        firmware: { location: x.location, retrieveDateTime: iso(x.retrieve) } })),
  },
  GetDiagnostics: {
    only: V16,
    fields: () => [UPLOAD_TO],
    build: (x) => clean({ location: x.location }),
  },
  GetLog: {
    only: "2.0.1",
    fields: () => [UPLOAD_TO, { name: "log", key: "cmd.log_type", options: ["DiagnosticsLog", "SecurityLog"] }],
    build: (x) => clean({ logType: x.log, log: x.location ? { remoteLocation: x.location } : undefined }),
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
  const openOrders = h("datalist", { id: "open-orders" });
  const form = h("form", { id: "command-form" }, picker, fields, openOrders,
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
    if (select.value === "ReserveNow") loadOpenOrders(charger, openOrders);
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
      const payload = current();
      preview.textContent = JSON.stringify(payload, null, 2); // exactly what goes out
      const result = await call("POST", `/api/v1/admin/chargers/${enc(charger.id)}/commands/${action}`, { json: payload });
      const status = statusOf(action, result.response || {});
      replace(out, h("p", { class: "ok-line", "data-command-status": status || "" },
        t("cmd.answered", { action, status: status || "—" })), followUp(result), readable(result.response),
      answer(result.response));
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

/** The charger's word for its answer: its status; a 1.6 UpdateFirmware answer is empty
 * (accepted) and a 1.6 GetDiagnostics answer names the file (or there is nothing to upload). */
function statusOf(action, response) {
  if (response.status) return response.status;
  if (action === "UpdateFirmware") return "Accepted";
  if (action === "GetDiagnostics") return response.fileName ? "Accepted" : "NoFile";
  return null;
}

/** What the CSMS added to the answer, in words: the reservation id it picked, the upload
 * it offered (the file shows in the uploads list once the charger sent it), the request id
 * that ties the later status notifications to this request. */
function followUp(result) {
  const lines = [];
  if (result.reservation_id) lines.push(h("p", { "data-reservation-id": result.reservation_id }, t("cmd.reservation_made", { id: result.reservation_id })));
  if (result.upload_id) lines.push(h("p", { "data-upload-id": result.upload_id }, t("cmd.upload_offered", { id: result.upload_id })));
  if (result.request_id) lines.push(h("p", { class: "hint", "data-request-id": result.request_id }, t("cmd.request_id", { id: result.request_id })));
  return lines;
}

/** The charger's orders waiting to start, offered as the id tag of a reservation. */
async function loadOpenOrders(charger, list) {
  try {
    const orders = await call("GET", `/api/v1/admin/orders?charger_id=${enc(charger.id)}&status=created&limit=50`);
    replace(list, orders.map((o) => h("option", { value: o.id }, `${o.id} · EVSE ${o.evse_id ?? "?"} · ${when(o.created_at)}`)));
  } catch {
    replace(list); // the field still takes any id tag
  }
}

/** The answers that are lists (configuration keys, variables, a composite schedule) as a
 * table; null otherwise. */
function readable(response) {
  const schedule = response.chargingSchedule || response.schedule;
  if (schedule && Array.isArray(schedule.chargingSchedulePeriod)) {
    const start = Date.parse(schedule.startSchedule || schedule.scheduleStart || response.scheduleStart || "");
    return table([t("list.from"), t("cmd.limit"), t("list.phases")],
      schedule.chargingSchedulePeriod.map((p) => h("tr", { "data-period": p.startPeriod },
        h("td", {}, Number.isNaN(start) ? `+${p.startPeriod} s` : when(new Date(start + p.startPeriod * 1000).toISOString())),
        h("td", {}, `${p.limit} ${schedule.chargingRateUnit}`), h("td", {}, String(p.numberPhases ?? "")))));
  }
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

/** A Stop button for a running transaction: RemoteStopTransaction (1.6, the numeric id) or
 * RequestStopTransaction (2.0.1, the id as text) through the commands endpoint, the charger's
 * answer in the notice bar; none for an ended transaction or a role without commands. */
export function stopButton(x, version, reload) {
  if (x.state !== "Started") return null;
  const v16 = version === V16;
  const name = v16 ? "RemoteStopTransaction" : "RequestStopTransaction";
  const payload = { transactionId: v16 ? Number(x.transaction_id) : String(x.transaction_id) };
  return action(t("txn.stop"), async () => {
    const result = await call("POST", `/api/v1/admin/chargers/${enc(x.charger_id)}/commands/${name}`, { json: payload });
    const status = (result.response && result.response.status) || "—";
    notify(t("txn.stop_answer", { id: x.transaction_id, status }), status === "Accepted" ? "ok" : "error");
    await reload();
  }, { area: "commands", kind: "danger", id: `stop-txn-${x.id}`, confirmText: t("txn.stop_confirm", { id: x.transaction_id }) });
}

/** The lists the CSMS keeps per charger: [kind (the path under the charger), title key]. */
export const LISTS = [
  ["reservations", "list.reservations"],
  ["charging-profiles", "list.charging_profiles"],
  ["firmware", "list.firmware"],
  ["diagnostics", "list.diagnostics"],
  ["uploads", "list.uploads"],
];

const OPEN_RESERVATION = new Set(["requested", "active"]);

/** Sends `name` with `payload` from a list's button and says what the charger answered. */
async function quick(charger, name, payload, reload) {
  const result = await call("POST", `/api/v1/admin/chargers/${enc(charger.id)}/commands/${name}`, { json: payload });
  const status = (result.response && result.response.status) || "—";
  notify(t("cmd.answered", { action: name, status }), status === "Accepted" ? "ok" : "error");
  await reload();
}

/** The limit of a stored profile's first period, with its unit ("7400 W"). */
function limitOf(profile) {
  const schedule = Array.isArray(profile.chargingSchedule) ? profile.chargingSchedule[0] : profile.chargingSchedule;
  const period = schedule && (schedule.chargingSchedulePeriod || [])[0];
  return period ? `${period.limit} ${schedule.chargingRateUnit}` : "";
}

const short = (text, n = 12) => (text && text.length > n ? `${text.slice(0, n)}…` : text || "");

function sizeText(bytes) {
  if (bytes === null || bytes === undefined) return "";
  return bytes < 10_000 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KiB`;
}

/** Each list's columns ([title key, cell(item)]) and the row's attributes and buttons. */
const COLUMNS = {
  reservations: {
    headers: ["list.reservation", "cmd.evse", "list.id_tag", "list.expires", "list.state", "list.answer", "cmd.transaction"],
    row: (r) => ({ "data-reservation": r.reservation_id }),
    cells: (r) => [String(r.reservation_id), r.evse_id === null ? t("list.any_evse") : String(r.evse_id),
      h("span", { class: "wrap" }, r.id_token), when(r.expires_at),
      h("span", { "data-reservation-state": r.state }, t(`reservation.${r.state}`)), r.answer || "", r.transaction_id || ""],
    act: (r, charger, reload) => (OPEN_RESERVATION.has(r.state) ? action(t("list.cancel_reservation"),
      () => quick(charger, "CancelReservation", { reservationId: r.reservation_id }, reload),
      { area: "commands", kind: "danger", id: `cancel-reservation-${r.reservation_id}` }) : null),
  },
  "charging-profiles": {
    headers: ["cmd.profile_id", "cmd.evse", "cmd.purpose", "cmd.stack_level", "cmd.limit", "list.set_at", "list.cleared"],
    row: (p) => ({ "data-profile": p.profile_id, "data-cleared": p.cleared_at ? "yes" : "no" }),
    cells: (p) => [String(p.profile_id), String(p.evse_id), p.purpose, String(p.stack_level), limitOf(p.profile),
      when(p.set_at), p.cleared_at ? `${when(p.cleared_at)} (${p.cleared_by || ""})` : ""],
    act: (p, charger, reload) => (p.cleared_at ? null : action(t("list.clear_profile"),
      () => quick(charger, "ClearChargingProfile",
        charger.ocpp_version === "2.0.1" ? { chargingProfileId: p.profile_id } : { id: p.profile_id }, reload),
      { area: "commands", kind: "danger", id: `clear-profile-${p.profile_id}` })),
  },
  firmware: {
    headers: ["list.at", "list.step", "cmd.status", "list.request", "list.detail"],
    row: (r) => ({ "data-step": r.action, "data-status": r.status }),
    cells: (r) => [when(r.received_at), r.action, r.status, String(r.request_id ?? ""), h("span", { class: "wrap" }, r.detail || "")],
  },
  uploads: {
    headers: ["list.file", "list.step", "list.request", "list.size", "list.received", "SHA-256"],
    row: (u) => ({ "data-upload": u.id }),
    cells: (u, charger) => [download(charger.id, u), u.action, String(u.request_id ?? ""), sizeText(u.size),
      when(u.received_at), h("code", { title: u.sha256 }, short(u.sha256))],
  },
};
COLUMNS.diagnostics = COLUMNS.firmware;

/** A list panel's body: its rows as a table (with the buttons the role may use); a CSMS
 * without the list says so. `reload` runs after a button's command. */
export async function listBody(charger, kind, reload) {
  try {
    const items = await call("GET", `/api/v1/admin/chargers/${enc(charger.id)}/${kind}?limit=20`);
    const spec = COLUMNS[kind];
    const rows = items.map((item) => {
      const button = spec.act ? spec.act(item, charger, reload) : null;
      return h("tr", spec.row(item), spec.cells(item, charger).map((cell) => h("td", {}, cell)),
        spec.act ? h("td", {}, button) : null);
    });
    const headers = spec.headers.map((key) => (key.includes(".") ? t(key) : key));
    return table(spec.act ? [...headers, ""] : headers, rows);
  } catch (err) {
    if (err.status === 404 || err.status === 405) {
      return h("p", { class: "hint unavailable", "data-unavailable": kind }, t("common.unavailable", { status: err.status }));
    }
    return h("p", { class: "error-line" }, failure(err));
  }
}

/** A link that downloads an uploaded file (with the operator's credentials, as a blob). */
function download(chargerId, item) {
  return h("a", { href: "#", id: `download-${item.id}`, class: "wrap", onclick: async (event) => {
    event.preventDefault();
    try {
      const blob = await call("GET", `/api/v1/admin/chargers/${enc(chargerId)}/uploads/${enc(item.id)}`);
      const url = URL.createObjectURL(blob);
      h("a", { href: url, download: item.name || `upload-${item.id}` }).click();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (err) {
      notify(failure(err));
    }
  } }, item.name || `#${item.id}`);
}
