// The operator page's translations: English and Simplified Chinese, in their own files
// (/i18n/operator.<lang>.json) so they never collide with the driver page's messages. The
// language is chosen like the driver page's (a stored choice, else the browser's).

import { makeCatalog } from "../i18n.js";

export const { setLanguage, language, t, has, translateStatic } = makeCatalog("operator.");
