// Where an error shows (docs/adr/0030). A form's own refusal shows under that form, its field marked
// aria-invalid (and described by the message) until it is edited; connection trouble — the server not
// reachable, or failing — shows in one place, next to the connection's state in the top bar, and
// clears once the connection is online again. Anything else about the open conversation (a refused
// edit, a message the server would not take) shows above the composer.

import { $ } from "./view.js";

/** Whether an error is the connection's (no answer, or the server's fault) rather than the request's. */
export function isTrouble(err) {
  return !err || !err.status || err.status >= 500 || err.code === "network";
}

export function trouble(text) {
  const node = $("trouble");
  node.textContent = text || "";
  node.hidden = !text;
}

/** Shows `text` under a form (its error element `errorId`), marking `fieldId` invalid; "" clears. */
export function fieldError(errorId, fieldId, text) {
  const node = $(errorId);
  node.textContent = text || "";
  node.hidden = !text;
  const field = fieldId ? $(fieldId) : null;
  if (!field) return;
  if (text) field.setAttribute("aria-invalid", "true");
  else field.removeAttribute("aria-invalid");
}

const FIELD_OF = { "friend-error": "friend-name", "group-error": "group-name", "composer-error": null };

/** Reports `err` of a request made from the place whose error element is `errorId`; `words` (optional)
 *  says it better than the server's message. */
export function report(err, errorId = "composer-error", words = "") {
  if (isTrouble(err)) {
    trouble(err?.status ? `The server had a problem (${err.message}); try again shortly.`
      : "The server cannot be reached; check your connection.");
    return;
  }
  fieldError(errorId, FIELD_OF[errorId], words || err.message || String(err));
}

/** The connection's state changed: trouble ends once it is online. */
export function connectionState(info) {
  if (info.state === "online") trouble("");
}

export function wirePlaces() {
  // the browser's own word on the network: offline is trouble at once, back online ends it
  window.addEventListener("offline", () => trouble("You are offline; messages will go when you are back."));
  window.addEventListener("online", () => trouble(""));
  for (const [errorId, fieldId] of Object.entries(FIELD_OF)) {
    const field = fieldId ? $(fieldId) : $("composer-body");
    field.addEventListener("input", () => fieldError(errorId, fieldId, ""));
  }
  // the auth form's fields: invalid while the last attempt named them, until edited
  for (const id of ["auth-username", "auth-password"]) {
    $(id).addEventListener("input", () => $(id).removeAttribute("aria-invalid"));
  }
}

/** The auth form's refusal: the field it names (`field` in the error), both for wrong credentials. */
export function authError(err) {
  const named = err.field === "username" || err.field === "password" ? [`auth-${err.field}`] : [];
  const fields = err.code === "bad_credentials" ? ["auth-username", "auth-password"] : named;
  for (const id of ["auth-username", "auth-password"]) {
    if (fields.includes(id)) $(id).setAttribute("aria-invalid", "true");
    else $(id).removeAttribute("aria-invalid");
  }
}
