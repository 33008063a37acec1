// Orders (filtered by status, charger and flag, paged with "older", one opened by its id;
// cancel one never settled, refund part or all of a captured payment), the latest payments
// and the session records (settlements).

import { call, enc } from "./api.js";
import { t } from "./i18n.js";
import { can } from "./roles.js";
import {
  action, actionForm, card, decimalsOf, failure, field, h, minorText, money, notify, parseMinor, replace, table, when,
} from "./ui.js";

const CANCELLABLE = new Set(["created", "cancelling", "started"]);
const PAGE = 50;
export const ORDER_STATUSES = ["created", "started", "settled", "paid", "expired", "cancelling", "cancelled"];

/** An order's or a payment's status in words (the code stays in the element's data). */
export const orderStatus = (s) => (s ? t(`order_status.${s}`) : "");
export const paymentStatus = (s) => (s ? t(`payment_status.${s}`) : "");

export function refundForm(target, reload) {
  if (!target) return h("p", { class: "hint" }, t("refund.pick"));
  const left = target.payment.amount - target.payment.refunded_amount;
  const form = actionForm({ id: "refund-form" }, [
    h("p", {}, t("refund.of", { order: target.order.id, paid: money(target.payment.amount, target.payment.currency),
      left: money(left, target.payment.currency) })),
    field(t("refund.amount", { currency: target.payment.currency }),
      { name: "amount", id: "refund-amount", inputmode: "decimal", required: true, value: minorText(left, target.payment.currency) }),
  ], async (v) => {
    const amount = parseMinor(v.amount, decimalsOf(target.payment.currency));
    if (amount === null || amount <= 0) {
      notify(t("refund.bad_amount"));
      return;
    }
    const done = await call("POST", `/api/v1/admin/payments/${target.payment.id}/refunds`, {
      json: { amount }, headers: { "Idempotency-Key": `${target.payment.id}-${target.payment.refunded_amount}-${amount}` },
    });
    notify(t("refund.done", { amount: money(amount, done.currency), order: target.order.id }), "ok");
    await reload();
  }, { area: "refunds", submit: t("refund.submit") });
  return form || h("p", { class: "hint" }, t("common.read_only"));
}

/** Refused settlements: why, whose, how often, and the token's digest and head. */
export function rejectionsTable(rows) {
  return table([t("rejection.last"), t("rejection.reason"), t("orders.order"), t("orders.charger"), t("rejection.source"),
    t("rejection.count"), t("rejection.token")],
  rows.map((r) => h("tr", { "data-rejection": r.id },
    h("td", {}, when(r.last_at)), h("td", { class: "wrap" }, h("strong", {}, r.reason), r.detail ? h("div", { class: "hint" }, r.detail) : null),
    h("td", {}, r.order_id ? h("a", { href: `#/order/${enc(r.order_id)}` }, r.order_id) : ""),
    h("td", {}, r.charger_id ? h("a", { href: `#/charger/${enc(r.charger_id)}` }, r.charger_id) : ""),
    h("td", {}, r.user_id ? `${r.source} (${t("orders.driver")} ${r.user_id})` : r.source),
    h("td", {}, String(r.count)),
    h("td", { class: "frame" }, `${r.token_head}${r.token_chars > r.token_head.length ? "…" : ""} (${r.token_chars}) sha256 ${r.token_sha256.slice(0, 16)}…`))),
  { empty: t("rejection.none") });
}

