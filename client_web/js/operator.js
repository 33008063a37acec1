// The operator page: sign-in (operator name and password, or the admin API key), then one
// view at a time chosen by the address (#/chargers, #/charger/<id>, #/transactions,
// #/transaction/<id>, #/orders, #/order/<id>, #/drivers, #/driver/<id>, #/id-tags, #/billing,
// #/reconciliation, #/keys, #/audit, #/operators, #/account: one's own password). Live views refresh every few
// seconds; views with forms load once (and after each action) so typing is never lost.

import { accountView } from "./operator/account.js";
import { saveSession, session } from "./operator/api.js";
import { auditView } from "./operator/audit.js";
import { billingView } from "./operator/billing.js";
import { chargerView } from "./operator/charger.js";
import { chargersView } from "./operator/chargers.js";
import { driverView } from "./operator/driver.js";
import { driversView } from "./operator/drivers.js";
import { language, setLanguage, t } from "./operator/i18n.js";
import { idTagsView } from "./operator/idtags.js";
import { keysView } from "./operator/keys.js";
import { operatorsView } from "./operator/operators.js";
import { orderView } from "./operator/order.js";
import { ordersView } from "./operator/orders.js";
import { reconciliationView } from "./operator/reconciliation.js";
import { can } from "./operator/roles.js";
import { signInWithKey, signInWithPassword, signOut, whoAmI } from "./operator/session.js";
import { transactionsView, transactionView } from "./operator/transactions.js";
import { failure, notify } from "./operator/ui.js";

const REFRESH_MS = 3000;
const VIEWS = {
  chargers: chargersView,
  transactions: transactionsView,
  orders: ordersView,
  drivers: driversView,
  "id-tags": idTagsView,
  billing: billingView,
  reconciliation: reconciliationView,
  keys: keysView,
  audit: auditView,
  operators: operatorsView,
  account: accountView,
};
// tabs only some roles need: the rest are readable by every role
const TAB_AREA = { operators: "operators" };
// one item's page (#/<name>/<id>): its view and the tab it belongs to
const ITEMS = {
  charger: [chargerView, "chargers"],
  transaction: [transactionView, "transactions"],
  order: [orderView, "orders"],
  driver: [driverView, "drivers"],
};

let active = null;
let timer = null;

function route() {
  const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  if (ITEMS[name] && rest.length) return { name, arg: decodeURIComponent(rest.join("/")) };
  return { name: VIEWS[name] ? name : "chargers", arg: null };
}

// a refresh still in flight when its page is left (deleted, or navigated away from) answers
// for a page no longer shown: its result and its error (a 404 for a deleted charger) are dropped
async function tick() {
  const mine = active;
  if (!mine) return;
  try {
    await mine.refresh();
    if (active !== mine) return;
    document.body.dataset.loaded = mine.key;
  } catch (err) {
    if (active !== mine) return;
    notify(failure(err));
    if (err.status === 401) {
      saveSession(null); // ended or revoked: sign in again
      showSignIn();
    }
  }
}

function leave() {
  clearInterval(timer);
  if (active && active.leave) active.leave();
  active = null;
}

async function show() {
  leave();
  const root = document.getElementById("view");
  if (!session()) return;
  const { name, arg } = route();
  if (document.getElementById("notice").classList.contains("error")) notify(null);
  delete document.body.dataset.loaded;
  for (const tab of document.querySelectorAll("#tabs a")) {
    tab.classList.toggle("current", tab.dataset.view === (arg !== null ? ITEMS[name][1] : name));
  }
  const view = arg !== null ? ITEMS[name][0](root, arg) : VIEWS[name](root);
  active = { ...view, key: arg !== null ? `${name}:${arg}` : name };
  document.body.dataset.view = name;
  const mine = active;
  await tick();
  // left while its first refresh ran: the page now shown has its own timer, or none
  if (view.live && active === mine) timer = setInterval(tick, REFRESH_MS);
}

function showSignIn() {
  leave();
  document.getElementById("sign-in").hidden = false;
  document.getElementById("view").replaceChildren();
  document.getElementById("tabs").hidden = true;
  document.getElementById("sign-out").hidden = true;
  document.getElementById("who").hidden = true;
  delete document.body.dataset.role;
}

function showConsole() {
  const current = session();
  document.getElementById("sign-in").hidden = true;
  document.getElementById("tabs").hidden = false;
  document.getElementById("sign-out").hidden = false;
  const who = document.getElementById("who");
  who.hidden = false;
  who.textContent = `${current.name} · ${t(`role.${current.role}`)}`;
  document.body.dataset.role = current.role;
  for (const tab of document.querySelectorAll("#tabs a")) {
    const area = TAB_AREA[tab.dataset.view];
    tab.hidden = Boolean(area) && !can(area);
  }
  return show();
}

async function signedIn(work) {
  try {
    await work();
    notify(null);
    await showConsole();
  } catch (err) {
    notify(err.status === 401 ? t(document.getElementById("key-sign-in").open ? "error.bad_key" : "error.bad_password") : failure(err));
  }
}

async function start() {
  await setLanguage();
  const langSwitch = document.getElementById("lang-switch");
  langSwitch.addEventListener("click", async () => {
    await setLanguage(language() === "en" ? "zh-CN" : "en", { remember: true });
    if (session()) await showConsole();
  });
  document.getElementById("password-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signedIn(() => signInWithPassword(document.getElementById("op-name").value.trim(),
      document.getElementById("op-password").value));
  });
  document.getElementById("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signedIn(() => signInWithKey(document.getElementById("admin-key").value.trim()));
  });
  document.getElementById("sign-out").addEventListener("click", async () => {
    await signOut();
    showSignIn();
  });
  window.addEventListener("hashchange", () => show());
  document.body.dataset.ready = "true";
  if (session()) {
    try {
      await whoAmI();
      await showConsole();
    } catch (err) {
      notify(failure(err));
      showSignIn();
    }
  }
}

start();
