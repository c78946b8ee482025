// Replies, edits, deletes and reactions on the client (docs/protocol.md §19, ADR 0025), without DOM
// or sockets. An entry with a `kind` is an action: it stays in the conversation's map (ids and `prev`
// chains need it) but is never shown; it is applied to its `target` if that is held, in chain order.
//
// A message read from the server's store (an HTTP history page, a sync of archived entries) shows its
// state as it is now (`edited`, `edited_at`, `deleted`, `reactions`): its `asOf` is the newest id the
// conversation had when it was read, and an action at or below it is already in that state.

import { shortText } from "./attachmodel.js";

export const REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🎉"];

export function isAction(msg) {
  return Boolean(msg && msg.kind);
}

/** Marks messages of one HTTP page (or sync) as read from the store, up to `newest`. */
export function stampStored(messages, newest) {
  const top = Math.max(newest || 0, ...messages.map((m) => m.id));
  for (const m of messages) if (!isAction(m)) m.asOf = Math.max(m.asOf || 0, top);
  return messages;
}

/** Applies one action entry to its target in `held` (id → msg); true if something changed. */
export function applyAction(held, action) {
  const target = held.get(action.target);
  if (!target || isAction(target) || action.id <= (target.asOf || 0)) return false;
  if (action.kind === "delete") return tombstone(held, target);
  if (target.deleted) return false; // an edit or reaction of a deleted message changes nothing
  if (action.kind === "edit") {
    if (target.edited_at && action.ts < target.edited_at) return false; // an older edit
    target.body = action.body;
    target.edited = true;
    target.edited_at = action.ts;
    return true;
  }
  if (action.kind === "react" || action.kind === "unreact") return react(target, action);
  return false;
}

function tombstone(held, target) {
  if (target.deleted) return false;
  target.deleted = true;
  target.body = "";
  target.reactions = {};
  for (const m of held.values()) {
    if (m.reply_to === target.id && m.quote) m.quote = { ...m.quote, body: "" };
    if (isAction(m) && m.kind === "edit" && m.target === target.id) m.body = "";
  }
  return true;
}

function react(target, action) {
  const reactions = { ...(target.reactions || {}) };
  const now = reactions[action.emoji] || { count: 0, users: [] };
  const has = now.users.includes(action.from);
  if (action.kind === "react" === has) return false; // a set: applying one twice is harmless
  const users = has ? now.users.filter((u) => u !== action.from) : [...now.users, action.from];
  const count = Math.max(users.length, now.count + (has ? -1 : 1));
  if (count > 0) reactions[action.emoji] = { count, users };
  else delete reactions[action.emoji];
  target.reactions = reactions;
  return true;
}

/** The reactions to draw under a message: [{emoji, count, mine}], in a stable order. */
export function reactionList(msg, me) {
  return Object.entries(msg.reactions || {})
    .filter(([, r]) => r.count > 0)
    .map(([emoji, r]) => ({ emoji, count: r.count, mine: (r.users || []).includes(me) }));
}

/** The conversation list's line: the newest held message that is not an action; else the listing's
 *  last message, or a few words for an action there. */
export function lastShown(conv) {
  let best = conv.lastPlain && !conv.messages.has(conv.lastPlain.id) ? conv.lastPlain : null;
  for (const m of conv.messages.values()) if (!isAction(m) && (!best || m.id > best.id)) best = m;
  return best;
}

/** A few words for an action entry, when the list knows nothing newer to show. */
export function actionWords(msg) {
  return { edit: "edited a message", delete: "deleted a message", react: `reacted ${msg.emoji || ""}`,
           unreact: "took back a reaction" }[msg.kind] || "";
}

export function previewBody(msg) {
  if (!msg) return "";
  if (msg.deleted) return "message deleted";
  return shortText(msg); // a photo without text: "Photo"
}

/** Whether `me` may edit `msg` now (the sender, within the welcome's edit window). */
export function canEdit(msg, me, now, windowMs = 900000) {
  return Boolean(msg.id) && msg.from === me && !msg.deleted && now - msg.ts < windowMs;
}

/** Whether `me` may delete `msg` for everyone: the sender, or a group's owner or admin. */
export function canDelete(msg, conv, me) {
  if (!msg.id || msg.deleted) return false;
  if (msg.from === me) return true;
  const role = conv.roles ? conv.roles[me] : undefined;
  return conv.kind === "group" && (role === "owner" || role === "admin");
}
