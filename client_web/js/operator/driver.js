// One driver's page: the account (disable, sign out), the wallet (available, held, each open
// hold by order) and the wallet's ledger: top-ups, holds, captures, releases, debts and
// refunds, newest first, each with what it changed in the wallet; the billing models
// assigned to the driver and the one that applies to them at a charger.

import { call, enc } from "./api.js";
import { t } from "./i18n.js";
import { transfersTable } from "./order.js";
import { driverTariffBody } from "./tariff.js";
import { action, back, facts, h, money, notify, replace, table, when } from "./ui.js";

const PAGE = 50;

export function driverView(root, userId) {
  const account = h("div", { class: "body", id: "driver-account" });
  const wallet = h("div", { class: "body", id: "driver-wallet" });
  const ledger = h("div", { class: "body", id: "driver-ledger" });
  const more = h("div", {});
  const tariff = driverTariffBody(userId);
  const kind = h("select", { id: "ledger-kind", "aria-label": t("ledger.kind") },
    ["", "top_up", "hold", "capture", "release", "debt", "refund"].map((k) => h("option", { value: k }, k ? t(`ledger.${k}`) : t("ledger.any_kind"))));
  const filter = h("form", { class: "filters", id: "ledger-filter" }, kind,
    h("button", { type: "submit", class: "small secondary search", "data-read": true }, t("drivers.find")));
  filter.addEventListener("submit", (event) => {
    event.preventDefault();
    loadLedger(0).catch((err) => notify(err.message));
  });
  const card = (id, title, ...body) => h("section", { class: "card", id }, h("h2", {}, title), ...body);
  replace(root, back("#/drivers", t("nav.drivers")),
    h("h1", { id: "driver-title" }, t("driver.title", { id: userId })),
    card("driver-card", t("driver.account"), account),
    card("wallet-card", t("driver.wallet"), wallet),
    card("driver-tariff-card", t("tariff.title"), h("div", { class: "body" }, tariff.body)),
    card("ledger-card", t("driver.ledger"), filter, ledger, more));

  const accountName = `wallet:${userId}`;
  let shown = [];
  async function loadLedger(offset) {
    const params = new URLSearchParams({ account: accountName, limit: String(PAGE), offset: String(offset) });
    if (kind.value) params.set("kind", kind.value);
    const page = await call("GET", `/api/v1/admin/ledger?${params}`);
    shown = offset ? shown.concat(page.transfers) : page.transfers;
    replace(ledger, transfersTable(shown, accountName));
    replace(more, page.transfers.length === PAGE
      ? h("button", { type: "button", class: "small secondary", "data-read": true, id: "ledger-older",
        onclick: () => loadLedger(offset + PAGE).catch((err) => notify(err.message)) }, t("audit.older")) : null);
  }

  async function refresh() {
    const [user, purse] = await Promise.all([
      call("GET", `/api/v1/admin/users/${enc(userId)}`),
      call("GET", `/api/v1/admin/wallets/${enc(userId)}`),
    ]);
    replace(account, facts([
      [t("drivers.email"), user.email],
      [t("drivers.state"), h("span", { "data-user-state": user.id }, user.disabled ? t("drivers.disabled") : t("drivers.active"))],
      [t("orders.created"), when(user.created_at)],
    ]), h("div", { class: "buttons" },
      action(user.disabled ? t("drivers.enable") : t("drivers.disable"), async () => {
        await call("PATCH", `/api/v1/admin/users/${user.id}`, { json: { disabled: !user.disabled } });
        await refresh();
      }, { area: "drivers", kind: user.disabled ? "secondary" : "danger", id: `disable-${user.id}` }),
      action(t("drivers.sign_out"), async () => {
        await call("POST", `/api/v1/admin/users/${user.id}/sign-out`);
        notify(t("drivers.signed_out", { email: user.email }), "ok");
      }, { area: "drivers", id: `signout-${user.id}` })));
    replace(wallet, facts([
      [t("driver.available"), h("strong", { id: "wallet-available", "data-amount": purse.available }, money(purse.available, purse.currency))],
      [t("driver.held"), h("span", { id: "wallet-held", "data-amount": purse.held }, money(purse.held, purse.currency))],
    ]), purse.holds.length ? table([t("orders.order"), t("orders.hold")],
      purse.holds.map((hold) => h("tr", { "data-hold": hold.order_id },
        h("td", {}, h("a", { href: `#/order/${enc(hold.order_id)}` }, hold.order_id)), h("td", {}, money(hold.amount, purse.currency)))))
      : h("p", { class: "hint" }, t("driver.no_holds")));
    await tariff.load();
    await loadLedger(0);
  }
  return { refresh, live: false };
}
