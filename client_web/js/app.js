// The driver's page: a tiny hash router over one screen module per step of the flow.
//   /c/{id}?evse=N           -> the charger (the identification QR's link)
//   #/                       -> home: scan a charger or type its id
//   #/signin?next=...        -> sign in / register
//   #/charger/{id}?evse=N    -> status, location, your tariff, the request form
//   #/order/{id}             -> the start QR, full screen, with its countdown
//   #/settle/{orderId}       -> scan (or photograph) the settlement QR
//   #/payment/{orderId}      -> the payment summary and "Pay"
//   #/receipt/{id}           -> the receipt
//   #/history, #/wallet

import { signedIn, token } from "./api.js";
import { explain, notify } from "./errors.js";
import { language, preferredLanguage, setLanguage, t } from "./i18n.js";
import { keepAuth, registerWorker, startDeliveries } from "./offline.js";

const SCREENS = {
  home: () => import("./screens/home.js"),
  signin: () => import("./screens/signin.js"),
  charger: () => import("./screens/charger.js"),
  order: () => import("./screens/startqr.js"),
  settle: () => import("./screens/settle.js"),
  payment: () => import("./screens/payment.js"),
  receipt: () => import("./screens/receipt.js"),
  history: () => import("./screens/history.js"),
  wallet: () => import("./screens/wallet.js"),
};
const NEEDS_SIGN_IN = new Set(["order", "settle", "payment", "receipt", "history", "wallet"]);

/** The route of an address: {name, arg, query}. */
export function parseRoute(loc = location) {
  const hash = loc.hash.replace(/^#\/?/, "");
  if (!loc.hash) {
    const match = loc.pathname.match(/^\/c\/([^/]+)\/?$/);
    if (match) {
      const query = new URLSearchParams(loc.search);
      return { name: "charger", arg: decodeURIComponent(match[1]), query };
    }
    return { name: "home", arg: "", query: new URLSearchParams() };
  }
  const [path, search = ""] = hash.split("?");
  const [name, ...rest] = path.split("/");
  return {
    name: SCREENS[name] ? name : "home",
    arg: rest.map(decodeURIComponent).join("/"),
    query: new URLSearchParams(search),
  };
}

/** Goes to a route: navigate("charger", "CP-1", {evse: 1}). */
export function navigate(name, arg = "", query = {}) {
  const search = new URLSearchParams(
    Object.entries(query).filter(([, v]) => v !== null && v !== undefined && v !== ""),
  ).toString();
  const target = `#/${name}${arg ? `/${encodeURIComponent(arg)}` : ""}${search ? `?${search}` : ""}`;
  if (location.hash === target) render();
  else location.hash = target;
}

/** The current address as a "next" value for the sign-in screen. */
export function here() {
  return location.hash || location.pathname + location.search;
}

let cleanup = null;
let generation = 0;

async function render() {
  const main = document.getElementById("screen");
  const route = parseRoute();
  const mine = ++generation;
  if (cleanup) {
    try {
      cleanup();
    } catch {
      /* a screen that failed to clean up must not block the next one */
    }
    cleanup = null;
  }
  notify(null);
  document.body.dataset.screen = route.name;
  updateBar();
  if (NEEDS_SIGN_IN.has(route.name) && !signedIn()) {
    navigate("signin", "", { next: here() });
    return;
  }
  try {
    const module = await SCREENS[route.name]();
    if (mine !== generation) return;
    const result = await module.show(main, route, { navigate, here, isCurrent: () => mine === generation });
    if (mine === generation) cleanup = typeof result === "function" ? result : null;
    else if (typeof result === "function") result();
  } catch (err) {
    if (mine !== generation) return;
    if (err && err.code === "unauthorized") {
      navigate("signin", "", { next: here() });
      return;
    }
    console.error(err);
    notify(explain(err));
  }
}

function updateBar() {
  const lang = document.getElementById("lang-switch");
  lang.textContent = language() === "zh-CN" ? "English" : "中文";
  lang.lang = language() === "zh-CN" ? "en" : "zh-CN"; // its name is the other language's own
  lang.title = t("nav.language");
}

async function start() {
  registerWorker();
  keepAuth(token());
  startDeliveries();
  await setLanguage(preferredLanguage());
  document.getElementById("lang-switch").addEventListener("click", async () => {
    await setLanguage(language() === "zh-CN" ? "en" : "zh-CN", { remember: true });
    render();
  });
  window.addEventListener("hashchange", render);
  await render();
}

start();
