// The receipt of a paid charge: the seller, its number, where and when, the tariff applied,
// the cost part by part, the tax included, and the total.

import * as api from "../api.js";
import { h, replace, rows } from "../dom.js";
import { has, language, t } from "../i18n.js";
import { describeTariff, formatAmount } from "../money.js";
import { duration, kwh } from "../units.js";
import { breakdownOf } from "./payment.js";

function dateText(value) {
  const ms = typeof value === "number" ? value * 1000 : Date.parse(value);
  return Number.isFinite(ms) ? new Date(ms).toLocaleString(language()) : "";
}

/** "0.13" -> "13%" in the page's language (the rate is a decimal fraction as text). */
export function percent(rate) {
  const value = Number(rate);
  return new Intl.NumberFormat(language(), { style: "percent", maximumFractionDigits: 4 }).format(value);
}

function seller(operator) {
  if (!operator) return null;
  return h("section", { class: "seller", id: "receipt-seller", "aria-label": t("receipt.seller") },
    h("p", { class: "seller-name" }, operator.name),
    operator.address ? h("p", { class: "hint" }, operator.address) : null,
    operator.tax_id ? h("p", { class: "hint" }, t("receipt.tax_id", { id: operator.tax_id })) : null);
}

/** The cost lines: each part, what the cap or rounding took off or added, tax, total. */
function costRows(data, currency) {
  const amount = data.amount ?? 0;
  const parts = breakdownOf(data).map(([label, value]) =>
    [has(`payment.part.${label}`) ? t(`payment.part.${label}`) : label, formatAmount(value, currency)]);
  const partsTotal = breakdownOf(data).reduce((sum, [, value]) => sum + Number(value || 0), 0);
  const adjustment = parts.length ? amount - partsTotal : 0;
  const tax = Array.isArray(data.tax) ? data.tax : [];
  return rows([
    ...parts,
    adjustment ? [t("receipt.adjustment"), formatAmount(adjustment, currency)] : null,
    tax.length ? [t("receipt.net"), h("span", { id: "receipt-net" }, formatAmount(data.net_amount ?? amount, currency))] : null,
    ...tax.map((line) => [t("receipt.tax", { rate: percent(line.rate) }),
      h("span", { class: "receipt-tax" }, formatAmount(line.amount, currency))]),
    [tax.length ? t("receipt.total_with_tax") : t("payment.total"),
      h("strong", { id: "receipt-amount" }, formatAmount(amount, currency))],
  ]);
}

export async function show(main, route, app) {
  const data = await api.receipt(route.arg);
  if (!app.isCurrent()) return;
  const currency = data.currency || "CNY";
  const tariff = data.tariff ? describeTariff(data.tariff) : [];
  const charger = data.evse_id ? t("receipt.charger_evse", { charger: data.charger_id, evse: data.evse_id }) : data.charger_id;
  replace(main, h("section", { class: "card receipt", id: "receipt" },
    h("div", { class: "tick", "aria-hidden": "true" }, "✓"),
    h("h1", {}, t("receipt.title")),
    seller(data.operator),
    rows([
      [t("receipt.number"), h("span", { id: "receipt-number" }, data.number || String(data.receipt_id ?? route.arg))],
      data.paid_at || data.created_at ? [t("receipt.paid_at"), dateText(data.paid_at || data.created_at)] : null,
      data.order_id ? [t("payment.order"), data.order_id] : null,
      data.charger_id ? [t("payment.charger"), charger] : null,
      data.location ? [t("charger.location"), h("span", { id: "receipt-location" }, data.location)] : null,
      data.energy_wh !== undefined && data.energy_wh !== null ? [t("payment.energy"), kwh(data.energy_wh)] : null,
      data.duration_s !== undefined && data.duration_s !== null ? [t("payment.duration"), duration(data.duration_s)] : null,
    ]),
    tariff.length ? h("section", { class: "receipt-part", id: "receipt-tariff" },
      h("h2", {}, t("receipt.tariff")),
      tariff.map((line) => h("p", { class: "tariff-line" }, line))) : null,
    h("section", { class: "receipt-part", id: "receipt-cost" },
      h("h2", {}, t("receipt.cost")),
      costRows(data, currency)),
    h("div", { class: "actions" },
      h("a", { class: "button secondary", href: "#/history" }, t("nav.history")),
      h("a", { class: "button secondary", href: "#/wallet" }, t("nav.wallet")))));
}
