// The driver's orders, newest first, each leading to where it stands (QR, payment, receipt).

import * as api from "../api.js";
import { h, replace } from "../dom.js";
import { has, t } from "../i18n.js";
import { formatAmount } from "../money.js";

function itemsOf(data) {
  if (Array.isArray(data)) return data;
  return (data && (data.items || data.orders || data.data)) || [];
}

function linkOf(order) {
  const id = encodeURIComponent(order.id);
  if (order.receipt_id) return `#/receipt/${encodeURIComponent(order.receipt_id)}`;
  if (["created", "started", "expired", "cancelling", "cancelled"].includes(order.status)) return `#/order/${id}`;
  return `#/payment/${id}`;
}

export async function show(main, route, app) {
  const list = itemsOf(await api.orders());
  if (!app.isCurrent()) return;
  list.sort((a, b) => String(b.created_at || "").localeCompare(String(a.created_at || "")));
  const rows = list.map((order) => {
    const currency = order.currency || "CNY";
    const amount = order.amount ?? order.captured_amount;
    const status = has(`order.${order.status}`) ? t(`order.${order.status}`) : order.status;
    return h("li", { class: "order-row", dataset: { order: order.id, status: order.status } },
      h("a", { href: linkOf(order) },
        h("span", { class: "order-charger" }, order.charger_id || ""),
        h("span", { class: "order-status" }, status),
        h("span", { class: "order-amount" },
          amount !== undefined && amount !== null ? formatAmount(amount, currency)
            : t("history.held", { amount: formatAmount(order.hold_amount ?? 0, currency) })),
        h("span", { class: "order-date" }, order.created_at ? new Date(order.created_at).toLocaleString() : "")));
  });
  replace(main, h("section", { class: "card" },
    h("h1", {}, t("history.title")),
    rows.length ? h("ul", { class: "orders", id: "orders" }, rows)
      : h("p", { class: "hint", id: "no-orders" }, t("history.empty"))));
}
