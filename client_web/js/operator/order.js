// One order's page: its state, hold and limits, its flags (a dispute, a session over the
// cap, a settlement after a cancel...), each session record with both sources, the payment
// with its refunds, every ledger transfer of the order, and refused settlements that named
// it; with Cancel and Refund where the order allows them.

import { call, enc } from "./api.js";
import { t } from "./i18n.js";
import { orderStatus, paymentStatus, refundForm, rejectionsTable } from "./orders.js";
import { can } from "./roles.js";
import { action, back, facts, h, money, notify, replace, table, when } from "./ui.js";

const CANCELLABLE = new Set(["created", "cancelling", "started"]);

/** The order's request in words: "energy 10000 Wh", "amount 15.00 CNY", "full". */
function requested(o) {
  if (o.request_kind === "amount") return `${t("order.kind_amount")} ${money(o.request_value, o.currency)}`;
  if (o.request_kind === "energy") return `${t("order.kind_energy")} ${o.request_value} Wh`;
  if (o.request_kind === "duration") return `${t("order.kind_duration")} ${Math.round((o.request_value || 0) / 60)} min`;
  return t("order.kind_full");
}

export function orderView(root, orderId) {
  const summary = h("div", { class: "body", id: "order-summary" });
  const flags = h("div", { class: "body", id: "order-flags" });
  const records = h("div", { class: "body", id: "order-settlements" });
  const payment = h("div", { class: "body", id: "order-payment" });
  const transfers = h("div", { class: "body", id: "order-ledger" });
  const refused = h("div", { class: "body", id: "order-rejections" });
  const refund = h("div", { class: "body", id: "refund-body" });
  const card = (id, title, body) => h("section", { class: "card", id }, h("h2", {}, title), body);
  replace(root, back("#/orders", t("nav.orders")),
    h("h1", { id: "order-title" }, t("order.title", { id: orderId })),
    card("order-card", t("order.summary"), summary),
    card("order-flags-card", t("orders.flags"), flags),
    card("order-payment-card", t("order.payment"), payment),
    card("refund-card", t("refund.title"), refund),
    card("order-settlements-card", t("orders.settlements"), records),
    card("order-ledger-card", t("order.ledger"), transfers),
    card("order-rejections-card", t("rejection.title"), refused));

  async function refresh() {
    const [o, payments, ledger, rejections] = await Promise.all([
      call("GET", `/api/v1/admin/orders/${enc(orderId)}`),
      call("GET", `/api/v1/admin/payments?order_id=${enc(orderId)}`),
      call("GET", `/api/v1/admin/ledger?order_id=${enc(orderId)}&limit=100`),
      call("GET", `/api/v1/admin/settlement-rejections?order_id=${enc(orderId)}`),
    ]);
    const paid = payments[0] || null;
    replace(summary, facts([
      [t("orders.status"), h("strong", { "data-order-status": o.status }, orderStatus(o.status))],
      [t("orders.charger"), h("a", { href: `#/charger/${enc(o.charger_id)}` }, o.charger_id)],
      ["EVSE", o.evse_id],
      [t("orders.driver"), h("a", { href: `#/driver/${o.user_id}`, id: "order-driver" }, String(o.user_id))],
      [t("order.request"), requested(o)],
      [t("orders.hold"), h("span", { id: "order-hold" }, money(o.hold_amount, o.currency),
        o.hold_released_at ? ` (${t("order.released_at", { at: when(o.hold_released_at) })})` : ` (${t("order.held")})`)],
      [t("order.limit"), money(o.limits.amount, o.currency)],
      [t("orders.charged"), money(o.amount, o.currency)],
      [t("orders.energy"), o.energy_wh !== null && o.energy_wh !== undefined ? `${o.energy_wh} Wh` : null],
      [t("orders.created"), when(o.created_at)], [t("order.expires"), when(o.expires_at)],
      [t("order.started"), when(o.started_at)], [t("order.settled"), when(o.settled_at)], [t("order.paid"), when(o.paid_at)],
      [t("order.receipt"), o.receipt_id ? `#${o.receipt_id}` : null],
    ], { "data-order": o.id }),
    h("div", { class: "buttons" },
      CANCELLABLE.has(o.status) ? action(t("orders.cancel"), async () => {
        const done = await call("POST", `/api/v1/admin/orders/${enc(o.id)}/cancel`);
        notify(t("orders.cancelled", { order: o.id, released: money(done.released, o.currency) }), "ok");
        await refresh();
      }, { area: "orders", kind: "danger", id: "order-cancel", confirmText: t("orders.cancel_confirm", { order: o.id }) }) : null));
    replace(flags, table([t("order.flag"), t("audit.detail")],
      o.flags.map((f) => h("tr", { "data-flag": f.kind }, h("td", { class: "flag" }, f.kind), h("td", { class: "wrap" }, f.detail || ""))),
      { empty: t("order.no_flags") }));
    replace(payment, paid ? facts([
      ["#", String(paid.id)], [t("orders.status"), h("strong", { "data-payment-status": paid.status }, paymentStatus(paid.status))],
      [t("orders.charged"), money(paid.amount, paid.currency)],
      [t("orders.refunded_col"), h("span", { id: "order-refunded" }, money(paid.refunded_amount, paid.currency))],
      [t("orders.method"), paid.method], [t("order.capture"), paid.capture_kind],
      [t("orders.created"), when(paid.created_at)], [t("order.captured"), when(paid.captured_at)],
    ]) : h("p", { class: "hint" }, t("order.no_payment")));
    const refundable = paid && paid.status === "captured" && paid.amount > paid.refunded_amount;
    replace(refund, refundable && can("refunds") ? refundForm({ order: o, payment: paid }, refresh)
      : h("p", { class: "hint" }, refundable ? t("common.read_only") : t("order.not_refundable")));
    replace(records, table(["#", t("order.session"), "Txn", t("orders.energy"), t("orders.charged"), t("orders.signed"), "OCPP",
      t("orders.sources"), t("orders.disagreement")],
    o.settlements.map((s) => h("tr", { "data-settlement": s.id },
      h("td", {}, String(s.id)), h("td", {}, String(s.session_no)), h("td", {}, s.txn || ""),
      h("td", {}, s.energy_wh === null ? "" : `${s.energy_wh} Wh`), h("td", {}, money(s.amount, s.currency)),
      h("td", {}, money(s.signed_amount, s.currency)), h("td", {}, money(s.ocpp_amount, s.currency)),
      h("td", {}, (s.sources || []).join(" + ")), h("td", { class: s.disagreement ? "flag" : "" }, s.disagreement ? t("common.yes") : "")))));
    replace(transfers, transfersTable(ledger.transfers, null));
    replace(refused, rejectionsTable(rejections));
  }
  return { refresh, live: false };
}

/** Ledger transfers: when, kind, order, amount, and either what ``account`` gained or lost
 * or every entry (account and amount) of the transfer. */
export function transfersTable(rows, account) {
  return table([t("ledger.at"), t("ledger.kind"), t("orders.order"), t("ledger.amount"), account ? t("ledger.change") : t("ledger.entries")],
    rows.map((x) => {
      const mine = account ? x.entries.filter((e) => e.account === account).reduce((sum, e) => sum + e.amount, 0) : null;
      return h("tr", { "data-transfer": x.id, "data-kind": x.kind },
        h("td", {}, when(x.created_at)), h("td", {}, t(`ledger.${x.kind}`)),
        h("td", {}, x.order_id ? h("a", { href: `#/order/${enc(x.order_id)}` }, x.order_id) : ""),
        h("td", {}, money(x.amount, x.currency)),
        account
          ? h("td", { class: mine < 0 ? "flag" : "" }, `${mine > 0 ? "+" : ""}${money(mine, x.currency)}`)
          : h("td", { class: "wrap" }, x.entries.map((e) => `${e.account} ${e.amount > 0 ? "+" : ""}${money(e.amount, x.currency)}`).join(", ")));
    }), { empty: t("ledger.none") });
}
