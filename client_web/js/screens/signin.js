// Sign in or register (email + password); then back to where the driver was going.

import * as api from "../api.js";
import { h, replace } from "../dom.js";
import { explain, notify } from "../errors.js";
import { t } from "../i18n.js";

export async function show(main, route, app) {
  const next = route.query.get("next") || "#/";
  const email = h("input", { type: "email", name: "email", id: "email", autocomplete: "username", required: true });
  const password = h("input", {
    type: "password", name: "password", id: "password", autocomplete: "current-password",
    required: true, minlength: 8,
  });
  let registering = route.query.get("mode") === "register";
  const title = h("h1", {});
  const submit = h("button", { type: "submit", class: "primary", id: "signin-submit" });
  const toggle = h("button", { type: "button", class: "link", id: "signin-toggle" });

  function label() {
    replace(title, t(registering ? "signin.register_title" : "signin.title"));
    replace(submit, t(registering ? "signin.register" : "signin.submit"));
    replace(toggle, t(registering ? "signin.have_account" : "signin.no_account"));
    password.autocomplete = registering ? "new-password" : "current-password";
  }

  async function onSubmit(event) {
    event.preventDefault();
    submit.disabled = true;
    notify(null);
    try {
      if (registering) await api.register(email.value.trim(), password.value);
      await api.signIn(email.value.trim(), password.value);
      if (next.startsWith("#")) location.hash = next;
      else location.href = next;
      if (!next.startsWith("#")) return;
    } catch (err) {
      notify(explain(err));
    } finally {
      submit.disabled = false;
    }
  }

  toggle.addEventListener("click", () => {
    registering = !registering;
    label();
  });
  label();
  replace(main,
    h("form", { class: "card", id: "signin-form", onsubmit: onSubmit },
      title,
      h("p", { class: "hint" }, t("signin.why")),
      h("label", { for: "email" }, t("signin.email")), email,
      h("label", { for: "password" }, t("signin.password")), password,
      h("div", { class: "actions" }, submit, toggle)));
  email.focus();
  void app;
}
