// Operator users (admins only): add one with a role, change a role, set a new password,
// disable or enable an account.

import { call, enc } from "./api.js";
import { t } from "./i18n.js";
import { can } from "./roles.js";
import { action, actionForm, field, h, notify, replace, table, unavailable, when } from "./ui.js";

const ROLES = ["viewer", "operator", "admin"];

export function operatorsView(root) {
  const body = h("div", { class: "body" });
  const roleOptions = ROLES.map((r) => [r, t(`role.${r}`)]);
  const add = actionForm({ id: "add-operator" }, [
    field(t("operators.name"), { name: "name", required: true, maxlength: 64, autocomplete: "off" }),
    field(t("signin.password"), { name: "password", type: "password", required: true, minlength: 8, autocomplete: "new-password" }),
    field(t("operators.role"), { name: "role", value: "operator" }, roleOptions),
  ], async (v, form) => {
    await call("POST", "/api/v1/admin/operators", { json: { name: v.name, password: v.password, role: v.role } });
    form.reset();
    notify(t("operators.added", { name: v.name }), "ok");
    await refresh();
  }, { area: "operators", submit: t("operators.add") });
  replace(root,
    h("section", { class: "card", id: "operators" }, h("h2", {}, t("nav.operators")), body),
    add ? h("section", { class: "card" }, h("h2", {}, t("operators.add")), add) : null);

  function controls(o) {
    if (!can("operators")) return null;
    const path = `/api/v1/admin/operators/${enc(o.name)}`;
    const select = h("select", { "aria-label": t("operators.role") },
      roleOptions.map(([value, text]) => h("option", { value, selected: value === o.role }, text)));
    select.addEventListener("change", async () => {
      try {
        await call("PATCH", path, { json: { role: select.value } });
        await refresh();
      } catch (err) {
        notify(err.message);
      }
    });
    return [select,
      action(o.disabled ? t("drivers.enable") : t("drivers.disable"), async () => {
        await call("PATCH", path, { json: { disabled: !o.disabled } });
        await refresh();
      }, { area: "operators", kind: o.disabled ? "secondary" : "danger" }),
      action(t("operators.password"), async () => {
        const password = window.prompt(t("operators.new_password", { name: o.name }));
        if (!password) return;
        await call("PATCH", path, { json: { password } });
        notify(t("operators.password_set", { name: o.name }), "ok");
      }, { area: "operators" })];
  }

  async function refresh() {
    try {
      const answer = await call("GET", "/api/v1/admin/operators");
      const list = Array.isArray(answer) ? answer : answer.items || [];
      replace(body, table([t("operators.name"), t("operators.role"), t("drivers.state"), t("orders.created"), ""],
        list.map((o) => h("tr", { "data-operator": o.name },
          h("td", {}, o.name), h("td", {}, t(`role.${o.role}`)),
          h("td", {}, o.disabled ? t("drivers.disabled") : t("drivers.active")),
          h("td", {}, when(o.created_at)), h("td", {}, controls(o))))));
    } catch (err) {
      if (err.status === 404) replace(body, unavailable(err));
      else throw err;
    }
  }
  return { refresh, live: false };
}
