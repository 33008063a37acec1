// The CSMS signing keys (the ones chargers trust for start QRs) and their rotation.

import { call } from "./api.js";
import { t } from "./i18n.js";
import { action, h, notify, replace, table, when } from "./ui.js";

export function keysView(root) {
  const body = h("div", { class: "body" });
  replace(root, h("section", { class: "card", id: "keys" }, h("h2", {}, t("keys.csms")),
    h("p", { class: "hint" }, t("keys.rotate_hint")),
    action(t("keys.rotate"), async () => {
      const done = await call("POST", "/api/v1/admin/keys/rotate");
      notify(t("keys.rotated", { kid: done.kid, at: when(done.active_from), n: done.pushed_to }), "ok");
      await refresh();
    }, { area: "keys", id: "rotate-keys", confirmText: t("keys.rotate_confirm") }),
    body));
  async function refresh() {
    const keys = await call("GET", "/api/v1/admin/keys");
    replace(body, table([t("keys.kid"), t("keys.active_from"), t("keys.signing"), t("keys.published")],
      keys.map((k) => h("tr", {}, h("td", { class: "wrap" }, k.kid), h("td", {}, when(k.active_from)),
        h("td", {}, k.signing ? t("common.yes") : ""), h("td", {}, k.published ? t("common.yes") : "")))));
  }
  return { refresh, live: false };
}
