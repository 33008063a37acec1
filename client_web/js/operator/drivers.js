// Drivers: find one by email, disable (or enable) the account, sign it out everywhere; a
// driver's id opens their page (wallet and ledger, driver.js).

import { call } from "./api.js";
import { t } from "./i18n.js";
import { action, h, notify, replace, table, when } from "./ui.js";

export function driversView(root) {
  const list = h("div", { class: "body", id: "driver-list" });
  const search = h("input", { type: "search", id: "driver-email", "data-i18n-placeholder": "drivers.search",
    placeholder: t("drivers.search") });
  const form = h("form", { class: "inline", id: "driver-search" }, search,
    h("button", { type: "submit", class: "small secondary search", "data-read": true }, t("drivers.find")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    refresh().catch((err) => notify(err.message));
  });
  replace(root, h("section", { class: "card", id: "drivers" }, h("h2", {}, t("nav.drivers")), form, list));

  let asked = 0; // the latest search wins: an earlier answer still on its way is dropped
  async function refresh() {
    const mine = ++asked;
    const email = search.value.trim();
    const users = await call("GET", `/api/v1/admin/users?limit=100${email ? `&email=${encodeURIComponent(email)}` : ""}`);
    if (mine !== asked) return;
    list.dataset.query = email; // what the list shows now (a test, or a person, can tell)
    replace(list, table([t("drivers.id"), t("drivers.email"), t("drivers.state"), t("orders.created"), ""],
      users.map((u) => h("tr", { "data-user": u.id },
        h("td", {}, h("a", { href: `#/driver/${u.id}`, id: `open-driver-${u.id}` }, String(u.id))),
        h("td", { class: "wrap" }, h("a", { href: `#/driver/${u.id}` }, u.email)),
        h("td", { "data-user-state": u.id }, u.disabled ? t("drivers.disabled") : t("drivers.active")),
        h("td", {}, when(u.created_at)),
        h("td", {},
          action(u.disabled ? t("drivers.enable") : t("drivers.disable"), async () => {
            await call("PATCH", `/api/v1/admin/users/${u.id}`, { json: { disabled: !u.disabled } });
            await refresh();
          }, { area: "drivers", kind: u.disabled ? "secondary" : "danger", id: `disable-${u.id}` }),
          action(t("drivers.sign_out"), async () => {
            await call("POST", `/api/v1/admin/users/${u.id}/sign-out`);
            notify(t("drivers.signed_out", { email: u.email }), "ok");
          }, { area: "drivers", id: `signout-${u.id}` }))))));
  }
  return { refresh, live: false };
}
