// The daily-use parts of the chat page (docs/adr/0030), as main.js sees them: a few calls at the
// places where the page renders, opens and closes a conversation, gets a message, changes connection
// state or fails a request. Each concern lives in its own module: nav.js (list ↔ conversation, focus),
// dividers.js (day separators, the unread divider and its jump), notify.js (title count, browser
// notifications, read-out of new messages), places.js (where errors show).

import { hiding, opened as dividerOpened, renderMarks, wireDividers } from "./dividers.js";
import { opened as navOpened, showPane, wireNav } from "./nav.js";
import { arrived as notifyArrived, showUnread, wireNotify } from "./notify.js";
import { authError, connectionState, fieldError, report, trouble, wirePlaces } from "./places.js";
import { nameOf, titleOf } from "./model.js";

export { authError, connectionState, fieldError, report, trouble };

/** `close()`: close the open conversation (back to the list on a phone). */
export function wireDaily(close) {
  wireNav(close);
  wireDividers();
  wireNotify();
  wirePlaces();
}

/** After each render of the page's chat state. */
export function afterRender(convs, conv, me, now) {
  showPane(conv ? conv.id : null);
  renderMarks(conv || null, me, now);
  showUnread(convs);
}

/** A conversation is being opened (before it is marked read). */
export function opening(conv) {
  dividerOpened(conv);
}

/** It opened: focus moves into it. */
export function opened(id) {
  navOpened(id);
}

/** The tab's visibility changed, with `conv` open (or null). */
export function visibility(conv) {
  if (document.visibilityState === "hidden") hiding(conv);
}

/** A message from someone else that was not in the list's count already. */
export function arrived(msg, conv, ctx) {
  const who = nameOf(ctx.user(msg.from));
  notifyArrived(msg, conv, { who, where: conv.kind === "group" ? titleOf(conv, ctx.me) : null,
                             open: ctx.open, selected: ctx.selected === conv.id });
}

