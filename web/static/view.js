// Drawing the chat. Every piece of user text (bodies, names, group names) goes into the DOM as a
// text node (textContent / createTextNode), never as HTML, so a body like <img onerror=...> shows
// as those characters and runs nothing.

import { actionWords, canDelete, canEdit, isAction, lastShown, previewBody, REACTIONS, reactionList } from "./actions.js";
import { quoteText } from "./attachmodel.js";
import { fillFiles } from "./media.js";
import { originalOf } from "./originals.js";
import { clock, lastSeen, nameOf, stateOf, titleOf } from "./model.js";

export const $ = (id) => document.getElementById(id);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child); // strings → text
  return node;
}

const STATE_TEXT = { pending: "sending", sent: "sent", delivered: "delivered", read: "read" };
const STATE_MARK = { pending: "○", sent: "✓", delivered: "✓✓", read: "✓✓" };

export function showConnection(info) {
  const node = $("conn");
  // in words only: which node serves the page is the operators' business (data-node, for tests)
  const text = {
    connecting: "Connecting…",
    syncing: "Catching up…",
    online: "Online",
    reconnecting: `Connection lost; reconnecting in ${Math.ceil((info.inMs || 0) / 1000)} s…`,
    moving: "Moving to another server…",
    offline: "Offline",
  }[info.state];
  node.textContent = text;
  node.dataset.state = info.state;
  node.dataset.node = info.state === "online" || info.state === "syncing" ? info.node || "" : "";
}

function dot(presence) {
  const online = Boolean(presence && presence.online);
  return el("span", { class: `dot ${online ? "on" : "off"}`, "aria-hidden": "true" });
}

function preview(conv, ctx) {
  const typers = typingNames(conv, ctx);
  if (typers) return typers;
  const last = lastShown(conv) || conv.last; // an edit, delete or reaction is not a message of the list
  if (!last) return "No messages yet";
  const who = last.from === ctx.me ? "You: " : conv.kind === "group" ? `${nameOf(ctx.user(last.from))}: ` : "";
  if (isAction(last)) return `${last.from === ctx.me ? "You " : who ? who.slice(0, -2) + " " : ""}${actionWords(last)}`;
  return who + previewBody(last);
}

/** Keyed update: each conversation keeps its <li> and button, moved only when the order changes,
 *  so a focused button stays focused through presence, typing and message frames. */
export function renderConversations(convs, ctx) {
  const list = $("conv-list");
  $("conv-empty").hidden = convs.length > 0;
  const existing = new Map([...list.children].map((li) => [li.dataset.conv, li]));
  const keep = new Set(convs.map((c) => c.id));
  for (const [id, li] of existing) if (!keep.has(id)) li.remove();
  let at = list.firstElementChild;
  for (const conv of convs) {
    let li = existing.get(conv.id);
    if (!li) {
      const button = el("button", { type: "button", class: "conv", "data-conv": conv.id, onclick: () => ctx.open(conv.id) });
      li = el("li", { "data-conv": conv.id }, button);
    }
    fillConversation(li.firstElementChild, conv, ctx);
    if (li !== at) list.insertBefore(li, at);
    else at = at.nextElementSibling;
  }
}

function fillConversation(button, conv, ctx) {
  const other = conv.kind === "dm" ? conv.others(ctx.me)[0] : null;
  const presence = other ? ctx.presence.get(other.id) : null;
  const title = titleOf(conv, ctx.me);
  const unread = conv.unread > 0 ? (conv.unread >= 100 ? "99+" : String(conv.unread)) : "";
  const label = `${title}${conv.kind === "group" ? " (group)" : ""}${unread ? `, ${unread} unread` : ""}` +
    `${presence && presence.online ? ", online" : ""}`;
  button.setAttribute("aria-label", label);
  if (conv.id === ctx.selected) button.setAttribute("aria-current", "true");
  else button.removeAttribute("aria-current");
  button.replaceChildren(
    other ? dot(presence) : el("span", { class: "dot group", "aria-hidden": "true" }),
    el("span", { class: "conv-text" },
      el("span", { class: "conv-title", text: title }),
      el("span", { class: "conv-last", text: preview(conv, ctx) })),
    el("span", { class: "badge", "data-unread": conv.unread, hidden: !unread, text: unread }));
}

export function renderHeader(conv, ctx) {
  const composer = $("composer");
  if (!conv) {
    $("conv-title").textContent = "No conversation open";
    $("conv-sub").textContent = "Pick a chat on the left.";
    composer.hidden = true;
    return;
  }
  composer.hidden = false;
  $("conv-title").textContent = titleOf(conv, ctx.me);
  if (conv.kind === "dm") {
    const other = conv.others(ctx.me)[0];
    $("conv-sub").textContent = other ? lastSeen(ctx.presence.get(other.id), Date.now()) : "";
  } else {
    const online = conv.members.filter((u) => ctx.presence.get(u.id)?.online).length;
    $("conv-sub").textContent = `${conv.members.length} members, ${online} online: ` +
      conv.members.map((u) => (u.id === ctx.me ? "you" : nameOf(u))).join(", ");
  }
}

