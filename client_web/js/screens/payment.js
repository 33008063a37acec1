// The payment summary: what was delivered, the cost breakdown, what happens to the hold;
// "Pay" captures against the hold and leads to the receipt.

import * as api from "../api.js";
import { h, replace, rows } from "../dom.js";
import { explain, notify } from "../errors.js";
import { has, t } from "../i18n.js";
import { formatAmount } from "../money.js";
import { keep, keptFor } from "../offline.js";
import { duration, kwh } from "../units.js";

const PARTS = ["fixed", "energy", "time", "idle"];

function elapsed(startIso, stopIso) {
  const ms = Date.parse(stopIso) - Date.parse(startIso);
  return Number.isFinite(ms) && ms >= 0 ? duration(ms / 1000) : null;
}

/** Breakdown lines [label, minor amount] from a {fixed, energy, ...} object or a list. */
export function breakdownOf(answer) {
  const raw = answer.breakdown || answer.cost_breakdown;
  if (!raw) return [];
  if (Array.isArray(raw)) return raw.map((p) => [p.label || p.kind || p.name, p.amount]);
  return PARTS.filter((k) => raw[k]).map((k) => [k, raw[k]]);
}

export async function show(main, route, app) {
  const orderId = route.arg;
  const cached = sessionStorage.getItem(`qrcharge.settlement.${orderId}`);
  const order = await api.order(orderId).catch((err) => {
    if (!cached) throw err;
    return {};
  });
  if (!app.isCurrent()) return;
  for (const entry of await keptFor(orderId)) {
    if (entry.state === "sent") keep.forgetSettlement(entry.token).catch(() => {}); // delivered
  }
  const answer = { ...order, ...(order.settlement || {}), ...(cached ? JSON.parse(cached) : {}) };
  const currency = answer.currency || answer.cur || order.currency || "CNY";
  const amount = answer.amount ?? order.amount ?? 0;
  const hold = order.hold_amount ?? answer.hold_amount;
  const paymentId = answer.payment_id || order.payment_id;
  const receiptId = answer.receipt_id || order.receipt_id;
  const when = elapsed(answer.started_at || answer.start, answer.stopped_at || answer.stop);

  const parts = breakdownOf(answer).map(([label, value]) =>
    [has(`payment.part.${label}`) ? t(`payment.part.${label}`) : label, formatAmount(value, currency)]);
  const pay = h("button", { type: "button", class: "primary", id: "pay-button" },
    t("payment.pay", { amount: formatAmount(amount, currency) }));
  const summary = h("section", { class: "card", id: "payment-summary" },
    h("h1", {}, t("payment.title")),
    rows([
      [t("payment.order"), orderId],
      answer.charger_id ? [t("payment.charger"), answer.charger_id] : null,
      answer.energy_wh != null ? [t("payment.energy"), kwh(answer.energy_wh)] : null,
      when ? [t("payment.duration"), when] : null,
      ...parts,
      [t("payment.total"), h("strong", { id: "payment-total" }, formatAmount(amount, currency))],
      hold ? [t("payment.hold"), t("payment.hold_released", {
        hold: formatAmount(hold, currency), back: formatAmount(Math.max(0, hold - amount), currency),
      })] : null,
    ]),
    answer.flagged ? h("p", { class: "warning" }, t("payment.flagged")) : null,
    receiptId ? h("a", { class: "button primary", href: `#/receipt/${encodeURIComponent(receiptId)}`, id: "receipt-link" }, t("payment.see_receipt")) : pay);

  pay.addEventListener("click", async () => {
    if (!paymentId) {
      notify(t("error.no_payment"));
      return;
    }
    pay.disabled = true;
    notify(null);
    try {
      const paid = await api.confirmPayment(paymentId);
      sessionStorage.removeItem(`qrcharge.settlement.${orderId}`);
      app.navigate("receipt", paid.receipt_id);
    } catch (err) {
      const already = err.body && (err.body.receipt_id || (err.body.detail && err.body.detail.receipt_id));
      if (already) app.navigate("receipt", already);
      else notify(explain(err));
    } finally {
      pay.disabled = false;
    }
  });
  replace(main, summary);
}
