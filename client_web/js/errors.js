// Errors in words a driver understands: every ApiError code (or camera error) maps to a
// message key "error.<code>"; anything unknown gets a generic sentence, never a stack trace.

import { has, t } from "./i18n.js";

/** The sentence to show for `err` (an ApiError, a camera DOMException or anything else). */
export function explain(err) {
  const code = err && (err.code || err.name);
  if (code && has(`error.${code}`)) return t(`error.${code}`);
  if (err && typeof err.status === "number" && err.status >= 500) return t("error.server");
  if (err && typeof err.status === "number" && err.status >= 400) return t("error.refused");
  return t("error.unknown");
}

/** Shows `message` in the notice bar (null hides it). */
export function notify(message, kind = "error") {
  const bar = document.getElementById("notice");
  if (!bar) return;
  bar.hidden = !message;
  bar.textContent = message || "";
  bar.className = `notice ${kind}`;
}
