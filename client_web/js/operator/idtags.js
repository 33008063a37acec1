// RFID cards (id tags) the CSMS accepts on its own: the list (by status, by the start of the
// tag), a form that adds a tag or changes one's status and expiry, and per tag Block /
// Unblock and Delete. Only an admin changes tags; every role reads them.

import { call, enc } from "./api.js";
import { t } from "./i18n.js";
import { can } from "./roles.js";
import { action, actionForm, field, h, notify, replace, table, when } from "./ui.js";

const STATUSES = ["Accepted", "Blocked", "Expired", "Invalid"];

/** "2027-01-31T23:59" typed in the local zone -> an ISO time; "" -> null. */
function expiryOf(text) {
  if (!text) return null;
  const moment = new Date(text);
  return Number.isNaN(moment.getTime()) ? undefined : moment.toISOString();
}

/** An ISO time -> the value a datetime-local input shows (local time, minutes). */
function localInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function idTagsView(root) {
  const list = h("div", { class: "body", id: "id-tag-list" });
  const editor = h("div", { class: "body", id: "id-tag-editor" });
  const statusFilter = h("select", { id: "id-tag-status", "aria-label": t("idtag.status") },
    ["", ...STATUSES].map((s) => h("option", { value: s }, s ? t(`idtag.${s}`) : t("idtag.any_status"))));
  const prefix = h("input", { type: "search", id: "id-tag-prefix", placeholder: t("idtag.prefix"), maxlength: 36 });
  const filters = h("form", { class: "filters", id: "id-tag-filter" }, statusFilter, prefix,
    h("button", { type: "submit", class: "small secondary search", "data-read": true }, t("drivers.find")));
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    refresh().catch((err) => notify(err.message));
  });
  replace(root,
    h("section", { class: "card", id: "id-tags" }, h("h2", {}, t("nav.id_tags")), h("p", { class: "hint" }, t("idtag.hint")), filters, list),
    h("section", { class: "card", id: "id-tag-card" }, h("h2", { id: "id-tag-title" }, t("idtag.add_title")), editor));

  function put(tag, status, expiry) {
    return call("PUT", "/api/v1/admin/id-tags", { json: { id_tag: tag, status, expiry } });
  }

  function form(tag) {
    document.getElementById("id-tag-title").textContent = tag ? t("idtag.edit_title", { tag: tag.id_tag }) : t("idtag.add_title");
    const made = actionForm({ id: "id-tag-form" }, [
      field(t("idtag.tag"), { name: "id_tag", id: "id-tag-value", required: true, maxlength: 36, value: tag ? tag.id_tag : "",
        readonly: Boolean(tag), autocomplete: "off" }),
      field(t("idtag.status"), { name: "status", id: "id-tag-new-status", value: tag ? tag.status : "Accepted" },
        STATUSES.map((s) => [s, t(`idtag.${s}`)])),
      field(t("idtag.expiry"), { name: "expiry", id: "id-tag-expiry", type: "datetime-local", value: localInput(tag && tag.expiry) }),
      h("p", { class: "hint" }, t("idtag.expiry_hint")),
    ], async (v, el) => {
      const expiry = expiryOf(v.expiry);
      if (expiry === undefined) {
        notify(t("idtag.bad_expiry"));
        return;
      }
      await put(v.id_tag, v.status || "Accepted", expiry);
      notify(t("idtag.saved", { tag: v.id_tag }), "ok");
      el.reset();
      replace(editor, form(null));
      await refresh();
    }, { area: "idtags", submit: tag ? t("common.save") : t("idtag.add") });
    return made || h("p", { class: "hint" }, t("common.read_only"));
  }

  async function refresh() {
    const params = new URLSearchParams({ limit: "500" });
    if (statusFilter.value) params.set("status", statusFilter.value);
    if (prefix.value.trim()) params.set("prefix", prefix.value.trim());
    const tags = await call("GET", `/api/v1/admin/id-tags?${params}`);
    const expired = (tag) => tag.expiry && new Date(tag.expiry) < new Date();
    replace(list, table([t("idtag.tag"), t("idtag.status"), t("idtag.expiry"), t("orders.created"), ""],
      tags.map((tag) => h("tr", { "data-id-tag": tag.id_tag },
        h("td", { class: "wrap" }, h("strong", {}, tag.id_tag)),
        h("td", { "data-id-tag-status": tag.id_tag, class: tag.status === "Accepted" ? "" : "flag" }, t(`idtag.${tag.status}`)),
        h("td", { class: expired(tag) ? "flag" : "" }, tag.expiry ? when(tag.expiry) : t("idtag.no_expiry")),
        h("td", {}, when(tag.created_at)),
        h("td", {},
          tag.status === "Blocked"
            ? action(t("idtag.unblock"), async () => {
              await put(tag.id_tag, "Accepted", tag.expiry);
              await refresh();
            }, { area: "idtags", id: `unblock-${tag.id_tag}` })
            : action(t("idtag.block"), async () => {
              await put(tag.id_tag, "Blocked", tag.expiry);
              await refresh();
            }, { area: "idtags", kind: "danger", id: `block-${tag.id_tag}` }),
          action(t("common.edit"), async () => {
            replace(editor, form(tag));
            document.getElementById("id-tag-card").scrollIntoView();
          }, { area: "idtags", id: `edit-${tag.id_tag}` }),
          action(t("common.delete"), async () => {
            await call("DELETE", `/api/v1/admin/id-tags/${enc(tag.id_tag)}`);
            notify(t("idtag.deleted", { tag: tag.id_tag }), "ok");
            await refresh();
          }, { area: "idtags", kind: "danger", id: `delete-${tag.id_tag}`, confirmText: t("idtag.delete_confirm", { tag: tag.id_tag }) })))),
      { empty: t("idtag.none") }));
    if (!editor.childNodes.length) replace(editor, form(null));
  }
  return { refresh, live: false };
}
