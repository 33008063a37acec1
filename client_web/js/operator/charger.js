// One charger's page: live status and the OCPP message log tail, its settings (location,
// password, security profile, registration, delete), the commands panel with the charger's
// answers, the remote-control lists, configuration (1.6) or device model (2.0.1), its
// settlement keys and its presence secret; what it reported unasked (notifications), its
// latest transactions (a running one with its Stop button), the billing model that applies
// there and the settlements refused for it.

import { call, enc } from "./api.js";
import { LISTS, commandsPanel, listBody, stopButton } from "./commands.js";
import { rejectionsTable } from "./orders.js";
import { t } from "./i18n.js";
import { appliesBody } from "./tariff.js";
import { can } from "./roles.js";
import {
  action, actionForm, answer, card, failure, field, h, notify, replace, table, when,
} from "./ui.js";

function statusBlock(c) {
  return h("dl", { class: "rows", id: "charger-status" },
    h("dt", {}, t("charger.link")),
    h("dd", {}, h("span", { class: c.connected ? "online" : "offline", "data-charger-state": c.id },
      c.connected ? t("charger.online") : t("charger.offline")), " ", h("span", { class: "hint" }, when(c.last_seen))),
    h("dt", {}, "OCPP"), h("dd", {}, c.ocpp_version || "?"),
    h("dt", {}, t("charger.registration")), h("dd", { id: "charger-registration" }, t(`registration.${c.registration}`)),
    h("dt", {}, t("charger.profile")), h("dd", {}, String(c.security_profile ?? "")),
    h("dt", {}, t("charger.location")), h("dd", {}, c.location || ""),
    h("dt", {}, t("charger.evses")),
    h("dd", {}, (c.evses || []).map((e) => h("span", { class: "badge", "data-evse": e.evse_id }, `${e.evse_id}: ${e.status}`))),
    h("dt", {}, t("charger.settlement_kid")), h("dd", {}, c.settlement_kid || "—"));
}

function settingsForm(c, reload, deleted) {
  const path = `/api/v1/admin/chargers/${enc(c.id)}`;
  const form = actionForm({ id: "edit-charger" }, [
    field(t("charger.location"), { name: "location", value: c.location || "", maxlength: 200 }),
    field(t("charger.new_password"), { name: "password", type: "password", minlength: 8, maxlength: 40, autocomplete: "new-password" }),
    field(t("charger.profile"), { name: "security_profile", value: String(c.security_profile ?? "") },
      [["1", "1"], ["2", "2"], ["3", "3"]]),
  ], async (v) => {
    const body = { location: v.location ?? "" };
    if (v.password) body.password = v.password;
    if (v.security_profile && Number(v.security_profile) !== c.security_profile) body.security_profile = Number(v.security_profile);
    await call("PATCH", path, { json: body });
    notify(t("charger.saved", { id: c.id }), "ok");
    await reload();
  }, { area: "chargers", submit: t("common.save") });
  if (!form) return h("p", { class: "hint" }, t("common.read_only"));
  const registration = (value) => async () => {
    await call("PATCH", path, { json: { registration: value } });
    await reload();
  };
  return h("div", {}, form, h("div", { class: "buttons" },
    c.registration !== "Accepted" ? action(t("charger.accept"), registration("Accepted"), { area: "chargers", id: "accept-charger" }) : null,
    c.registration !== "Rejected" ? action(t("charger.reject"), registration("Rejected"), { area: "chargers", id: "reject-charger" }) : null,
    action(t("charger.delete"), async () => {
      await call("DELETE", path);
      deleted();
      notify(t("charger.deleted", { id: c.id }), "ok");
      location.hash = "#/chargers";
    }, { area: "chargers", kind: "danger", id: "delete-charger", confirmText: t("charger.delete_confirm", { id: c.id }) })));
}

async function messagesBody(id) {
  const frames = await call("GET", `/api/v1/admin/chargers/${enc(id)}/messages?limit=25`);
  return table([t("log.at"), t("log.direction"), t("log.frame")],
    frames.slice().reverse().map((f) => h("tr", {},
      h("td", {}, when(f.at)), h("td", {}, f.direction), h("td", { class: "frame" }, f.frame))));
}

