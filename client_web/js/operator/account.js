// The signed-in operator's own account (every role): who and what role, and a new password
// (the current one asked again; the CSMS ends the account's other sign-ins). The admin API
// key has no password to change.

import { call, session } from "./api.js";
import { t } from "./i18n.js";
import { actionForm, facts, field, h, notify, replace } from "./ui.js";

const MIN = 12; // the CSMS's minimum password length

export function accountView(root) {
  const current = session();
  const body = h("div", { class: "body" });
  replace(root, h("section", { class: "card", id: "account" }, h("h2", {}, t("account.title")), body));

  function form() {
    return actionForm({ id: "password-change" }, [
      field(t("account.current"), { name: "current", id: "pw-current", type: "password", required: true, autocomplete: "current-password" }),
      field(t("account.new"), { name: "new", id: "pw-new", type: "password", required: true, minlength: MIN, autocomplete: "new-password" }),
      field(t("account.repeat"), { name: "repeat", id: "pw-repeat", type: "password", required: true, minlength: MIN, autocomplete: "new-password" }),
    ], async (v, el) => {
      if (v.new !== v.repeat) {
        notify(t("account.mismatch"));
        return;
      }
      try {
        await call("POST", "/api/v1/admin/me/password", { json: { current_password: v.current, new_password: v.new } });
      } catch (err) {
        if (err.status === 401) {
          notify(t("account.wrong_current"));
          return;
        }
        if (err.status === 429) {
          notify(t("account.throttled"));
          return;
        }
        throw err;
      }
      el.reset();
      notify(t("account.changed"), "ok");
    }, { submit: t("account.change") });
  }

  async function refresh() {
    replace(body, facts([[t("operators.name"), current.name], [t("operators.role"), t(`role.${current.role}`)]]),
      current.kind === "api_key" ? h("p", { class: "hint", id: "account-key" }, t("account.key_has_none"))
        : [h("h3", {}, t("account.password")), h("p", { class: "hint" }, t("account.hint", { min: MIN })), form()]);
  }
  return { refresh, live: false };
}
