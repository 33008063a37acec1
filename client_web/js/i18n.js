// Translations: English and Simplified Chinese, chosen from the browser unless the user
// picked one (kept in localStorage). Messages are flat keys in /i18n/<prefix><lang>.json with
// {name} placeholders. The driver page's catalog is this module's own functions; the operator
// page makes its own catalog (prefix "operator.") so the two never share message keys.

export const LANGUAGES = ["en", "zh-CN"];
const STORAGE_KEY = "qrcharge.lang";

/** The language for this browser: a stored choice, else the first zh* or en* preference. */
export function preferredLanguage(stored = localStorage.getItem(STORAGE_KEY),
                                  wanted = navigator.languages || [navigator.language]) {
  if (LANGUAGES.includes(stored)) return stored;
  for (const tag of wanted) {
    const lower = String(tag || "").toLowerCase();
    if (lower.startsWith("zh")) return "zh-CN";
    if (lower.startsWith("en")) return "en";
  }
  return "en";
}

/** A catalog of messages read from /i18n/<prefix><lang>.json. */
export function makeCatalog(prefix = "") {
  let current = "en";
  let messages = {};
  let fallback = {};

  async function load(lang) {
    const response = await fetch(`/i18n/${prefix}${lang}.json`, { cache: "no-cache" });
    if (!response.ok) throw new Error(`no ${prefix}translations for ${lang}`);
    return response.json();
  }

  /** Fills every element with data-i18n="key" (and data-i18n-placeholder) under `root`. */
  function translateStatic(root) {
    for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
      el.placeholder = t(el.dataset.i18nPlaceholder);
    }
  }

  /** Loads `lang` (English fills any missing key) and translates the static page. */
  async function setLanguage(lang = preferredLanguage(), { remember = false } = {}) {
    if (!LANGUAGES.includes(lang)) lang = "en";
    if (!Object.keys(fallback).length) fallback = await load("en");
    messages = lang === "en" ? fallback : await load(lang);
    current = lang;
    document.documentElement.lang = lang;
    if (remember) localStorage.setItem(STORAGE_KEY, lang);
    translateStatic(document);
    return lang;
  }

  /** The message `key` with its {placeholders} filled from `vars`. */
  function t(key, vars = {}) {
    const template = messages[key] ?? fallback[key] ?? key;
    return template.replace(/\{(\w+)\}/g, (whole, name) =>
      name in vars ? String(vars[name]) : whole);
  }

  /** Whether a message exists (to fall back from specific to generic error texts). */
  function has(key) {
    return key in messages || key in fallback;
  }

  return { setLanguage, language: () => current, t, has, translateStatic };
}

export const { setLanguage, language, t, has, translateStatic } = makeCatalog();
