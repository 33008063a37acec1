// Signing in: as a named operator (name and password, a bearer token with a role), or with
// the admin API key (automation's credential, which acts as an admin). Both end up as one
// session in this tab's sessionStorage; nothing is kept after the tab closes.

import { ApiError, call, saveSession, session } from "./api.js";
import { t } from "./i18n.js";

/** Signs in with a name and a password; the session carries the role the CSMS answered. */
export async function signInWithPassword(name, password) {
  const answer = await call("POST", "/api/v1/admin/token", {
    form: { username: name, password }, auth: false,
  });
  saveSession({ token: answer.access_token, name: answer.name || name, role: answer.role, kind: "operator",
    expires_at: answer.expires_at });
  return session();
}

/** Signs in with the admin API key: checked against the CSMS before it is kept. */
export async function signInWithKey(key) {
  saveSession({ token: key, name: t("signin.key_name"), role: "admin", kind: "api_key" });
  try {
    await whoAmI();
  } catch (err) {
    saveSession(null);
    throw err;
  }
  return session();
}

/** Asks the CSMS who the session is (name, role); a CSMS without operator accounts only
 * knows the key, so any admin route that answers proves it. */
export async function whoAmI() {
  const current = session();
  try {
    const me = await call("GET", "/api/v1/admin/me");
    const kind = me.kind || current.kind;
    const name = kind === "api_key" ? t("signin.key_name") : me.name || current.name; // the key's name, in words
    saveSession({ ...current, name, role: me.role || current.role, kind });
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    await call("GET", "/api/v1/admin/chargers?limit=1");
  }
  return session();
}

export async function signOut() {
  const current = session();
  if (current && current.kind !== "api_key") {
    try {
      await call("POST", "/api/v1/admin/sign-out");
    } catch {
      // the token ends here anyway; a CSMS that cannot be reached keeps it until it expires
    }
  }
  saveSession(null);
}
