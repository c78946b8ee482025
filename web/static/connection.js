// One device's WebSocket to an edge node (docs/protocol.md), kept alive across node failures.
//
// It follows the protocol's reconnect algorithm (§15): hello with the device's cursor; on a drop,
// back off with jitter and get a fresh placement from /v1/place (trying a node other than the one
// that just failed first); on `moved` (the node is draining, close 4010) go to the named node at
// once. Sends stay pending until their `ack` (or their own `msg`) and are resent after a reconnect
// with the same cid, which the node de-duplicates.
//
// The cursor (protocol v2, §9) is an opaque string the server made: never looked into, compared or
// built here. The node offers one in `cursor` frames and `synced`; each covers every frame sent before
// it, and frames are handled one at a time in order, so when one arrives everything before it has
// been handled: it becomes this device's cursor (`onCursor`, which keeps it across a reload) and is
// acked at once. A reconnect sends it as `hello.cursor`, so it misses nothing; what it gets again
// the page drops by id. `welcome.cursor` (where the node starts this sync: ours, or after a
// `bad_cursor` the start) replaces ours, so a cursor the server refused is not sent twice.
//
// A resend is only safe within the node's de-duplication window (§6: PARLEY_DEDUP_WINDOW_S, 300 s
// by default; `welcome` does not carry it). A send first tried longer ago than that minus a margin
// is looked up in the conversation's newest history first: found (same cid, this device) it counts
// as acked; only if it is absent is it resent. One Connection serves one session (one user, one
// device): the page makes a new one per login, so nothing pending crosses to another user.

const CLIENT = "parley-web/2";
const VERSION = 2;
const FIRST_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 30000;
const AUTH_CLOSES = new Set([4001, 4002, 4003]);
// The server's default dedup window (settings dedup_window_s = 300); a welcome's
// limits.dedup_window_s, if a node ever sends it, takes precedence.
const DEDUP_WINDOW_MS = 300000;
const DEDUP_MARGIN_MS = 60000; // resend blindly only below window − margin (240 s)
const LOOKUP_PAGE = 100;
const LOOKUP_PAGES = 5;

function urlsOf(placement) {
  const nodes = placement.node ? [placement.node, ...(placement.fallbacks || [])] : [];
  return nodes.map((n) => n.url);
}