function messageItem(key) {
  const body = el("p", { class: "body" });
  const meta = el("span", { class: "meta" }, el("time"), el("span", { class: "state", role: "img" }));
  const li = el("li", { class: "msg", "data-key": key }, el("span", { class: "from" }), body, meta);
  addActionParts(li);
  return li;
}

function fillMessage(li, msg, conv, ctx) {
  const mine = msg.from === ctx.me;
  const state = msg.id ? (mine ? stateOf(msg, conv, ctx.me) : null) : "pending";
  li.classList.toggle("mine", mine);
  if (msg.id) li.dataset.id = msg.id;
  else li.dataset.cid = msg.cid;
  const from = li.querySelector(".from");
  from.textContent = mine ? "You" : nameOf(ctx.user(msg.from));
  from.hidden = mine || conv.kind === "dm";
  li.querySelector(".body").textContent = msg.body;
  fillActionParts(li, msg, conv, ctx);
  fillFiles(li, msg, conv);
  const time = li.querySelector("time");
  time.textContent = clock(msg.ts);
  time.dateTime = new Date(msg.ts).toISOString();
  const mark = li.querySelector(".state");
  mark.hidden = !state;
  if (state) {
    mark.dataset.state = state;
    mark.textContent = STATE_MARK[state];
    mark.title = STATE_TEXT[state];
    mark.setAttribute("aria-label", STATE_TEXT[state]);
  }
}

/** Keyed update: existing items stay (so screen readers announce only new ones), new ones are
 *  inserted in id order, pending sends last. */
export function renderMessages(conv, ctx) {
  const list = $("messages");
  if (!conv) { list.replaceChildren(); list.dataset.conv = ""; return; }
  if (list.dataset.conv !== conv.id) { list.replaceChildren(); list.dataset.conv = conv.id; }
  const existing = new Map([...list.children].map((li) => [li.dataset.key, li]));
  const wanted = [
    ...conv.shown().map((m) => [`m${m.id}`, m]),
    ...[...conv.pending.values()].map((p) => [`p${p.cid}`, { ...p, from: ctx.me, id: 0 }]),
  ];
  const keep = new Set(wanted.map(([key]) => key));
  for (const [key, li] of existing) if (!keep.has(key)) li.remove();
  let at = list.firstElementChild;
  for (const [key, msg] of wanted) {
    const li = existing.get(key) || messageItem(key);
    fillMessage(li, msg, conv, ctx);
    if (li !== at) list.insertBefore(li, at);
    else at = at.nextElementSibling;
  }
}

// ---- replies, edits, deletes, reactions (protocol §19) ---------------------------------------

/** The parts of a message item for actions, made once per item: the quote of a reply (above the
 *  body), the "edited" mark, the reactions row and a small menu. The menu's buttons find their
 *  message through the item's data-id when pressed, so re-renders keep them (and their focus). */
function addActionParts(li) {
  const quote = el("blockquote", { class: "quote", hidden: true },
    el("span", { class: "quote-from" }), el("span", { class: "quote-body" }));
  li.insertBefore(quote, li.querySelector(".body"));
  li.querySelector(".meta").prepend(el("span", { class: "edited", hidden: true, text: "edited" }));
  li.append(el("div", { class: "reactions" }));
  const act = (name) => (event) => {
    const handler = li.actionHandlers && li.actionHandlers[name];
    const emoji = event.currentTarget.dataset.emoji;
    li.querySelector(".msg-menu").open = false;
    li.querySelector(".msg-menu summary").focus(); // the pressed button is hidden now (reply and edit move on)
    if (handler) handler(emoji);
  };
  const menu = el("details", { class: "msg-menu" },
    el("summary", { "aria-label": "Message actions", title: "Message actions", text: "⋯" }),
    el("div", { class: "msg-menu-items" },
      el("button", { type: "button", class: "act-reply", onclick: act("reply"), text: "Reply" }),
      el("button", { type: "button", class: "act-edit", onclick: act("edit"), text: "Edit" }),
      el("button", { type: "button", class: "act-delete", onclick: act("remove"), text: "Delete" }),
      ...REACTIONS.map((emoji) => el("button", { type: "button", class: "act-react", "data-emoji": emoji,
                                                  "aria-label": `React ${emoji}`, onclick: act("react"), text: emoji }))));
  li.append(menu);
}

