// OCPP transactions: the list (by charger, running or ended, started between two dates) and
// one transaction's page: its times and meter readings, its 2.0.1 TransactionEvents, its
// sampled meter values, and the QR order it charged; a running one has a Stop button.

import { call, enc } from "./api.js";
import { stopButton } from "./commands.js";
import { t } from "./i18n.js";
import { back, facts, h, notify, replace, table, when } from "./ui.js";

const energy = (x) => (x.meter_start_wh !== null && x.meter_stop_wh !== null ? `${x.meter_stop_wh - x.meter_start_wh} Wh` : "");

/** A date input's "2026-12-06" -> the start of that day in the browser's zone, as ISO. */
function dayStart(text, plusDays = 0) {
  if (!text) return null;
  const [y, m, d] = text.split("-").map(Number);
  return new Date(y, m - 1, d + plusDays).toISOString();
}

export function transactionsView(root) {
  const list = h("div", { class: "body", id: "txn-list" });
  const charger = h("input", { type: "search", id: "txn-charger", placeholder: t("orders.charger"), maxlength: 48 });
  const state = h("select", { id: "txn-state", "aria-label": t("txn.state") },
    [["", t("txn.any_state")], ["Started", t("txn.Started")], ["Ended", t("txn.Ended")]].map(([v, text]) => h("option", { value: v }, text)));
  const since = h("input", { type: "date", id: "txn-since", "aria-label": t("txn.since"), title: t("txn.since") });
  const until = h("input", { type: "date", id: "txn-until", "aria-label": t("txn.until"), title: t("txn.until") });
  const filters = h("form", { class: "filters", id: "txn-filter" }, charger, state, since, until,
    h("button", { type: "submit", class: "small secondary search", "data-read": true }, t("drivers.find")));
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    refresh().catch((err) => notify(err.message));
  });
  replace(root, h("section", { class: "card", id: "transactions" }, h("h2", {}, t("nav.transactions")), filters, list));

  async function refresh() {
    const params = new URLSearchParams({ limit: "100" });
    if (charger.value.trim()) params.set("charger_id", charger.value.trim());
    if (state.value) params.set("state", state.value);
    if (since.value) params.set("since", dayStart(since.value));
    if (until.value) params.set("until", dayStart(until.value, 1)); // the whole last day
    const rows = await call("GET", `/api/v1/admin/transactions?${params}`);
    replace(list, table([t("txn.id"), t("orders.charger"), "EVSE", t("txn.id_tag"), t("txn.started"), t("txn.stopped"),
      t("orders.energy"), t("txn.state"), t("orders.flags")],
    rows.map((x) => h("tr", { "data-transaction": x.id },
      h("td", {}, h("a", { href: `#/transaction/${x.id}`, id: `open-txn-${x.id}` }, `#${x.id}`), h("div", { class: "hint" }, x.transaction_id)),
      h("td", {}, h("a", { href: `#/charger/${enc(x.charger_id)}` }, x.charger_id)),
      h("td", {}, x.evse_id ?? x.connector_id ?? ""), h("td", { class: "wrap" }, x.id_tag || ""),
      h("td", {}, when(x.started_at)), h("td", {}, when(x.stopped_at)), h("td", {}, energy(x)),
      h("td", {}, t(`txn.${x.state}`)), h("td", { class: "flag" }, x.flags || ""))),
    { empty: t("txn.none") }));
  }
  return { refresh, live: false };
}

export function transactionView(root, pk) {
  const summary = h("div", { class: "body", id: "txn-summary" });
  const events = h("div", { class: "body", id: "txn-events" });
  const values = h("div", { class: "body", id: "txn-meter-values" });
  replace(root, back("#/transactions", t("nav.transactions")),
    h("h1", { id: "txn-title" }, t("txn.title", { id: pk })),
    h("section", { class: "card", id: "txn-card" }, h("h2", {}, t("txn.summary")), summary),
    h("section", { class: "card", id: "txn-events-card" }, h("h2", {}, t("txn.events")), events),
    h("section", { class: "card", id: "txn-values-card" }, h("h2", {}, t("txn.meter_values")), values));

  async function refresh() {
    const x = await call("GET", `/api/v1/admin/transactions/${enc(pk)}`);
    replace(summary, facts([
      [t("orders.charger"), h("a", { href: `#/charger/${enc(x.charger_id)}` }, x.charger_id)],
      [t("txn.ocpp_id"), x.transaction_id], ["OCPP", x.ocpp_version],
      ["EVSE", x.evse_id ?? x.connector_id], [t("txn.id_tag"), x.id_tag],
      [t("txn.id_tag_status"), x.id_tag_status], [t("txn.state"), t(`txn.${x.state}`)],
      [t("txn.started"), when(x.started_at)], [t("txn.stopped"), when(x.stopped_at)],
      [t("txn.meter"), x.meter_start_wh !== null ? `${x.meter_start_wh} → ${x.meter_stop_wh ?? "…"} Wh` : null],
      [t("orders.energy"), energy(x)], [t("txn.stop_reason"), x.stop_reason],
      [t("txn.offline"), x.offline ? t("common.yes") : null], [t("orders.flags"), x.flags],
      [t("orders.order"), x.order_id ? h("a", { href: `#/order/${enc(x.order_id)}`, id: "txn-order" }, x.order_id) : t("txn.no_order")],
    ], { id: "txn-facts", "data-transaction": x.id }),
    h("div", { class: "buttons", id: "txn-actions" }, stopButton(x, x.ocpp_version, refresh)));
    replace(events, table(["seqNo", t("txn.event"), t("txn.trigger"), t("txn.at"), t("txn.offline"), t("txn.received")],
      x.events.map((e) => h("tr", { "data-seq": e.seq_no },
        h("td", {}, String(e.seq_no)), h("td", {}, e.event_type), h("td", {}, e.trigger_reason),
        h("td", {}, when(e.timestamp)), h("td", {}, e.offline ? t("common.yes") : ""), h("td", {}, when(e.received_at)))),
      { empty: x.ocpp_version === "1.6" ? t("txn.events_16") : t("common.nothing") }));
    replace(values, table([t("txn.at"), t("txn.measurand"), t("txn.value"), t("txn.phase"), t("txn.context")],
      x.meter_values.map((v) => h("tr", { "data-measurand": v.measurand },
        h("td", {}, when(v.timestamp)), h("td", {}, v.measurand), h("td", {}, `${v.value} ${v.unit || ""}`.trim()),
        h("td", {}, v.phase || ""), h("td", {}, v.context || ""))),
      { empty: t("txn.no_values") }));
  }
  return { refresh, live: true };
}