function newCid() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return "w" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Connection {
  constructor({ api, token, device, onFrame, onState, onAuthLost, onCursor = () => {}, now = () => Date.now() }) {
    Object.assign(this, { api, token, device, onFrame, onState, onAuthLost, onCursor, now });
    this.cursor = ""; // the newest cursor offered and handled ("": none, the node uses the stored one)
    this.pending = new Map(); // cid → send frame, until acked
    this.sentAt = new Map(); // cid → when it was first tried (ms, this.now())
    this.checking = new Set(); // cids being looked up in history
    this.dedupWindowMs = DEDUP_WINDOW_MS;
    this.nodes = [];
    this.ws = null;
    this.live = false;
    this.backoff = FIRST_BACKOFF_MS;
    this.stopped = true;
    this.timers = new Set();
  }

  /** Connects from `cursor` (a string the server gave this device), or, when null, from the
   *  cursor this Connection already holds. */
  start(cursor, placement) {
    this.stopped = false;
    if (typeof cursor === "string") this.cursor = cursor;
    this.nodes = placement ? urlsOf(placement) : [];
    this.connect();
  }

  stop() {
    this.stopped = true;
    this.clearTimers();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000);
    }
    this.state("offline");
  }

  send(frame) {
    if (!this.ws || !this.live) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  sendMessage(conv, body) {
    const frame = { type: "send", cid: newCid(), conv, body };
    this.pending.set(frame.cid, frame);
    this.sentAt.set(frame.cid, this.now());
    this.send(frame);
    return frame.cid;
  }

  /** A send with more fields (a reply's `reply_to`; an action's `kind`, `target`, `emoji`: protocol §19),
   *  pending and resent like a message. */
  sendEntry(conv, fields) {
    const frame = { type: "send", cid: newCid(), conv, body: "", ...fields };
    this.pending.set(frame.cid, frame);
    this.sentAt.set(frame.cid, this.now());
    this.send(frame);
    return frame.cid;
  }

  settle(cid) {
    this.pending.delete(cid);
    this.sentAt.delete(cid);
  }

  /** Resends a pending send: at once while the node still de-duplicates its cid, else only after
   *  history shows it was not stored. */
  resend(frame) {
    if (!this.pending.has(frame.cid) || this.checking.has(frame.cid)) return;
    const age = this.now() - (this.sentAt.get(frame.cid) ?? this.now());
    if (age < this.dedupWindowMs - DEDUP_MARGIN_MS) { this.send(frame); return; }
    this.checking.add(frame.cid);
    this.lookUp(frame).then((stored) => {
      this.checking.delete(frame.cid);
      if (!this.pending.has(frame.cid)) return; // its ack or msg came meanwhile
      if (stored) {
        this.settle(frame.cid);
        this.onFrame({ type: "ack", status: "sent", cid: frame.cid, id: stored.id, conv: frame.conv,
                       duplicate: true });
      } else {
        // not live? the next welcome looks again; sent: a new first attempt, the window starts again
        if (this.send(frame)) this.sentAt.set(frame.cid, this.now());
      }
    }, () => {
      this.checking.delete(frame.cid);
      this.later(() => this.resend(frame), 2000); // history unreachable: ask again, never resend blind
    });
  }

  /** The stored message of a send, from the conversation's newest history pages, or null. */
  async lookUp(frame) {
    const device = this.device();
    const since = (this.sentAt.get(frame.cid) ?? 0) - DEDUP_WINDOW_MS; // generous for clock skew
    let before = null;
    for (let page = 0; page < LOOKUP_PAGES; page += 1) {
      const params = before ? { before, limit: LOOKUP_PAGE } : { limit: LOOKUP_PAGE };
      const r = await this.api.history(frame.conv, params);
      const found = r.messages.find((m) => m.cid === frame.cid && m.device === device);
      if (found) return found;
      if (!r.more || r.messages.length === 0) return null;
      before = Math.min(...r.messages.map((m) => m.id));
      if (Math.min(...r.messages.map((m) => m.ts)) < since) return null;
    }
    return null;
  }

  state(name, detail = {}) {
    this.onState({ state: name, node: this.node, ...detail });
  }

  later(fn, ms) {
    const id = setTimeout(() => { this.timers.delete(id); fn(); }, ms);
    this.timers.add(id);
  }

  clearTimers() {
    for (const id of this.timers) { clearTimeout(id); clearInterval(id); }
    this.timers.clear();
  }

  async connect() {
    if (this.stopped) return;
    this.state("connecting");
    if (this.nodes.length === 0) {
      try {
        this.nodes = urlsOf(await this.api.place());
      } catch (err) {
        if (err.status === 401) { this.stop(); this.onAuthLost(err.code); return; }
        this.retry(); // 503 no_node or no network: back off and ask again
        return;
      }
      if (this.avoid && this.nodes.length > 1 && this.nodes[0] === this.avoid) this.nodes.push(this.nodes.shift());
    }
    if (this.stopped) return;
    this.open(this.nodes.shift());
  }

  open(url) {
    const ws = new WebSocket(url);
    this.ws = ws;
    this.url = url;
    this.live = false;
    ws.onopen = () => {
      const hello = { type: "hello", v: VERSION, token: this.token(), client: CLIENT };
      if (this.cursor) hello.cursor = this.cursor; // absent: the device's stored cursor
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (event) => {
      if (ws === this.ws) this.receive(JSON.parse(event.data));
    };
    ws.onclose = (event) => {
      if (ws === this.ws) this.closed(event.code);
    };
  }

  receive(frame) {
    switch (frame.type) {
      case "welcome": this.welcomed(frame); break;
      case "msg":
        if (frame.device === this.device()) this.settle(frame.cid); // stored: our own copy came back
        break;
      case "cursor": this.offered(frame.cursor); break;
      case "synced":
        this.offered(frame.cursor);
        this.state("online");
        break;
      case "ack": this.settle(frame.cid); break;
      case "moved": this.moved = frame; break;
      case "error": this.failed(frame); break;
      default: break;
    }
    this.onFrame(frame);
  }

  welcomed(frame) {
    this.live = true;
    this.node = frame.node;
    this.backoff = FIRST_BACKOFF_MS;
    this.avoid = null;
    if (frame.limits?.dedup_window_s) this.dedupWindowMs = frame.limits.dedup_window_s * 1000;
    const beat = Math.max(1, (frame.limits?.heartbeat_s ?? 25) * 0.8) * 1000;
    const pinger = setInterval(() => this.send({ type: "ping", ts: Date.now() }), beat);
    this.timers.add(pinger);
    if (typeof frame.cursor === "string") this.keep(frame.cursor);
    this.state("syncing");
    for (const send of this.pending.values()) this.resend(send);
  }

  /** A cursor frame or `synced`: every frame before it has been handled (receive runs them in
   *  order), so it is ours now; ack it so the node stores it and tells senders "delivered". */
  offered(cursor) {
    if (typeof cursor !== "string" || !cursor) return;
    this.keep(cursor);
    this.send({ type: "ack", cursor });
  }

  keep(cursor) {
    if (cursor === this.cursor) return;
    this.cursor = cursor;
    this.onCursor(cursor);
  }

  failed(error) {
    const frame = error.ref ? this.pending.get(error.ref) : null;
    if (error.code === "internal") {
      this.later(() => { for (const send of this.pending.values()) this.resend(send); }, 1000);
    } else if (frame && error.retryable) {
      this.later(() => this.resend(frame), error.retry_after_ms ?? 1000);
    } else if (frame) {
      this.settle(error.ref);
    }
  }

  closed(code) {
    const wasLive = this.live;
    this.ws = null;
    this.live = false;
    this.clearTimers();
    if (this.stopped) return;
    const moved = this.moved;
    this.moved = null;
    if (code === 4010 || moved) {
      // draining: go where the node said at once; told to ask discovery instead, ask it after a short
      // jitter, avoiding this node (placement may not have heard of the drain yet)
      this.state("moving", { to: moved && moved.node ? moved.node.id : null });
      this.avoid = this.url;
      if (moved && moved.node) {
        this.nodes = urlsOf(moved);
        this.connect();
      } else {
        this.nodes = [];
        this.later(() => this.connect(), 100 + Math.random() * 400);
      }
    } else if (AUTH_CLOSES.has(code)) {
      this.stop();
      this.onAuthLost(code);
    } else if (code === 1001) {
      this.nodes = [];
      this.avoid = this.url;
      this.later(() => this.connect(), 100 + Math.random() * 400);
    } else {
      if (wasLive) { this.nodes = []; this.avoid = this.url; }
      this.retry(code === 4029 ? MAX_BACKOFF_MS : 0);
    }
  }

  retry(atLeast = 0) {
    const delay = Math.max(atLeast, this.backoff * (0.5 + Math.random()));
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    this.state("reconnecting", { inMs: delay });
    this.later(() => this.connect(), delay);
  }
}
