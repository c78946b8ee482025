// Drawing a live room (livemodel.js's LiveRoom). As in view.js, user text goes into the DOM only as text.
// Messages are a keyed list (an <li> per id, kept while it stays), so a hot room redraws only what changed
// and screen readers announce only new lines. Moderator controls are drawn only for the room's owner and
// moderators; the server checks again (403 not_moderator) whatever the page shows.

import { clock, nameOf } from "./model.js";
import { noticeText } from "./livemodel.js";
import { $, el } from "./view.js";

const STATE_TEXT = { open: "Open", closed: "Closed", archived: "Archived" };

export function showRoom(open) {
  $("live").hidden = !open;
  $("conversation").hidden = open;
  $("app").classList.toggle("live-open", open); // on a phone the room takes the screen (app.css)
}

export function renderHeader(room, ctx) {
  const meta = room.meta;
  $("live-title").textContent = meta ? meta.title || "Live room" : "Joining…";
  $("live-description").textContent = meta ? meta.description || "" : "";
  const state = $("live-state");
  state.textContent = meta ? STATE_TEXT[meta.state] || meta.state : "";
  state.dataset.state = meta ? meta.state : "";
  const viewers = $("live-viewers");
  viewers.textContent = meta ? `${room.viewers} watching` : "";
  viewers.dataset.viewers = String(room.viewers);
  const mod = room.moderates(ctx.me);
  const settings = $("live-settings");
  settings.hidden = !mod;
  if (mod && !settings.open) fillSettings(meta);
  $("live-slow-form").hidden = !(mod && ctx.moderation);
  const open = !meta || meta.state === "open";
  $("live-body").disabled = !open;
  $("live-send").disabled = !open;
  $("live-body").placeholder = open ? "Say something (Enter sends)" : "This room takes no new messages.";
}

function fillSettings(meta) {
  $("live-meta-title").value = meta.title || "";
  $("live-meta-description").value = meta.description || "";
  $("live-meta-state").value = meta.state;
}

export function renderPinned(room, ctx) {
  const box = $("live-pinned");
  const pinned = room.pinned();
  box.hidden = !pinned;
  if (!pinned) { box.dataset.id = ""; return; }
  box.dataset.id = String(pinned.id);
  $("live-pinned-from").textContent = `${nameOf(ctx.user(pinned.from))}:`;
  $("live-pinned-body").textContent = pinned.body;
  $("live-unpin").hidden = !room.moderates(ctx.me);
}

export function renderNotice(room, now) {
  const box = $("live-notice");
  box.hidden = !room.notice;
  box.textContent = noticeText(room.notice, now);
  box.dataset.code = room.notice ? room.notice.code : "";
}

function menu(msg, room, ctx) {
  const item = (text, action, extra = {}) => el("button", { type: "button", class: "secondary", "data-action": action,
                                                            onclick: () => ctx.act(action, msg), text, ...extra });
  const pinned = room.meta?.pinned === msg.id;
  const buttons = [item("Delete", "delete"), item(pinned ? "Unpin" : "Pin", pinned ? "unpin" : "pin")];
  if (ctx.moderation && msg.from !== ctx.me) {
    buttons.push(item("Time out 5 min", "timeout"), item("Ban from room", "ban"));
  }
  return el("details", { class: "msg-menu" },
    el("summary", { "aria-label": "Moderate this message", title: "Moderate", text: "⋯" }),
    el("div", { class: "menu" }, ...buttons));
}

function messageItem(key, msg, room, ctx) {
  const mine = msg.from === ctx.me;
  const li = el("li", { class: `msg live-msg${mine ? " mine" : ""}`, "data-key": key },
    el("span", { class: "from", text: mine ? "You" : nameOf(ctx.user(msg.from)) }),
    el("p", { class: "body" }),
    el("span", { class: "meta" }, el("time"), el("span", { class: "state" })));
  if (msg.id) li.dataset.id = String(msg.id);
  if (msg.id && !msg.pending && room.moderates(ctx.me)) li.append(menu(msg, room, ctx));
  return li;
}

function fill(li, msg, ctx) {
  const mine = msg.from === ctx.me;
  const from = mine ? "You" : nameOf(ctx.user(msg.from));
  const drawn = `${from}\n${msg.deleted ? "-" : msg.body}\n${msg.pending ? 1 : 0}`;
  if (li.dataset.drawn === drawn) return; // unchanged: a hot room redraws only what is new
  li.dataset.drawn = drawn;
  li.querySelector(".from").textContent = from;
  li.classList.toggle("deleted", Boolean(msg.deleted));
  if (msg.deleted) li.querySelector(".msg-menu")?.remove();
  li.querySelector(".body").textContent = msg.deleted ? "Message deleted by a moderator" : msg.body;
  const time = li.querySelector("time");
  time.textContent = clock(msg.ts);
  time.dateTime = new Date(msg.ts).toISOString();
  const state = li.querySelector(".state");
  state.hidden = !msg.pending;
  state.textContent = msg.pending ? "sending" : "";
}

/** Keyed update of the message list; a moderator's menus are rebuilt when moderation rights change. */
export function renderMessages(room, ctx) {
  const list = $("live-messages");
  const mod = room.moderates(ctx.me) ? `mod:${room.meta?.pinned ?? ""}` : "";
  if (list.dataset.room !== room.id || list.dataset.mod !== mod) {
    list.replaceChildren();
    list.dataset.room = room.id;
    list.dataset.mod = mod;
  }
  $("live-trimmed").hidden = room.trimmed === 0;
  const wanted = room.shown().map((m) => [m.pending ? `p${m.cid}` : `m${m.id}`, m]);
  const existing = new Map([...list.children].map((li) => [li.dataset.key, li]));
  const keep = new Set(wanted.map(([key]) => key));
  for (const [key, li] of existing) if (!keep.has(key)) li.remove();
  let at = list.firstElementChild;
  for (const [key, msg] of wanted) {
    const li = existing.get(key) || messageItem(key, msg, room, ctx);
    fill(li, msg, ctx);
    if (li !== at) list.insertBefore(li, at);
    else at = at.nextElementSibling;
  }
}

export function clearMessages() {
  const list = $("live-messages");
  list.replaceChildren();
  list.dataset.room = "";
}
