// The live room view's controller (docs/protocol.md §18): joining by link (`/#live/<room>`, or
// `?live=<room>`) or by id, making a room, the stream of messages, sending, and the moderators' actions over
// HTTP (docs/openapi.yaml, tag live). One room is open at a time; it rides on the page's one WebSocket, so
// after every reconnect (`welcome`) the room is joined again and its backlog replaces what was shown (live
// rooms have no replay beyond the join's backlog).

import { LiveRoom, refusal, roomLink } from "./livemodel.js";
import * as view from "./liveview.js";
import { $ } from "./view.js";

// The moderation routes of the flood rules (time out, ban, slow mode: docs/adr/0020) are on this server.
const MODERATION = true;
const TIMEOUT_S = 300;

function newCid() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return "l" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Calls `call`, again a few times while it answers `unknown_message`: a message is shown as soon as the
 *  stream has it, and the store (which delete and pin look in) is a moment behind. */
async function storedSoon(call, tries = 6) {
  for (let i = 1; ; i += 1) {
    try {
      return await call();
    } catch (err) {
      if (err.code !== "unknown_message" || i >= tries) throw err;
      await new Promise((resolve) => { setTimeout(resolve, 250 * i); });
    }
  }
}

export class Live {
  /** `send(frame)`: on the page's WebSocket (false when it is not connected); `me()`: our user id;
   *  `user(id)` / `learn(user)`: the page's user cache; `onOpen()`: the live view took the main area. */
  constructor({ api, send, me, user, learn, onOpen }) {
    Object.assign(this, { api, send, me, user, learn, onOpen });
    this.room = null;
    this.asking = new Set(); // user ids being looked up
    this.drawing = 0; // the animation frame a redraw waits for (frames in a burst are drawn once)
    this.stick = false; // scroll to the newest message after the next redraw
    this.ctx = {
      get me() { return me(); },
      user: (id) => this.user(id),
      moderation: MODERATION,
      act: (action, msg) => this.act(action, msg),
    };
  }

  // ---- opening and leaving ---------------------------------------------------------------------

  open(id) {
    if (this.room?.id === id) return;
    if (this.room) this.send({ type: "live_leave", room: this.room.id });
    this.room = new LiveRoom(id);
    view.clearMessages();
    view.showRoom(true);
    if (location.hash !== `#live/${id}`) history.replaceState(null, "", `${location.pathname}#live/${id}`);
    this.onOpen();
    this.join();
    this.render();
  }

  join() {
    if (this.room) this.send({ type: "live_join", room: this.room.id });
  }

  /** A new connection: join again, and resend what was in flight with the same cid (the stream drops a
   *  repeat of one it already took; the backlog shows it either way). */
  rejoin() {
    this.join();
    for (const p of this.room?.pending.values() ?? []) {
      this.send({ type: "live_send", room: this.room.id, cid: p.cid, body: p.body });
    }
  }

  /** Leaves the open room (the Leave button, or a chat opened instead). */
  close() {
    if (!this.room) return;
    this.send({ type: "live_leave", room: this.room.id });
    this.room = null;
    view.showRoom(false);
    if (location.hash.startsWith("#live/") || location.search.includes("live=")) {
      history.replaceState(null, "", location.pathname);
    }
  }

  /** The session ended: forget the room without a word to the server (the connection is gone). */
  reset() {
    this.room = null;
    view.showRoom(false);
  }

  async create(title) {
    const meta = await this.api.createLive(title, "");
    this.open(meta.id);
    return meta;
  }

  // ---- frames ------------------------------------------------------------------------------------

  /** A frame from the WebSocket; true if it was the live view's. */
  handle(frame) {
    if (frame.type === "welcome") { this.rejoin(); return false; }
    if (frame.type === "error") return this.failed(frame);
    if (!frame.type?.startsWith("live_")) return false;
    const room = this.room;
    if (!room || frame.room !== room.id) return true; // a room we left: its last frames
    switch (frame.type) {
      case "live_joined": this.joined(room, frame); break;
      case "live_msg": this.arrived(room, frame); break;
      case "live_sent": this.sent(room, frame); break;
      case "live_deleted": room.deleted(frame.id); this.render(); break;
      case "live_pinned": this.pinned(room, frame.id); break;
      case "live_meta": room.meta = frame.meta; this.render(); break;
      case "live_viewers": room.viewers = frame.viewers; this.render(); break;
      case "live_dropped": this.join(); break; // we read too slowly: join again (its backlog catches up)
      default: break;
    }
    return true;
  }

  joined(room, frame) {
    room.joined(frame);
    this.names(frame.messages.map((m) => m.from));
    this.stick = true;
    this.pinned(room, frame.meta.pinned);
  }

  arrived(room, msg) {
    if (!room.add(msg)) return;
    this.names([msg.from]);
    this.stick ||= this.nearEnd() || msg.from === this.me();
    this.render();
  }

  sent(room, frame) {
    const p = room.pending.get(frame.cid);
    if (!p) return;
    if (room.messages.has(frame.id)) room.pending.delete(frame.cid); // its live_msg came first
    else p.id = frame.id; // shown as sending until its live_msg (masked text, if it was) arrives
    room.notice = frame.masked ? { code: "masked", text: "Sent, with a word this room does not allow masked.",
                                   until: 0 } : null;
    this.render();
  }

