// The chat's state, without DOM or sockets: conversations with their messages (one copy per id),
// members' delivered/read marks, typing, unread counts. main.js feeds it frames and responses;
// view.js draws it. Actions (edits, deletes, reactions) are applied by actions.js.

import { applyAction, isAction } from "./actions.js";

export class Conversation {
  constructor(raw) {
    this.id = raw.id;
    this.messages = new Map(); // id → msg; a repeat of an id is dropped
    this.pending = new Map(); // cid → {cid, body, ts}: our sends not yet stored
    this.marks = new Map(); // user → {delivered, read}
    this.typing = new Map(); // user → expiry (ms)
    this.read = 0;
    this.unread = 0;
    this.loaded = false; // newest page fetched over HTTP
    this.more = true; // older history exists
    this.last = null;
    this.listedLast = 0; // the newest id the server's list counted `unread` up to
    this.update(raw);
  }

  update(raw) {
    this.kind = raw.kind;
    this.name = raw.name || "";
    this.members = raw.members;
    this.roles = raw.roles || {};
    if (raw.last_message && raw.last_message.id > this.lastId) this.last = raw.last_message;
    if (raw.last_message && !isAction(raw.last_message)) this.lastPlain = raw.last_message; // the list's line
    if (typeof raw.read === "number") this.read = Math.max(this.read, raw.read);
    if (typeof raw.unread === "number") this.unread = raw.unread;
    // a listing whose unread we took (raw.listed false: we kept our own count, which already
    // counts every message we were given)
    if (raw.listed !== false && raw.last_message) this.listedLast = Math.max(this.listedLast, raw.last_message.id);
  }

  get lastId() {
    return this.last ? this.last.id : 0;
  }

  get oldestId() {
    let oldest = 0;
    for (const id of this.messages.keys()) if (oldest === 0 || id < oldest) oldest = id;
    return oldest;
  }

  /** Whether a message from the socket belongs in memory. A sync from an old cursor (or a new
   *  device's, from the beginning) replays history; what the list already counted, or what lies
   *  below the pages fetched so far, is left to paging over HTTP (which asks for ids before the
   *  oldest held), so a conversation shows its newest page first and pages stay gapless. */
  wants(msg) {
    if (!this.loaded) return msg.id > this.listedLast;
    return !this.more || msg.id > this.oldestId;
  }

  /** Adds a message unless its id is already here; true if it was new. */
  add(msg) {
    const held = this.messages.get(msg.id);
    if (held && held.stub) { Object.assign(held, msg); delete held.stub; } // our ack's stand-in, now whole
    if (held) return false;
    this.messages.set(msg.id, msg);
    this.pending.delete(msg.cid);
    if (msg.id > this.lastId) this.last = msg;
    if (isAction(msg)) applyAction(this.messages, msg);
    return true;
  }

  /** Whether a stored message of ``me`` with this client id is held. */
  holdsMine(cid, me) {
    for (const m of this.messages.values()) if (m.cid === cid && m.from === me) return true;
    return false;
  }

  sorted() {
    return [...this.messages.values()].sort((a, b) => a.id - b.id);
  }

  /** The messages to show: every held entry but actions (they are applied to their targets). */
  shown() {
    return this.sorted().filter((m) => !isAction(m));
  }

  highestBelow(id) {
    let best = 0;
    for (const held of this.messages.keys()) if (held < id && held > best) best = held;
    return best;
  }

  mark(user, status, upto) {
    const m = this.marks.get(user) || { delivered: 0, read: 0 };
    if (status === "read") m.read = Math.max(m.read, upto);
    m.delivered = Math.max(m.delivered, upto); // read implies delivered
    this.marks.set(user, m);
  }

  /** Our own read mark moved (this device or another of ours read). */
  readUpto(upto, me) {
    this.read = Math.max(this.read, upto);
    if (this.read >= this.lastId) this.unread = 0;
    else if (this.loaded) this.unread = this.shown().filter((m) => m.id > this.read && m.from !== me).length;
  }

  others(me) {
    return this.members.filter((u) => u.id !== me);
  }
}

/** SENT / DELIVERED / READ of one of our messages: every other member has it delivered / read. */
export function stateOf(msg, conv, me) {
  const others = conv.others(me);
  if (others.length === 0) return "sent";
  const marks = others.map((u) => conv.marks.get(u.id) || { delivered: 0, read: 0 });
  if (marks.every((m) => m.read >= msg.id)) return "read";
  if (marks.every((m) => m.delivered >= msg.id)) return "delivered";
  return "sent";
}

export function nameOf(user) {
  if (user && user.deleted) return "Deleted account"; // docs/adr/0015: a placeholder keeps the id
  return user ? user.display_name || user.username : "someone";
}

export function titleOf(conv, me) {
  if (conv.kind === "group") return conv.name || "Group";
  const other = conv.others(me)[0];
  return nameOf(other);
}

export function lastSeen(presence, now) {
  if (!presence) return "";
  if (presence.online) return "online";
  if (!presence.last_active_at) return "offline";
  const minutes = Math.floor((now - presence.last_active_at) / 60000);
  if (minutes < 1) return "last seen just now";
  if (minutes < 60) return `last seen ${minutes} min ago`;
  const when = new Date(presence.last_active_at);
  const sameDay = when.toDateString() === new Date(now).toDateString();
  const time = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return sameDay ? `last seen at ${time}` : `last seen ${when.toLocaleDateString()} ${time}`;
}

export function clock(ts) {
  return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** A mirror of the node's budget for one frame kind on this connection (protocol §11: `burst` at once,
 *  `per_s` after that; the welcome's `limits.frames`): a client that waits as it says is never refused.
 *  A frame's cost is the number of users asked (presence); `now` in ms is passed in. */
export class FrameBudget {
  constructor(rate, now) {
    this.perS = rate?.per_s > 0 ? rate.per_s : 20;
    this.burst = rate?.burst > 0 ? rate.burst : 500;
    this.tokens = this.burst; // a new connection's budget is full
    this.stamp = now;
  }

  refill(now) {
    this.tokens = Math.min(this.burst, this.tokens + Math.max(0, now - this.stamp) / 1000 * this.perS);
    this.stamp = Math.max(this.stamp, now);
  }

  /** ms to wait before a frame of `cost` goes within the budget (0: now), with a 10 % margin. */
  wait(cost, now) {
    this.refill(now);
    const need = Math.min(cost, this.burst) - this.tokens;
    return need <= 0 ? 0 : Math.ceil((need / this.perS) * 1000 * 1.1);
  }

  take(cost, now) {
    this.refill(now);
    this.tokens -= Math.min(cost, this.burst);
  }
}

/** Presence asks in chunks of at most `chunk` users (the frame's limit is 100), each new user once. */
export function presenceChunks(users, chunk = 100) {
  const unique = [...new Set(users)];
  const out = [];
  for (let i = 0; i < unique.length; i += chunk) out.push(unique.slice(i, i + chunk));
  return out;
}