async function deviceModelBody(c) {
  if (!c.ocpp_version) return h("p", { class: "hint" }, t("charger.version_unknown"));
  if (c.ocpp_version === "1.6") {
    return h("p", { class: "hint" }, t("charger.config_16"));
  }
  try {
    const rows = await call("GET", `/api/v1/admin/chargers/${enc(c.id)}/device-model?limit=200`);
    return table(Object.keys(rows[0] || { component: 0 }).slice(0, 7),
      rows.map((r) => h("tr", {}, Object.values(r).slice(0, 7).map((v) => h("td", { class: "wrap" }, v === null ? "" : String(v))))),
      { empty: t("charger.no_device_model") });
  } catch (err) {
    return h("p", { class: "error-line" }, failure(err));
  }
}

async function keysBody(c, reload) {
  const keys = await call("GET", `/api/v1/admin/chargers/${enc(c.id)}/settlement-keys`);
  const form = actionForm({ id: "settlement-key-form" }, [
    field(t("keys.jwk"), { name: "jwk", type: "textarea", rows: 4, required: true, placeholder: '{"kty":"EC","crv":"P-256","x":"…","y":"…"}' }),
  ], async (v) => {
    let jwk;
    try {
      jwk = JSON.parse(v.jwk);
    } catch {
      notify(t("keys.not_json"));
      return;
    }
    await call("PUT", `/api/v1/admin/chargers/${enc(c.id)}/settlement-key`, { json: { jwk } });
    notify(t("keys.pinned"), "ok");
    await reload();
  }, { area: "keys", submit: t("keys.pin") });
  return h("div", {}, table([t("keys.kid"), t("keys.created"), t("keys.retired")],
    keys.map((k) => h("tr", {}, h("td", { class: "wrap" }, k.kid), h("td", {}, when(k.created_at)),
      h("td", {}, k.retired_at ? when(k.retired_at) : t("keys.pinned_now"))))), form);
}

async function presenceBody(c, reload) {
  const path = `/api/v1/admin/chargers/${enc(c.id)}/presence-secret`;
  const state = await call("GET", path);
  const out = h("div", { id: "presence-answer" });
  return h("div", {},
    h("p", {}, state.configured ? t("presence.set", { at: when(state.created_at) }) : t("presence.none")),
    h("div", { class: "buttons" },
      action(state.configured ? t("presence.replace") : t("presence.create"), async () => {
        const made = await call("PUT", path, { json: {} });
        replace(out, h("p", {}, t("presence.created", { status: made.install_status })),
          h("code", { class: "secret" }, made.secret_hex), h("p", { class: "hint" }, t("presence.once")));
      }, { area: "keys", id: "presence-create" }),
      state.configured ? action(t("presence.delete"), async () => {
        await call("DELETE", path);
        await reload();
      }, { area: "keys", kind: "danger", confirmText: t("presence.delete_confirm") }) : null),
    out);
}

async function notificationsBody(id) {
  const rows = await call("GET", `/api/v1/admin/chargers/${enc(id)}/notifications?limit=30`);
  return table([t("notification.received"), t("notification.action"), t("notification.status"), t("notification.request"),
    t("notification.payload")],
  rows.map((n) => h("tr", { "data-notification": n.id, "data-action": n.action },
    h("td", {}, when(n.received_at)), h("td", {}, n.action), h("td", {}, n.status || ""),
    h("td", {}, n.request_id ?? ""), h("td", { class: "frame" }, JSON.stringify(n.payload)))),
  { empty: t("notification.none") });
}

async function transactionsBody(c, reload) {
  const rows = await call("GET", `/api/v1/admin/transactions?charger_id=${enc(c.id)}&limit=10`);
  return table([t("txn.id"), "EVSE", t("txn.started"), t("txn.stopped"), t("txn.state"), ""],
    rows.map((x) => h("tr", { "data-transaction": x.id },
      h("td", {}, h("a", { href: `#/transaction/${x.id}` }, `#${x.id}`)), h("td", {}, x.evse_id ?? x.connector_id ?? ""),
      h("td", {}, when(x.started_at)), h("td", {}, when(x.stopped_at)), h("td", {}, t(`txn.${x.state}`)),
      h("td", {}, stopButton(x, x.ocpp_version || c.ocpp_version, reload)))),
    { empty: t("txn.none") });
}

