// One device's WebSocket to an edge node (docs/protocol.md), kept alive across node failures.
//
// It follows the protocol's reconnect algorithm (§15): hello with the device's cursor; on a drop,
// back off with jitter and get a fresh placement from /v1/place (trying a node other than the one
// that just failed first); on `moved` (the node is draining, close 4010) go to the named node at
// once. Sends stay pending until their `ack` (or their own `msg`) and are resent after a reconnect
// with the same cid, which the node de-duplicates. The cursor only moves forward: the highest of
// `synced.cursor` and the ids received since, so a reconnect misses nothing; the page drops the
// repeats by id.

const CLIENT = "parley-web/1";
const FIRST_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 30000;
const AUTH_CLOSES = new Set([4001, 4002, 4003]);

function urlsOf(placement) {
  const nodes = placement.node ? [placement.node, ...(placement.fallbacks || [])] : [];
  return nodes.map((n) => n.url);
}

function newCid() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return "w" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Connection {
  constructor({ api, token, onFrame, onState, onAuthLost }) {
    Object.assign(this, { api, token, onFrame, onState, onAuthLost });
    this.cursor = 0;
    this.acked = 0;
    this.pending = new Map(); // cid → send frame, until acked
    this.nodes = [];
    this.ws = null;
    this.live = false;
    this.backoff = FIRST_BACKOFF_MS;
    this.stopped = true;
    this.timers = new Set();
  }

  start(cursor, placement) {
    this.stopped = false;
    this.cursor = Math.max(this.cursor, cursor);
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
    this.send(frame);
    return frame.cid;
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
      ws.send(JSON.stringify({ type: "hello", v: 1, token: this.token(), cursor: this.cursor, client: CLIENT }));
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
        this.cursor = Math.max(this.cursor, frame.id);
        this.pending.delete(frame.cid); // stored: our own copy came back
        break;
      case "synced":
        this.cursor = Math.max(this.cursor, frame.cursor);
        this.ackNow();
        this.state("online");
        break;
      case "ack": this.pending.delete(frame.cid); break;
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
    const beat = Math.max(1, (frame.limits?.heartbeat_s ?? 25) * 0.8) * 1000;
    const pinger = setInterval(() => this.send({ type: "ping", ts: Date.now() }), beat);
    const acker = setInterval(() => this.ackNow(), 1000);
    this.timers.add(pinger);
    this.timers.add(acker);
    this.state("syncing");
    for (const send of this.pending.values()) this.send(send);
  }

  ackNow() {
    if (this.cursor > this.acked && this.send({ type: "ack", id: this.cursor })) this.acked = this.cursor;
  }

  failed(error) {
    const frame = error.ref ? this.pending.get(error.ref) : null;
    if (error.code === "internal") {
      this.later(() => { for (const send of this.pending.values()) this.send(send); }, 1000);
    } else if (frame && error.retryable) {
      this.later(() => this.send(frame), error.retry_after_ms ?? 1000);
    } else if (frame) {
      this.pending.delete(error.ref);
    }
  }

  closed(code) {
    const wasLive = this.live;
    this.ws = null;
    this.live = false;
    this.acked = 0;
    this.clearTimers();
    if (this.stopped) return;
    const moved = this.moved;
    this.moved = null;
    if (code === 4010 || moved) {
      // draining: the node named where to go; no backoff
      this.nodes = moved && moved.node ? urlsOf(moved) : [];
      this.state("moving", { to: moved && moved.node ? moved.node.id : null });
      this.connect();
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