function fillActionParts(li, msg, conv, ctx) {
  const mine = msg.from === ctx.me;
  li.classList.toggle("deleted", Boolean(msg.deleted));
  if (msg.deleted) li.querySelector(".body").textContent = "message deleted";
  const quote = li.querySelector(".quote");
  quote.hidden = !msg.quote || Boolean(msg.deleted);
  if (msg.quote) {
    quote.querySelector(".quote-from").textContent = msg.quote.from === ctx.me ? "You" : nameOf(ctx.user(msg.quote.from));
    quote.querySelector(".quote-body").textContent = quoteText(msg, originalOf(conv, msg));
  }
  const edited = li.querySelector(".edited");
  edited.hidden = !msg.edited || Boolean(msg.deleted);
  const row = li.querySelector(".reactions");
  const chips = msg.deleted ? [] : reactionList(msg, ctx.me);
  const key = JSON.stringify(chips);
  if (row.dataset.key !== key) {
    row.dataset.key = key;
    row.replaceChildren(...chips.map((r) => el("button", {
      type: "button", class: `reaction${r.mine ? " mine" : ""}`, "data-emoji": r.emoji, "aria-pressed": String(r.mine),
      "aria-label": `${r.emoji} ${r.count}${r.mine ? ", you reacted" : ""}`,
      onclick: () => ctx.react && ctx.react(conv.id, msg.id, r.emoji, !r.mine),
    }, el("span", { class: "emoji", text: r.emoji }), el("span", { class: "count", text: String(r.count) }))));
  }
  const menu = li.querySelector(".msg-menu");
  menu.hidden = !msg.id || Boolean(msg.deleted) || !ctx.reply;
  li.querySelector(".act-edit").hidden = !canEdit(msg, ctx.me, Date.now());
  li.querySelector(".act-delete").hidden = !canDelete(msg, conv, ctx.me);
  for (const b of li.querySelectorAll(".act-react")) {
    b.setAttribute("aria-pressed", String(reactionList(msg, ctx.me).some((r) => r.emoji === b.dataset.emoji && r.mine)));
  }
  li.actionHandlers = {
    reply: () => ctx.reply(conv.id, msg.id),
    edit: () => ctx.edit(conv.id, msg.id),
    remove: () => ctx.remove(conv.id, msg.id),
    react: (emoji) => ctx.react(conv.id, msg.id, emoji, !reactionList(msg, ctx.me).some((r) => r.emoji === emoji && r.mine)),
  };
  if (!mine) li.querySelector(".act-edit").hidden = true;
}

/** The line above the composer while replying to or editing a message. */
export function renderComposing(composing, ctx) {
  const bar = $("composing");
  if (!bar) return;
  bar.hidden = !composing;
  if (!composing) return;
  const what = composing.mode === "edit" ? "Editing your message" :
    `Replying to ${composing.from === ctx.me ? "yourself" : nameOf(ctx.user(composing.from))}`;
  $("composing-text").textContent = `${what}: ${composing.body.slice(0, 100)}`;
}

function typingNames(conv, ctx) {
  const now = Date.now();
  const names = [...conv.typing].filter(([, until]) => until > now).map(([user]) => nameOf(ctx.user(user)));
  if (names.length === 0) return "";
  return names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
}

export function renderTyping(conv, ctx) {
  $("typing").textContent = conv ? typingNames(conv, ctx) : "";
}

export function renderFriends(friends, ctx) {
  const rows = [];
  for (const user of friends.incoming) {
    rows.push(el("li", { "data-user": user.id },
      el("span", { class: "person", text: `${nameOf(user)} wants to be friends` }),
      el("button", { type: "button", onclick: () => ctx.accept(user.id), text: "Accept" }),
      el("button", { type: "button", class: "secondary", onclick: () => ctx.decline(user.id), text: "Decline" })));
  }
  for (const user of friends.friends) {
    rows.push(el("li", { "data-user": user.id }, dot(ctx.presence.get(user.id)),
      el("span", { class: "person", text: nameOf(user) }),
      el("button", { type: "button", onclick: () => ctx.message(user.id), text: "Message",
                     "aria-label": `Message ${nameOf(user)}` })));
  }
  for (const user of friends.outgoing) {
    rows.push(el("li", { "data-user": user.id },
      el("span", { class: "person muted", text: `${nameOf(user)} (request sent)` })));
  }
  keepFocus($("friend-list"), () => $("friend-list").replaceChildren(...rows));
  // the group form's ticks are the user's input: keep each friend's checkbox (ticked or not, focused
  // or not) and only add, drop or rename
  const box = $("group-members");
  const held = new Map([...box.querySelectorAll("label.check")].map((l) => [l.dataset.user, l]));
  const checks = friends.friends.map((user) => {
    const label = held.get(user.id) ||
      el("label", { class: "check", "data-user": user.id }, el("input", { type: "checkbox", name: "member", value: user.id }), "");
    label.lastChild.textContent = nameOf(user);
    return label;
  });
  const wanted = checks.length ? checks : [box.querySelector("p.hint") || el("p", { class: "hint", text: "Add friends first." })];
  if (wanted.length !== box.children.length || wanted.some((node, i) => box.children[i] !== node)) {
    keepFocus(box, () => box.replaceChildren(...wanted));
  }
}

/** Re-renders a list whose items carry data-user, then gives focus back to the same control. */
function keepFocus(container, render) {
  const active = document.activeElement;
  const item = active && container.contains(active) ? active.closest("[data-user]") : null;
  const index = item ? [...item.querySelectorAll("button, input")].indexOf(active) : -1;
  render();
  if (!item) return;
  const again = container.querySelector(`[data-user="${CSS.escape(item.dataset.user)}"]`);
  const control = again ? again.querySelectorAll("button, input")[index] : null;
  if (control && control !== document.activeElement) control.focus();
}
