// Marks in the open conversation's message list, drawn after each render (docs/adr/0030): a day
// separator (Today / Yesterday / a date) above the first message of each day, the "New messages"
// divider above the first message that was unread when the conversation was opened (or that came
// while the tab was hidden), a button that jumps to it while it is out of view, and the word of the
// newest of our own messages' ticks. The marks live inside the message items (a <p> before the
// bubble's content), so the list keeps one <li> per message for view.js's keyed update.

import { $, el } from "./view.js";

const DAY_MS = 86400000;

function dayStart(ts) {
  const d = new Date(ts);
  return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
}

/** "Today", "Yesterday" or a date, for a message's `ts` seen at `now` (both ms, local time). */
export function dayLabel(ts, now) {
  const days = Math.round((dayStart(now) - dayStart(ts)) / DAY_MS); // round: a DST day is 23 or 25 h
  if (days === 0) return "Today";
  if (days === 1) return "Yesterday";
  const sameYear = new Date(ts).getFullYear() === new Date(now).getFullYear();
  return new Date(ts).toLocaleDateString([], { weekday: "short", day: "numeric", month: "short",
                                               year: sameYear ? undefined : "numeric" });
}

/** For messages in order ([{key, ts}]): key → label of those that begin a day. */
export function daySeparators(items, now) {
  const out = new Map();
  let last = null;
  for (const { key, ts } of items) {
    const day = dayStart(ts);
    if (day !== last) out.set(key, dayLabel(ts, now));
    last = day;
  }
  return out;
}

// The unread divider of the open conversation: `after` is the read mark when it was opened (or when
// the tab was hidden); `first` the id it sits above once found (null: none, kept while the tab is
// visible, so messages read as they arrive never get one).
const unread = { conv: null, after: 0, first: undefined };

/** A conversation is being opened: its read mark is where the divider goes. */
export function opened(conv) {
  Object.assign(unread, { conv: conv.id, after: conv.read, first: undefined });
}

/** The tab is going hidden: what comes from now on is new when the reader is back. */
export function hiding(conv) {
  if (conv && unread.conv === conv.id) Object.assign(unread, { after: conv.read, first: undefined });
}

function firstUnread(conv, me) {
  if (unread.conv !== conv.id) opened(conv);
  if (unread.first !== undefined) return unread.first;
  const shown = conv.shown();
  const found = shown.find((m) => m.id > unread.after && m.from !== me && !m.deleted);
  // the oldest held message may have older unread ones above it, still to be paged in
  if (found && (found !== shown[0] || !conv.more)) unread.first = found.id;
  else if (!found && conv.loaded && document.visibilityState === "visible") unread.first = null;
  return found ? found.id : null;
}

function tsOf(li, conv) {
  const key = li.dataset.key || "";
  if (key.startsWith("m")) return conv.messages.get(Number(key.slice(1)))?.ts;
  if (key.startsWith("p")) return conv.pending.get(key.slice(1))?.ts;
  return undefined;
}

/** Puts (or takes away) a mark of `cls` with `text` at the top of a message item. */
function mark(li, cls, text) {
  let node = li.querySelector(`:scope > .${cls}`);
  if (!text) { if (node) node.remove(); return; }
  if (!node) {
    node = el("p", { class: `sep ${cls}` }, el("span"));
    li.prepend(node);
  }
  if (node.firstChild.textContent !== text) node.firstChild.textContent = text;
}

export function renderMarks(conv, me, now) {
  const items = [...$("messages").children].filter((li) => li.dataset.key);
  const firstId = conv ? firstUnread(conv, me) : null;
  const days = conv ? daySeparators(items.map((li) => ({ key: li.dataset.key, ts: tsOf(li, conv) }))
    .filter((i) => i.ts !== undefined), now) : new Map();
  let newestMine = null;
  for (const li of items) {
    mark(li, "day-sep", days.get(li.dataset.key) || "");
    const first = firstId !== null && li.dataset.key === `m${firstId}`;
    mark(li, "unread-sep", first ? "New messages" : "");
    li.classList.toggle("first-unread", first);
    li.classList.toggle("has-sep", days.has(li.dataset.key) || first);
    if (first) li.tabIndex = -1;
    if (li.classList.contains("mine")) newestMine = li;
    li.classList.remove("newest-mine");
  }
  if (newestMine) newestMine.classList.add("newest-mine");
  placeJump();
}

/** The jump button shows while the divider is above the part of the list in view. */
export function placeJump() {
  const target = $("messages").querySelector(":scope > li.first-unread");
  const top = $("scroller").getBoundingClientRect().top;
  $("jump-unread").hidden = !target || target.getBoundingClientRect().top >= top;
}

export function wireDividers() {
  $("scroller").addEventListener("scroll", placeJump, { passive: true });
  $("jump-unread").addEventListener("click", () => {
    const target = $("messages").querySelector(":scope > li.first-unread");
    if (!target) return;
    target.scrollIntoView({ block: "start" });
    $("scroller").scrollTop -= 40; // the divider above the message in view too
    target.focus({ preventScroll: true });
    placeJump();
  });
}
