// Translations: English and Simplified Chinese, chosen from the browser unless the driver
// picked one (kept in localStorage). Messages are flat keys in /i18n/<lang>.json with
// {name} placeholders.

export const LANGUAGES = ["en", "zh-CN"];
const STORAGE_KEY = "qrcharge.lang";

let current = "en";
let messages = {};
let fallback = {};

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

async function load(lang) {
  const response = await fetch(`/i18n/${lang}.json`, { cache: "no-cache" });
  if (!response.ok) throw new Error(`no translations for ${lang}`);
  return response.json();
}

/** Loads `lang` (and English as the fallback for missing keys). */
export async function setLanguage(lang, { remember = false } = {}) {
  if (!LANGUAGES.includes(lang)) lang = "en";
  if (!Object.keys(fallback).length) fallback = await load("en");
  messages = lang === "en" ? fallback : await load(lang);
  current = lang;
  document.documentElement.lang = lang;
  if (remember) localStorage.setItem(STORAGE_KEY, lang);
  translateStatic(document);
  return lang;
}

export function language() {
  return current;
}

/** The message `key` with its {placeholders} filled from `vars`. */
export function t(key, vars = {}) {
  const template = messages[key] ?? fallback[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (whole, name) =>
    name in vars ? String(vars[name]) : whole);
}

/** Whether a message exists (to fall back from specific to generic error texts). */
export function has(key) {
  return key in messages || key in fallback;
}

/** Fills every element with data-i18n="key" under `root`. */
export function translateStatic(root) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
}
