// The fleet: every charger with its link state and EVSEs, the demo's simulator controls, and
// the form that registers a new charger. A charger's own page is charger.js.

import { call, enc } from "./api.js";
import { controls, simulated } from "./demo.js";
import { t } from "./i18n.js";
import { actionForm, card, field, h, notify, replace, table, when } from "./ui.js";

function addForm(reload) {
  return actionForm({ id: "add-charger" }, [
    field(t("charger.id"), { name: "id", required: true, maxlength: 48 }),
    field(t("charger.password"), { name: "password", type: "password", minlength: 8, maxlength: 40, autocomplete: "new-password" }),
    field(t("charger.location"), { name: "location", maxlength: 200 }),
    field(t("charger.evses"), { name: "evses", type: "number", min: 0, max: 64, value: 1 }),
    field(t("charger.profile"), { name: "security_profile" },
      [["", t("charger.profile_default")], ["1", "1"], ["2", "2"], ["3", "3"]]),
  ], async (v, form) => {
    const body = { id: v.id, evses: Number(v.evses ?? 1) };
    if (v.password) body.password = v.password;
    if (v.location) body.location = v.location;
    if (v.security_profile) body.security_profile = Number(v.security_profile);
    await call("POST", "/api/v1/admin/chargers", { json: body });
    form.reset();
    notify(t("charger.added", { id: v.id }), "ok");
    await reload();
  }, { area: "chargers", submit: t("charger.add") });
}

async function rows(chargers, sims, reload) {
  const out = [];
  for (const c of chargers) {
    const sim = sims.get(c.id);
    const evses = (c.evses || []).map((e) => `${e.evse_id}: ${e.status}`).join(", ");
    out.push(h("tr", { "data-charger": c.id },
      h("td", { class: "wrap" },
        h("a", { href: `#/charger/${enc(c.id)}`, class: "charger-link" }, h("strong", {}, c.id)),
        ` OCPP ${c.ocpp_version || "?"}`, h("div", { class: "hint" }, c.location || "")),
      h("td", {},
        h("span", { class: c.connected ? "online" : "offline", "data-charger-state": c.id },
          c.connected ? t("charger.online") : t("charger.offline")),
        h("div", { class: "hint" }, when(c.last_seen))),
      h("td", {}, t(`registration.${c.registration}`)),
      h("td", { class: "wrap" }, evses),
      sims.size ? h("td", { class: "wrap" }, sim ? await controls(sim, reload) : "") : null));
  }
  return out;
}

export function chargersView(root) {
  const list = h("div", { class: "body" });
  replace(root,
    h("section", { class: "card", id: "chargers" }, h("h2", {}, t("nav.chargers")), list),
    card("add-charger-card", t("charger.add_title"), addForm(() => refresh()) || h("p", { class: "hint" }, t("common.read_only"))));

  async function refresh() {
    const [chargers, sims] = await Promise.all([call("GET", "/api/v1/admin/chargers?limit=1000"), simulated()]);
    const headers = [t("charger.charger"), t("charger.link"), t("charger.registration"), t("charger.evses")];
    if (sims.size) headers.push(t("demo.simulator"));
    replace(list, table(headers, await rows(chargers, sims, refresh)));
  }
  return { refresh, live: true };
}
