// The wallet: balance, money on hold, and a top-up.

import * as api from "../api.js";
import { h, replace, rows } from "../dom.js";
import { explain, notify } from "../errors.js";
import { has, t } from "../i18n.js";
import { formatAmount, parseAmount } from "../money.js";

/** {balance, held, currency} from the /me answer, whichever names it uses. */
export function walletOf(me) {
  const wallet = me.wallet || {};
  return {
    balance: wallet.balance ?? me.wallet_balance ?? me.balance ?? 0,
    held: wallet.held ?? wallet.hold ?? me.held_amount ?? me.held ?? 0,
    currency: wallet.currency || me.currency || "CNY",
  };
}

function movements(lines, currency) {
  if (!lines || !lines.length) return null;
  return h("section", { class: "card" },
    h("h2", {}, t("wallet.movements")),
    h("ul", { class: "orders", id: "wallet-lines" }, lines.map((line) =>
      h("li", { class: "order-row", dataset: { kind: line.kind, order: line.order_id || "" } },
        h("span", { class: "line" },
          h("span", { class: "order-charger" },
            has(`wallet.kind.${line.kind}`) ? t(`wallet.kind.${line.kind}`) : line.kind),
          h("span", { class: "order-amount" },
            `${line.amount > 0 ? "+" : ""}${formatAmount(line.amount, currency)}`),
          h("span", { class: "ref" }, line.order_id || ""),
          h("span", { class: "order-date" }, new Date(line.at).toLocaleString()))))));
}

export async function show(main, route, app) {
  const [me, book] = await Promise.all([api.me(), api.wallet().catch(() => null)]);
  if (!app.isCurrent()) return;
  const wallet = walletOf(me);
  const input = h("input", { id: "top-up-amount", name: "amount", inputmode: "decimal", value: "100", autocomplete: "off" });
  const button = h("button", { type: "submit", class: "primary", id: "top-up-button" }, t("wallet.top_up"));
  async function onSubmit(event) {
    event.preventDefault();
    const amount = parseAmount(input.value, wallet.currency);
    if (!amount) {
      notify(t("wallet.enter_amount"));
      return;
    }
    button.disabled = true;
    try {
      await api.topUp(amount);
      notify(t("wallet.topped_up", { amount: formatAmount(amount, wallet.currency) }), "ok");
      await show(main, route, app);
      notify(t("wallet.topped_up", { amount: formatAmount(amount, wallet.currency) }), "ok");
    } catch (err) {
      notify(explain(err));
    } finally {
      button.disabled = false;
    }
  }
  replace(main,
    h("section", { class: "card wallet" },
      h("h1", {}, t("wallet.title")),
      me.email ? h("p", { class: "hint" }, me.email) : null,
      h("p", { class: "balance", id: "wallet-balance" }, formatAmount(wallet.balance, wallet.currency)),
      rows([wallet.held ? [t("wallet.held"), h("span", { id: "wallet-held" }, formatAmount(wallet.held, wallet.currency))] : null]),
      h("button", {
        type: "button", class: "link", id: "sign-out",
        onclick: () => {
          api.signOut();
          app.navigate("home");
        },
      }, t("nav.sign_out"))),
    h("form", { class: "card", id: "top-up-form", onsubmit: onSubmit },
      h("h2", {}, t("wallet.top_up")),
      h("label", { for: "top-up-amount" }, t("wallet.top_up_amount", { currency: wallet.currency })),
      h("div", { class: "amount-row" }, input, h("span", { class: "unit", "aria-hidden": "true" }, wallet.currency)),
      button),
    movements(book && book.lines, wallet.currency));
}