  failed(error) {
    const room = this.room;
    if (!room) return Boolean(error.room);
    const p = error.ref ? room.pending.get(error.ref) : null;
    if (!p && error.room !== room.id) return Boolean(error.room); // not ours
    if (p) {
      room.pending.delete(error.ref);
      const box = $("live-body");
      if (!box.value) box.value = p.body; // to edit and send again
    }
    room.notice = p || error.code === "unknown_room" ? refusal(error, Date.now())
      : { code: error.code, text: `Could not join the room: ${error.message}`, until: 0 };
    if (!p && error.retryable) setTimeout(() => { if (this.room === room) this.join(); }, error.retry_after_ms ?? 2000);
    this.render();
    return true;
  }

  async pinned(room, id) {
    room.meta = { ...room.meta, pinned: id };
    this.render();
    if (!id || room.pinned()) return;
    try {
      const { messages } = await this.api.liveHistory(room.id, { before: id + 1, limit: 1 });
      if (messages[0]?.id === id && room.meta.pinned === id) room.pinnedMsg = messages[0];
      this.names([messages[0]?.from]);
      this.render();
    } catch (err) {
      this.tell(err.message);
    }
  }

  // ---- sending and moderating ----------------------------------------------------------------------

  sendMessage() {
    const box = $("live-body");
    const body = box.value;
    const room = this.room;
    if (!room || !body.trim()) return;
    const cid = newCid();
    room.pending.set(cid, { cid, body, ts: Date.now(), id: 0, from: this.me() });
    if (!this.send({ type: "live_send", room: room.id, cid, body })) {
      room.pending.delete(cid);
      room.notice = { code: "offline", text: "Not sent: not connected. Wait a moment and try again.", until: 0 };
      this.render();
      return;
    }
    box.value = "";
    room.notice = null;
    this.stick = true;
    this.render();
  }

  async act(action, msg) {
    const room = this.room;
    if (!room) return;
    const calls = {
      delete: () => this.api.deleteLive(room.id, msg.id),
      pin: () => this.api.pinLive(room.id, msg.id),
      unpin: () => this.api.pinLive(room.id, null),
      timeout: () => this.api.timeOut(room.id, msg.from, TIMEOUT_S),
      ban: () => this.api.ban(room.id, msg.from),
    };
    const done = { delete: "Message deleted.", pin: "Message pinned.", unpin: "Unpinned.",
                   timeout: "Timed out for 5 minutes.", ban: "Banned from the room." };
    try {
      await storedSoon(calls[action]);
      this.tell(done[action]);
    } catch (err) {
      this.tell(err.code === "not_moderator" ? "Only the room's moderators can do that." : err.message);
    }
    document.querySelectorAll("#live-messages details[open]").forEach((d) => { d.open = false; });
  }

  async saveMeta() {
    const room = this.room;
    if (!room) return;
    const fields = { title: $("live-meta-title").value.trim(), description: $("live-meta-description").value,
                     state: $("live-meta-state").value };
    try {
      room.meta = await this.api.updateLive(room.id, fields);
      $("live-settings-state").textContent = "Saved.";
      this.render();
    } catch (err) {
      $("live-settings-state").textContent = err.message;
    }
  }

  async setSlowMode() {
    if (!this.room) return;
    const seconds = Number($("live-slow").value);
    try {
      await this.api.slowMode(this.room.id, seconds);
      $("live-settings-state").textContent = seconds > 0 ? `Slow mode: ${seconds} s.` : "Slow mode off.";
    } catch (err) {
      $("live-settings-state").textContent = err.message;
    }
  }

  async copyLink() {
    if (!this.room) return;
    const link = roomLink(location.origin, this.room.id);
    try {
      await navigator.clipboard.writeText(link);
      this.tell("Link copied.");
    } catch (err) {
      this.tell(link); // no clipboard (plain http, or refused): show it to copy by hand
    }
  }

  tell(text) {
    $("live-tool-state").textContent = text;
  }

  // ---- drawing -------------------------------------------------------------------------------------

  /** Names for user ids not known yet, looked up once each. */
  names(ids) {
    for (const id of new Set(ids)) {
      if (!id || this.user(id) || this.asking.has(id)) continue;
      this.asking.add(id);
      this.api.user(id).then(({ user }) => { this.learn(user); this.render(); }, () => {})
        .finally(() => this.asking.delete(id));
    }
  }

  /** Redraws at the next animation frame, once however many frames arrived meanwhile. */
  render() {
    if (!this.drawing) this.drawing = requestAnimationFrame(() => this.draw());
  }

  draw() {
    this.drawing = 0;
    const room = this.room;
    if (!room) return;
    view.renderHeader(room, this.ctx);
    view.renderPinned(room, this.ctx);
    view.renderMessages(room, this.ctx);
    view.renderNotice(room, Date.now());
    if (this.stick) this.scrollToEnd();
    this.stick = false;
  }

  /** Once a second: a refusal's countdown. */
  tick() {
    if (this.room?.notice?.until) view.renderNotice(this.room, Date.now());
  }

  nearEnd() {
    const s = $("live-scroller");
    return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
  }

  scrollToEnd() {
    const s = $("live-scroller");
    s.scrollTop = s.scrollHeight;
  }
}
