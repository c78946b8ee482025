// Telling the reader about new messages (docs/adr/0030): the unread count in the document's title,
// a browser notification (Notification API) for a message that arrives while the tab is hidden —
// permission is asked only from the reader's click on "Turn on notifications", never on load — and a
// polite live region that reads out a message arriving in the open conversation. Clicking a
// notification brings the tab forward and opens its conversation. `window.Notification` is looked up
// at each use, so a page without it (or a test's wrapper of it) works.

import { $ } from "./view.js";

const TITLE = "Parley";

/** "(3) Parley" while 3 messages are unread, else "Parley". */
export function titleFor(unread) {
  return unread > 0 ? `(${unread > 99 ? "99+" : unread}) ${TITLE}` : TITLE;
}

export function showUnread(convs) {
  let total = 0;
  for (const conv of convs) if (!conv.muted) total += conv.unread;
  const title = titleFor(total);
  if (document.title !== title) document.title = title;
}

function api() {
  return typeof window.Notification === "function" ? window.Notification : null;
}

/** The offer to turn notifications on shows while the browser would still ask. */
export function showOffer() {
  const N = api();
  $("notify-offer").hidden = !N || N.permission !== "default";
}

export function wireNotify() {
  showOffer();
  $("notify-on").addEventListener("click", async () => {
    const N = api();
    if (N) await N.requestPermission();
    showOffer();
    $("conv-list").querySelector("button")?.focus();
  });
}

/** A new message from someone else (`who`: their name, `where`: the conversation's title or null for
 *  a DM). Hidden tab: a notification; the open conversation: read out; else nothing (the list's badge). */
export function arrived(msg, conv, { who, where, open, selected }) {
  const text = msg.body || "New message";
  if (document.visibilityState === "hidden") {
    const N = api();
    if (!N || N.permission !== "granted" || conv.muted) return;
    const note = new N(where ? `${who} in ${where}` : who, { body: text.slice(0, 200), tag: conv.id });
    note.onclick = () => { window.focus(); open(conv.id); note.close(); };
  } else if (selected) {
    const line = document.createElement("span");
    line.textContent = `${who}: ${text.slice(0, 300)}`;
    $("announce").replaceChildren(line);
  }
}