export function chargerView(root, chargerId) {
  const status = h("div", { class: "body" });
  const settings = h("div", { class: "body" });
  const commands = h("div", { class: "body" });
  const lists = LISTS.map(([kind, key]) => [kind, key, h("div", { class: "body", "data-list": kind })]);
  const device = h("div", { class: "body" });
  const log = h("div", { class: "body", id: "message-log" });
  const keys = h("div", { class: "body" });
  const presence = h("div", { class: "body" });
  const notices = h("div", { class: "body", id: "charger-notifications" });
  const sessions = h("div", { class: "body", id: "charger-transactions" });
  const refused = h("div", { class: "body", id: "charger-rejections" });
  const tariff = h("div", { class: "body", id: "charger-tariff" });
  const section = (id, title, body, extra) => h("section", { class: "card", id }, h("h2", {}, title, extra || null), body);
  replace(root,
    h("p", {}, h("a", { href: "#/chargers" }, `← ${t("nav.chargers")}`)),
    h("h1", { id: "charger-title" }, chargerId),
    section("status-card", t("charger.status"), status),
    section("commands-card", t("cmd.title"), commands),
    lists.map(([kind, key, body]) => section(`list-${kind}`, t(key), body)),
    section("log-card", t("log.title"), log),
    section("transactions-card", t("nav.transactions"), sessions),
    section("tariff-card", t("tariff.title"), tariff),
    section("notifications-card", t("notification.title"), notices),
    section("charger-rejections-card", t("rejection.title"), refused),
    section("device-card", t("charger.device_model"), device),
    section("settings-card", t("charger.settings"), settings),
    section("keys-card", t("keys.settlement"), keys),
    section("presence-card", t("presence.title"), presence));

  let charger = null;
  // a command's answer is followed by a refresh half a second later (the charger's status
  // and log move with it); leaving the page cancels the one still pending
  let pending = null;
  let left = false;
  function later() {
    if (left) return; // an answer that came after the page was left
    clearTimeout(pending);
    pending = setTimeout(() => refresh().catch(() => {}), 500);
  }

  // what an action on the page reads again after it (a registration set, a key pushed...);
  // a read that fails once the page was left (the charger deleted meanwhile: 404) is
  // dropped, else the action would put its error over the notice of the page shown now
  async function reload() {
    try {
      await loadAll();
    } catch (err) {
      if (!left) throw err;
    }
  }

  async function loadAll() {
    charger = await call("GET", `/api/v1/admin/chargers/${enc(chargerId)}`);
    replace(status, statusBlock(charger));
    replace(settings, settingsForm(charger, reload, leave));
    replace(commands, can("commands")
      ? [charger.ocpp_version ? null : h("p", { class: "hint" }, t("charger.version_unknown")),
        commandsPanel(charger, { onAnswer: later })]
      : h("p", { class: "hint" }, t("common.read_only")));
    await loadLists();
    replace(device, await deviceModelBody(charger));
    replace(keys, await keysBody(charger, reload));
    replace(presence, await presenceBody(charger, reload));
    replace(log, await messagesBody(chargerId));
    replace(sessions, await transactionsBody(charger, loadSessions));
    replace(tariff, h("p", { class: "hint" }, t("tariff.charger_hint")), await appliesBody(chargerId));
    replace(notices, await notificationsBody(chargerId));
    replace(refused, rejectionsTable(await call("GET", `/api/v1/admin/settlement-rejections?charger_id=${enc(chargerId)}&limit=30`)));
  }

  // the lists change as the charger reports (a reservation used, an upload arrived, a
  // firmware step): they are read again with the status at every refresh
  async function loadLists() {
    const bodies = await Promise.all(lists.map(([kind]) => listBody(charger, kind, refresh)));
    lists.forEach(([, , body], i) => replace(body, bodies[i]));
  }

  async function loadSessions() {
    replace(sessions, await transactionsBody(charger, loadSessions));
  }

  async function refresh() {
    if (!charger) return loadAll();
    const fresh = await call("GET", `/api/v1/admin/chargers/${enc(chargerId)}`);
    replace(status, statusBlock(fresh));
    replace(log, await messagesBody(chargerId));
    await loadLists();
    return null;
  }
  function leave() {
    left = true;
    clearTimeout(pending);
  }
  return { refresh, live: true, leave };
}
