// The operator page's translations: English and Simplified Chinese, in their own files
// (/i18n/operator.<lang>.json) so they never collide with the driver page's messages. The
// language is chosen like the driver page's (a stored choice, else the browser's).

import { LANGUAGES, preferredLanguage } from "../i18n.js";

const STORAGE_KEY = "qrcharge.lang";

let current = "en";
let messages = {};
let fallback = {};

async function load(lang) {
  const response = await fetch(`/i18n/operator.${lang}.json`, { cache: "no-cache" });
  if (!response.ok) throw new Error(`no operator translations for ${lang}`);
  return response.json();
}

/** Loads `lang` (English fills any missing key) and translates the static page. */
export async function setLanguage(lang = preferredLanguage(), { remember = false } = {}) {
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
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

/** Fills every element with data-i18n="key" under `root` (and placeholders). */
export function translateStatic(root) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
}
