// Moving between the chat list and a conversation (docs/adr/0030). Below 760 px wide the page shows one
// pane at a time: the list, or the open conversation with a back button (phone.css keys both on
// `.app.conv-open`). On a phone, opening a conversation also pushes a history entry (same URL, so no
// hashchange), so the phone's own back gesture returns to the list. Focus follows the navigation: the
// composer (desktop) or the conversation's heading (phone: focusing the textarea pops the keyboard up)
// after opening; the conversation's list item after going back.

import { $ } from "./view.js";

const PHONE = "(max-width: 760px)";

export function isPhone() {
  return window.matchMedia(PHONE).matches;
}

/** After each render: which pane a phone shows follows whether a conversation is open. */
export function showPane(selected) {
  $("app").classList.toggle("conv-open", Boolean(selected));
}

/** After a conversation opened (a click, a notification, a new group). */
export function opened(id) {
  if (isPhone() && history.state?.parleyConv !== id) history.pushState({ parleyConv: id }, "");
  (isPhone() || $("composer").hidden ? $("conv-title") : $("composer-body")).focus();
}

export function focusListItem(id) {
  const item = id ? document.querySelector(`#conv-list button[data-conv="${CSS.escape(id)}"]`) : null;
  (item || $("conv-list").querySelector("button") || $("friend-name")).focus();
}

/** `close()` closes the open conversation (the page's state); the back button, the phone's back
 *  gesture and the skip link are wired here. */
export function wireNav(close) {
  const back = () => {
    const id = $("messages").dataset.conv;
    close();
    focusListItem(id);
  };
  $("back").addEventListener("click", () => {
    if (history.state?.parleyConv) history.back(); // popstate below goes back
    else back();
  });
  window.addEventListener("popstate", (event) => {
    if (!event.state?.parleyConv && $("messages").dataset.conv) back();
  });
  $("skip-link").addEventListener("click", (event) => {
    event.preventDefault();
    if (!$("messages").dataset.conv) focusListItem(null);
    else ($("composer").hidden ? $("conv-title") : $("composer-body")).focus();
  });
}
