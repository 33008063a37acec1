// What each operator role may do on this page. The server checks the same; the page hides
// (or never builds) the controls a role cannot use.

import { session } from "./api.js";

const AREAS = {
  viewer: [],
  operator: ["chargers", "commands", "orders", "refunds"],
  admin: ["chargers", "commands", "orders", "refunds", "billing", "keys", "drivers", "operators", "idtags"],
};

export function role() {
  const current = session();
  return current ? current.role : null;
}

/** Whether the signed-in operator may act in `area`. */
export function can(area) {
  return (AREAS[role()] || []).includes(area);
}
