// The receipt of a paid charge.

import * as api from "../api.js";
import { h, replace, rows } from "../dom.js";
import { t } from "../i18n.js";
import { formatAmount } from "../money.js";
import { duration, kwh } from "../units.js";

function dateText(value) {
  const ms = typeof value === "number" ? value * 1000 : Date.parse(value);
  return Number.isFinite(ms) ? new Date(ms).toLocaleString() : "";
}

export async function show(main, route, app) {
  const data = await api.receipt(route.arg);
  if (!app.isCurrent()) return;
  const currency = data.currency || "CNY";
  replace(main, h("section", { class: "card receipt", id: "receipt" },
    h("div", { class: "tick", "aria-hidden": "true" }, "✓"),
    h("h1", {}, t("receipt.title")),
    rows([
      [t("receipt.number"), String(data.receipt_id ?? data.id ?? route.arg)],
      data.order_id ? [t("payment.order"), data.order_id] : null,
      data.charger_id ? [t("payment.charger"), data.charger_id] : null,
      data.energy_wh !== undefined && data.energy_wh !== null ? [t("payment.energy"), kwh(data.energy_wh)] : null,
      data.duration_s !== undefined && data.duration_s !== null ? [t("payment.duration"), duration(data.duration_s)] : null,
      [t("payment.total"), h("strong", { id: "receipt-amount" }, formatAmount(data.amount ?? 0, currency))],
      data.paid_at || data.created_at ? [t("receipt.paid_at"), dateText(data.paid_at || data.created_at)] : null,
    ]),
    h("div", { class: "actions" },
      h("a", { class: "button secondary", href: "#/history" }, t("nav.history")),
      h("a", { class: "button secondary", href: "#/wallet" }, t("nav.wallet")))));
}
