// A live room's state, without DOM or sockets (docs/protocol.md §18): its meta, viewer count, the messages
// on screen (capped: a hot room keeps only the newest SHOWN_MAX, so the page never grows without end), our
// sends in flight, and the notice shown when the room refused one of them. live.js feeds it frames;
// liveview.js draws it.

export const SHOWN_MAX = 300;

// Each refusal code a live send can get (protocol §12 and §18, parley/errors.py), in words for the sender.
export const REFUSED = {
  banned_word: "Not sent: your message contains a word this room does not allow.",
  flooding: "Not sent: you are sending too fast (flood warning). Slow down.",
  duplicate: "Not sent: that repeats one of your recent messages (spam warning).",
  links: "Not sent: too many links, or links from a new account (spam warning).",
  slow_mode: "Slow mode is on.",
  timed_out: "You are timed out of this room.",
  banned: "You are banned from this room.",
  room_closed: "The room is closed: it takes no new messages.",
  unknown_room: "There is no such live room.",
  too_large: "Not sent: the message is too long.",
  rate_limited: "Not sent: you are sending too fast.",
  bad_field: "Not sent: the message was not valid.",
  bus_unavailable: "Not sent: the server is busy right now. Try again.",
  store_unavailable: "Not sent: the server is busy right now. Try again.",
  internal: "Not sent: something went wrong on the server. Try again.",
};
// codes whose wait is worth counting down ("you can send again in 7 s")
const COUNTDOWN = new Set(["slow_mode", "timed_out", "flooding", "rate_limited"]);

/** The notice for a refused send: {code, text, until} (`until`: ms when waiting ends, or 0). */
export function refusal(error, now) {
  const code = error.code || "internal";
  const text = REFUSED[code] || error.message || `Not sent (${code}).`;
  const wait = COUNTDOWN.has(code) && error.retry_after_ms > 0 ? error.retry_after_ms : 0;
  return { code, text, until: wait ? now + wait : 0 };
}

/** The notice's words at `now`: its text, and the time left while there is some. */
export function noticeText(notice, now) {
  if (!notice) return "";
  if (!notice.until) return notice.text;
  const left = Math.ceil((notice.until - now) / 1000);
  return left > 0 ? `${notice.text} You can send again in ${left} s.` : `${notice.text} You can send again now.`;
}

/** A room id from what a person pastes: the id itself, or a link with `#live/<id>` or `?live=<id>`. */
export function roomFrom(text) {
  const t = (text || "").trim();
  const found = t.match(/(?:#live\/|[?&]live=)([a-z2-7]{16})\b/) || t.match(/^([a-z2-7]{16})$/);
  return found ? found[1] : null;
}

export function roomLink(origin, room) {
  return `${origin}/#live/${room}`;
}

export class LiveRoom {
  constructor(id) {
    this.id = id;
    this.meta = null; // null until live_joined
    this.viewers = 0;
    this.messages = new Map(); // id → {id, from, cid, body, ts, deleted}, in arrival order
    this.pending = new Map(); // cid → {cid, body, ts, id}: our sends until their live_msg comes
    this.trimmed = 0; // messages dropped off the top to keep the page small
    this.pinnedMsg = null; // the pinned message when it is not among `messages` (fetched over HTTP)
    this.notice = null;
  }

  joined(frame) {
    this.meta = frame.meta;
    this.viewers = frame.viewers;
    this.messages.clear();
    this.trimmed = 0;
    for (const m of frame.messages) this.add(m);
  }

  /** Adds a message unless its id is held; true if new. Past SHOWN_MAX the oldest go. */
  add(msg) {
    if (this.messages.has(msg.id)) return false;
    this.messages.set(msg.id, msg);
    for (const [cid, p] of this.pending) if (cid === msg.cid && (p.id === 0 || p.id === msg.id)) this.pending.delete(cid);
    while (this.messages.size > SHOWN_MAX) {
      this.messages.delete(this.messages.keys().next().value);
      this.trimmed += 1;
    }
    return true;
  }

  deleted(id) {
    const m = this.messages.get(id);
    if (m) this.messages.set(id, { ...m, body: "", deleted: true });
    if (this.pinnedMsg && this.pinnedMsg.id === id) this.pinnedMsg = null;
  }

  pinned() {
    const id = this.meta?.pinned;
    if (!id) return null;
    const m = this.messages.get(id) || (this.pinnedMsg?.id === id ? this.pinnedMsg : null);
    return m && !m.deleted ? m : null;
  }

  moderates(user) {
    return Boolean(this.meta) && (this.meta.owner === user || (this.meta.moderators || []).includes(user));
  }

  /** What to draw, oldest first: held messages, then our sends not yet back. */
  shown() {
    return [...this.messages.values(), ...[...this.pending.values()].map((p) => ({ ...p, pending: true }))];
  }
}
