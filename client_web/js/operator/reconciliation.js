// The reconciliation report (orders settled by QR only, OCPP only, both; disagreements,
// stuck holds) and its CSV download.

import { call } from "./api.js";
import { t } from "./i18n.js";
import { failure, h, money, notify, replace, table, when } from "./ui.js";

async function downloadCsv(event) {
  event.preventDefault();
  try {
    const blob = await call("GET", "/api/v1/admin/reconciliation.csv");
    h("a", { href: URL.createObjectURL(blob), download: "reconciliation.csv" }).click();
  } catch (err) {
    notify(failure(err));
  }
}

export function reconciliationView(root) {
  const body = h("div", { class: "body" });
  replace(root, h("section", { class: "card", id: "reconciliation" }, h("h2", {}, t("nav.reconciliation")), body));
  async function refresh() {
    const report = await call("GET", "/api/v1/admin/reconciliation");
    replace(body,
      h("div", { class: "counts", id: "reconciliation-counts" },
        Object.entries(report.counts || {}).map(([name, n]) =>
          h("div", { class: "count", "data-count": name }, h("strong", {}, String(n)), name.replace(/_/g, " ")))),
      table([t("orders.order"), t("orders.charger"), t("orders.status"), t("recon.settled_by"), t("recon.sessions"),
        t("orders.signed"), "OCPP", t("orders.charged"), t("recon.stuck_hold"), t("orders.flags")],
      (report.rows || []).slice(-30).reverse().map((r) => h("tr", {},
        h("td", {}, r.order_id), h("td", {}, r.charger_id), h("td", {}, r.status),
        h("td", {}, r.settled_by), h("td", {}, String(r.sessions)),
        h("td", {}, money(r.signed_amount)), h("td", {}, money(r.ocpp_amount)),
        h("td", {}, money(r.charged_amount)), h("td", { class: r.stuck_hold ? "flag" : "" }, r.stuck_hold ? t("common.yes") : ""),
        h("td", { class: "flag" }, r.flags || "")))),
      h("p", { class: "hint" }, t("recon.generated", { at: when(report.generated_at) }), " ",
        h("a", { href: "#", id: "csv", onclick: downloadCsv }, t("recon.csv"))));
  }
  return { refresh, live: true };
}