export function ordersView(root) {
  const orders = h("div", { class: "body" });
  const refund = h("div", { class: "body", id: "refund-body" });
  const payments = h("div", { class: "body" });
  const settlements = h("div", { class: "body" });
  const rejections = h("div", { class: "body", id: "rejections-body" });
  const more = h("div", { id: "orders-more" });
  const statusFilter = h("select", { id: "orders-status", "aria-label": t("orders.status") },
    ["", ...ORDER_STATUSES].map((s) => h("option", { value: s }, s ? orderStatus(s) : t("orders.any_status"))));
  const flagFilter = h("select", { id: "orders-flagged", "aria-label": t("orders.flags") },
    [["", t("orders.any_flag")], ["true", t("orders.flagged")], ["false", t("orders.not_flagged")]]
      .map(([v, text]) => h("option", { value: v }, text)));
  const chargerFilter = h("input", { type: "search", id: "orders-charger", placeholder: t("orders.charger") });
  const filters = h("form", { class: "filters", id: "orders-filter" }, statusFilter, flagFilter, chargerFilter,
    h("button", { type: "submit", class: "small secondary search", "data-read": true }, t("drivers.find")));
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    refresh().catch((err) => notify(failure(err)));
  });
  const orderId = h("input", { type: "search", id: "order-id", placeholder: t("orders.open_placeholder"),
    "aria-label": t("orders.open_placeholder"), maxlength: 64, autocomplete: "off" });
  const opener = h("form", { class: "filters", id: "order-open" }, orderId,
    h("button", { type: "submit", class: "small secondary", "data-read": true }, t("orders.open")));
  opener.addEventListener("submit", async (event) => {
    event.preventDefault();
    const id = orderId.value.trim();
    if (!id) return;
    try {
      await call("GET", `/api/v1/admin/orders/${enc(id)}`);
      location.hash = `#/order/${enc(id)}`;
    } catch (err) {
      notify(err.status === 404 ? t("orders.not_found", { order: id }) : failure(err));
    }
  });
  replace(root,
    h("section", { class: "card", id: "orders" }, h("h2", {}, t("nav.orders")), opener, filters, orders, more),
    h("section", { class: "card", id: "refund-card" }, h("h2", {}, t("refund.title")), refund),
    h("section", { class: "card", id: "payments" }, h("h2", {}, t("orders.payments")), payments),
    h("section", { class: "card", id: "settlements" }, h("h2", {}, t("orders.settlements")), settlements),
    h("section", { class: "card", id: "rejections" }, h("h2", {}, t("rejection.title")),
      h("p", { class: "hint" }, t("rejection.hint")), rejections));
  replace(refund, refundForm(null));
  let paymentsById = new Map();

  function pickRefund(order) {
    // an older payment than the list holds: what the order says (the CSMS checks the rest)
    const payment = paymentsById.get(order.payment_id) || { id: order.payment_id, amount: order.amount,
      refunded_amount: 0, currency: order.currency, status: order.payment_status };
    replace(refund, refundForm({ order, payment }, refresh));
    document.getElementById("refund-card").scrollIntoView();
  }

  function ordersQuery(offset) {
    const params = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
    if (statusFilter.value) params.set("status", statusFilter.value);
    if (flagFilter.value) params.set("flagged", flagFilter.value);
    if (chargerFilter.value.trim()) params.set("charger_id", chargerFilter.value.trim());
    return params;
  }

  let shown = []; // the orders listed so far (the first page, then each older one)

  function orderRow(o) {
    const payment = paymentsById.get(o.payment_id);
    const refundable = payment ? payment.status === "captured" && payment.amount > payment.refunded_amount
      : o.payment_status === "captured";
    return h("tr", { "data-order": o.id },
      h("td", {}, h("a", { href: `#/order/${enc(o.id)}`, id: `open-order-${o.id}` }, o.id)),
      h("td", {}, h("a", { href: `#/charger/${enc(o.charger_id)}` }, o.charger_id)),
      h("td", {}, h("a", { href: `#/driver/${o.user_id}` }, String(o.user_id))),
      h("td", { "data-order-status": o.status }, orderStatus(o.status)),
      h("td", {}, money(o.hold_amount, o.currency)), h("td", {}, money(o.amount, o.currency)),
      h("td", { "data-payment-status": o.payment_status || "" }, [paymentStatus(o.payment_status), payment && payment.refunded_amount
        ? ` (${t("orders.refunded", { amount: money(payment.refunded_amount, payment.currency) })})` : ""].join("")),
      h("td", {}, when(o.created_at)),
      h("td", { class: "flag" }, (o.flags || []).map((f) => f.kind || f.reason || "").join(", ")),
      h("td", {},
        CANCELLABLE.has(o.status) ? action(t("orders.cancel"), async () => {
          const done = await call("POST", `/api/v1/admin/orders/${enc(o.id)}/cancel`);
          notify(t("orders.cancelled", { order: o.id, released: money(done.released, o.currency) }), "ok");
          await refresh();
        }, { area: "orders", id: `cancel-${o.id}`, confirmText: t("orders.cancel_confirm", { order: o.id }) }) : null,
        refundable && can("refunds")
          ? action(t("refund.open"), async () => pickRefund(o), { area: "refunds", id: `refund-${o.id}` }) : null));
  }

  function showOrders(page) {
    replace(orders, table(
      [t("orders.order"), t("orders.charger"), t("orders.driver"), t("orders.status"), t("orders.hold"),
        t("orders.charged"), t("orders.payment"), t("orders.created"), t("orders.flags"), ""],
      shown.map(orderRow), { empty: t("orders.none") }));
    // a full page may have older ones behind it
    replace(more, page.length === PAGE ? h("button", { type: "button", class: "small secondary", "data-read": true,
      id: "orders-older", onclick: () => older().catch((err) => notify(failure(err))) }, t("audit.older")) : null);
  }

  async function older() {
    const page = await call("GET", `/api/v1/admin/orders?${ordersQuery(shown.length)}`);
    const known = new Set(shown.map((o) => o.id));
    shown = shown.concat(page.filter((o) => !known.has(o.id)));
    showOrders(page);
  }

  async function refresh() {
    const charger = chargerFilter.value.trim();
    const [orderList, paymentList, records, refused] = await Promise.all([
      call("GET", `/api/v1/admin/orders?${ordersQuery(0)}`),
      call("GET", "/api/v1/admin/payments?limit=200"),
      call("GET", "/api/v1/admin/settlements?limit=30"),
      call("GET", `/api/v1/admin/settlement-rejections?limit=30${charger ? `&charger_id=${enc(charger)}` : ""}`),
    ]);
    replace(rejections, rejectionsTable(refused));
    paymentsById = new Map(paymentList.map((p) => [p.id, p]));
    shown = orderList;
    showOrders(orderList);
    orders.dataset.query = String(ordersQuery(0)); // what the list shows (a filter's answer)
    replace(payments, table(
      ["#", t("orders.order"), t("orders.status"), t("orders.charged"), t("orders.refunded_col"), t("orders.method"), t("orders.created")],
      paymentList.slice(0, 30).map((p) => h("tr", { "data-payment": p.id },
        h("td", {}, String(p.id)), h("td", {}, p.order_id), h("td", { "data-payment-status": p.status }, paymentStatus(p.status)),
        h("td", {}, money(p.amount, p.currency)), h("td", {}, money(p.refunded_amount, p.currency)),
        h("td", {}, p.method), h("td", {}, when(p.created_at))))));
    replace(settlements, table(
      ["#", t("orders.order"), t("orders.charger"), "Txn", t("orders.energy"), t("orders.charged"),
        t("orders.signed"), "OCPP", t("orders.sources"), t("orders.disagreement")],
      records.map((s) => h("tr", { "data-settlement": s.id },
        h("td", {}, String(s.id)), h("td", {}, s.order_id), h("td", {}, s.charger_id),
        h("td", {}, s.txn || ""), h("td", {}, s.energy_wh === null ? "" : `${s.energy_wh} Wh`),
        h("td", {}, money(s.amount, s.currency)), h("td", {}, money(s.signed_amount, s.currency)),
        h("td", {}, money(s.ocpp_amount, s.currency)), h("td", {}, (s.sources || []).join(" + ")),
        h("td", { class: s.disagreement ? "flag" : "" }, s.disagreement ? t("common.yes") : "")))));
  }
  return { refresh, live: false };
}

