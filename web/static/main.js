// The page's controller: logging in, loading conversations and friends over HTTP, and handling
// the WebSocket's frames (docs/protocol.md). A tab is a device: its token, device id and cursor
// live in sessionStorage (per tab, kept across a reload), so two tabs of one user are two devices
// that the server keeps in sync.
//
// Message ids are ordered within a conversation only (protocol v2, §3): they are compared only
// with ids of the same conversation; the conversation list is ordered by the last message's `ts`.

import { isAction, stampStored } from "./actions.js";
import { Api, ApiError } from "./api.js";
import { Attacher, withFiles } from "./attach.js";
import { imagesOf, shortText } from "./attachmodel.js";
import { Connection } from "./connection.js";
import { applyFriend, applyProfile, FriendEvents } from "./events.js";
import { GroupAdmin } from "./groupadmin.js";
import * as daily from "./daily.js";
import { Live } from "./live.js";
import { lookUpOriginals } from "./originals.js";
import { roomFrom } from "./livemodel.js";
import { Conversation, FrameBudget, lastSeen, presenceChunks } from "./model.js";
import { Profile } from "./profile.js";
import * as view from "./view.js";
import { showImage } from "./viewer.js";

const $ = view.$;
const PAGE = 50;
const TYPING_EVERY_MS = 1500;

const chat = {
  session: null, // {token, expires_at, device_id, user}
  convs: new Map(), // id → Conversation
  users: new Map(), // id → user
  presence: new Map(), // id → {online, last_active_at}
  friends: { friends: [], incoming: [], outgoing: [] },
  selected: null,
  orphans: [], // msgs of conversations not listed yet
  listedCursor: "", // the cursor of the last conversation listing: where a new device starts
  typingSent: { conv: null, at: 0 },
  composing: null, // {mode: "reply" | "edit", conv, target, from, body} while replying or editing
  actionCids: new Set(), // our edits, deletes and reactions not answered yet
};

const api = new Api(() => chat.session?.token ?? null);
// One Connection per session: its pending sends, cursor and acks belong to that user and device
// only, so a logout drops them with it and the next login starts clean.
let conn = null;
let clockOffset = 0; // moved only by the test hooks (testing, below)
// Attachments (attach.js): the composer's files; a thumbnail opens the viewer on the conversation's images.
const attach = new Attacher({
  token: () => chat.session?.token ?? null,
  conv: () => chat.selected,
  open: (convId, attId, from) => showImage(imagesOf(chat.convs.get(convId)?.shown() || []), attId, convId, from),
});

// The live room view (live.js): one room at a time, on the same WebSocket.
const live = new Live({
  api,
  send: (frame) => conn?.send(frame) ?? false,
  me: () => chat.session?.user.id,
  user: (id) => chat.users.get(id),
  learn: (user) => chat.users.set(user.id, user),
  onOpen: () => { chat.selected = null; renderAll(); },
});

function newConnection() {
  const c = new Connection({
    api,
    token: () => chat.session.token,
    device: () => chat.session.device_id,
    now: () => Date.now() + clockOffset,
    onFrame: (frame) => { if (c === conn) handle(frame); },
    onState: (info) => { if (c === conn) { view.showConnection(info); daily.connectionState(info); } },
    onAuthLost: () => { if (c === conn) endSession("Your session ended; please log in again."); },
    onCursor: (cursor) => { if (c === conn) saveCursor(cursor); },
  });
  return c;
}

// For the browser tests: testhooks.js puts this on window (served only with PARLEY_WEB_TEST_HOOKS on).
export const testing = {
  get conn() { return conn; },
  get live() { return live; },
  advanceClock(ms) { clockOffset += ms; },
  askPresence(users) { askPresence(users); },
  presenceKnown(users) { return users.filter((u) => chat.presence.has(u)).length; },
};

// ---- session ---------------------------------------------------------------------------------

function saveSession(s) {
  chat.session = s;
  sessionStorage.setItem("parley.session", JSON.stringify(s));
  sessionStorage.setItem(`parley.device.${s.user.username}`, s.device_id);
}

// The device's cursor: the newest one the node offered and the page handled, sent back as
// hello.cursor after a reload. Kept per device, so another user's login in this tab never sends it.
function cursorKey() {
  return `parley.cursor.${chat.session.device_id}`;
}

function saveCursor(cursor) {
  if (chat.session) sessionStorage.setItem(cursorKey(), cursor);
}

function loadCursor() {
  return sessionStorage.getItem(cursorKey()) || chat.session.cursor || "";
}

function loadSession() {
  try {
    return JSON.parse(sessionStorage.getItem("parley.session") || "null");
  } catch (err) {
    return null;
  }
}

async function login(username, password) {
  const device = sessionStorage.getItem(`parley.device.${username}`);
  const fields = { username, password, device_name: "web browser" };
  let r;
  try {
    r = await api.login(device ? { ...fields, device_id: device } : fields);
  } catch (err) {
    if (err.code !== "unknown_device") throw err;
    r = await api.login(fields);
  }
  // r.cursor: the device's stored cursor ("" for a new device: it starts from the conversation
  // listing's cursor, and older messages come by paging over HTTP)
  saveSession({ token: r.token, expires_at: r.expires_at, device_id: r.device_id, user: r.user,
                cursor: r.cursor || "" });
  return r;
}

function endSession(message) {
  if (conn) conn.stop();
  conn = null;
  view.showConnection({ state: "offline" });
  clearTimeout(chat.refreshTimer);
  clearInterval(chat.ticker);
  sessionStorage.removeItem("parley.session");
  chat.session = null;
  chat.convs.clear();
  chat.users.clear();
  chat.presence.clear();
  chat.friends = { friends: [], incoming: [], outgoing: [] };
  chat.orphans = [];
  chat.listedCursor = "";
  chat.selected = null;
  chat.synced = false;
  chat.typingSent = { conv: null, at: 0 };
  attach.reset();
  live.reset();
  groupAdmin.reset();
  $("app").hidden = true;
  $("auth").hidden = false;
  $("auth-error").textContent = message || "";
  $("auth-username").focus();
}

function scheduleRefresh() {
  const ms = Math.max(10000, (chat.session.expires_at - 300) * 1000 - Date.now());
  chat.refreshTimer = setTimeout(async () => {
    try {
      const r = await api.refresh();
      saveSession({ ...chat.session, token: r.token, expires_at: r.expires_at });
      scheduleRefresh();
    } catch (err) {
      if (err.status === 401) endSession("Your session ended; please log in again.");
      else chat.refreshTimer = setTimeout(scheduleRefresh, 30000);
    }
  }, Math.min(ms, 2 ** 31 - 1));
}

async function start(placement) {
  $("auth").hidden = true;
  $("app").hidden = false;
  $("me-name").textContent = chat.session.user.display_name || chat.session.user.username;
  chat.users.set(chat.session.user.id, chat.session.user);
  profile.start(chat.session.user);
  await Promise.all([loadFriends(), loadConversations(), groupAdmin.start()]);
  if (conn) conn.stop();
  conn = newConnection();
  chat.synced = false;
  // a device with no cursor yet starts from what the listing showed ("from now", protocol §8)
  conn.start(loadCursor() || chat.listedCursor || "", placement);
  scheduleRefresh();
  chat.ticker = setInterval(tick, 1000);
  route();
}

/** The page's address names a live room (`#live/<room>` or `?live=<room>`): open it. */
function route() {
  const room = roomFrom(location.href);
  if (room) live.open(room);
  else if (live.room && !location.hash) live.close();
}

// ---- HTTP data -------------------------------------------------------------------------------

const ctx = {
  get me() { return chat.session?.user.id; },
  get selected() { return chat.selected; },
  presence: chat.presence,
  user: (id) => chat.users.get(id),
  open: (id) => openConversation(id),
  accept: (id) => befriend(id),
  decline: (id) => api.removeFriend(id).then(() => onFriendState(chat.users.get(id), "none")).catch((err) => report(err, "friend-error")),
  message: (id) => messageFriend(id),
  reply: (convId, id) => compose("reply", convId, id),
  edit: (convId, id) => compose("edit", convId, id),
  remove: (convId, id) => sendAction(convId, { kind: "delete", target: id }),
  react: (convId, id, emoji, on) => sendAction(convId, { kind: on ? "react" : "unreact", target: id, emoji }),
};

async function loadFriends() {
  chat.friends = await api.friends();
  for (const list of Object.values(chat.friends)) for (const u of list) chat.users.set(u.id, u);
  view.renderFriends(chat.friends, ctx);
}

// Friend changes come as `friend` frames (events.js): no polling.
const friendEvents = new FriendEvents({ lookup: lookupUser, apply: onFriendState, report });
const groupAdmin = new GroupAdmin({
  api, me: () => ctx.me, friends: () => chat.friends.friends, changed: () => reloadConversations(),
  left: (conv) => { if (chat.selected === conv) chat.selected = null; reloadConversations(); },
});
const profile = new Profile({ api, saved: (user) => {
  chat.session.user = user;
  saveSession(chat.session);
  chat.users.set(user.id, user);
  $("me-name").textContent = user.display_name || user.username;
} });

async function lookupUser(id) {
  if (!chat.users.has(id)) chat.users.set(id, (await api.user(id)).user);
  return chat.users.get(id);
}

function onFriendState(user, state) {
  if (!user) return;
  chat.friends = applyFriend(chat.friends, user, state);
  view.renderFriends(chat.friends, ctx);
  if (state === "friends") askPresence([user.id]);
  renderAll(); // the group panel's friends to add
}

function onProfile(change) {
  applyProfile(chat, change);
  if (change.id === ctx.me) { profile.saved(chat.users.get(ctx.me)); profile.show(chat.users.get(ctx.me)); }
  view.renderFriends(chat.friends, ctx);
  renderAll();
}

async function loadConversations() {
  const { conversations, cursor } = await api.conversations();
  chat.listedCursor = cursor;
  const listed = new Set();
  for (const raw of conversations) {
    listed.add(raw.id);
    for (const u of raw.members) chat.users.set(u.id, u);
    const conv = chat.convs.get(raw.id);
    if (conv) conv.update(conv.loaded ? { ...raw, unread: conv.unread, listed: false } : raw);
    else chat.convs.set(raw.id, new Conversation(raw));
  }
  for (const id of [...chat.convs.keys()]) if (!listed.has(id)) chat.convs.delete(id); // left groups
  if (chat.selected && !chat.convs.has(chat.selected)) chat.selected = null;
  const orphans = chat.orphans;
  chat.orphans = [];
  for (const msg of orphans) if (chat.convs.has(msg.conv)) onMessage(msg);
  renderAll();
}

let reloading = null;
function reloadConversations() {
  // coalesce bursts (group events, several unknown conversations at once)
  reloading ??= loadConversations().catch(report).finally(() => { reloading = null; });
  return reloading;
}

function sortedConvs() {
  // newest activity first; ids of different conversations are not comparable, their ts are
  const ts = (c) => (c.last ? c.last.ts : 0);
  return [...chat.convs.values()].sort((a, b) => ts(b) - ts(a) || a.id.localeCompare(b.id));
}

function renderAll() {
  view.renderConversations(sortedConvs(), ctx);
  const conv = chat.convs.get(chat.selected);
  view.renderHeader(conv, ctx);
  view.renderMessages(conv, ctx);
  view.renderTyping(conv, ctx);
  groupAdmin.render(conv ?? null);
  groupAdmin.markList();
  daily.afterRender(chat.convs.values(), conv, ctx.me, Date.now() + clockOffset);
}

/** Back to the list (a phone's back button): nothing is open, so nothing is marked read. */
function closeConversation() {
  chat.selected = null;
  renderAll();
}

async function openConversation(id) {
  live.close();
  chat.selected = id;
  attach.switchTo(id);
  const conv = chat.convs.get(id);
  daily.opening(conv);
  renderAll();
  daily.opened(id);
  if (!conv.loaded) {
    await loadOlder(conv, true);
    conv.loaded = true;
    await loadReceipts(conv);
  }
  if (chat.selected !== id) return;
  renderAll();
  scrollToEnd();
  markRead(conv);
}

async function loadOlder(conv, newest = false) {
  if (conv.loadingOlder || (!newest && !conv.more)) return;
  conv.loadingOlder = true;
  $("history-state").textContent = "Loading earlier messages…";
  try {
    const oldest = conv.oldestId;
    const params = newest || !oldest ? { limit: PAGE } : { before: oldest, limit: PAGE };
    const r = await api.history(conv.id, params);
    addStored(conv, r.messages);
    conv.more = r.more;
  } catch (err) {
    report(err);
  } finally {
    conv.loadingOlder = false;
    $("history-state").textContent = conv.more ? "" : "Start of the conversation";
  }
}

/** A page from the store: its messages show their state as it is now, so the actions it holds (and
 *  older ones) are not applied again; the rest are applied in chain order. */
function addStored(conv, messages) {
  stampStored(messages, conv.lastId).sort((a, b) => a.id - b.id).forEach((m) => conv.add(m));
  lookUpOriginals(conv, messages, (id, params) => api.history(id, params), renderAll); // a photo's reply: "Photo"
}

async function repairGap(conv, after) {
  // a msg whose prev we do not hold (protocol §7): fetch what lies between
  try {
    const r = await api.history(conv.id, { after, order: "asc", limit: 200 });
    addStored(conv, r.messages);
    renderAll();
  } catch (err) {
    report(err);
  }
}

async function befriend(userId) {
  try {
    const r = await api.addFriend(userId);
    $("friend-status").textContent = r.state === "friends" ? "You are now friends." : "Friend request sent.";
    onFriendState(await lookupUser(userId), r.state); // the frame says the same, when it comes
  } catch (err) {
    report(err, "friend-error");
  }
}

async function messageFriend(userId) {
  try {
    const { conversation } = await api.openDm(userId);
    await loadConversations();
    await openConversation(conversation.id);
  } catch (err) {
    report(err, "friend-error");
  }
}

// ---- frames ----------------------------------------------------------------------------------

function handle(frame) {
  if (live.handle(frame)) return;
  switch (frame.type) {
    case "msg": onMessage(frame); break;
    case "ack": onAck(frame); break;
    case "welcome": onWelcome(frame); break;
    case "synced": onSynced(); break;
    case "receipt": onReceipt(frame); break;
    case "typing": onTyping(frame); break;
    case "presence": onPresence(frame); break;
    case "group": onGroup(frame); break;
    case "friend": friendEvents.handle(frame); break;
    case "user": onProfile(frame.user); break;
    case "error": onError(frame); break;
    default: break;
  }
}

function onMessage(msg) {
  const conv = chat.convs.get(msg.conv);
  if (!conv) { chat.orphans.push(msg); reloadConversations(); return; }
  const gapFrom = conv.loaded && msg.prev && !conv.messages.has(msg.prev) && msg.prev > conv.oldestId
    ? conv.highestBelow(msg.id) : null;
  // the conversation list's unread already has it: compare with the list's own last id, not lastId
  // (our acked sends raise that, and others' older messages can still arrive after them)
  const counted = msg.id <= conv.listedLast;
  if (!conv.wants(msg) && !conv.pending.has(msg.cid)) return; // history: paging fetches it
  if (!conv.add(msg)) return; // already held: a re-sent message is shown once
  conv.typing.delete(msg.from);
  const mine = msg.from === ctx.me;
  if (!mine && !isAction(msg) && msg.id > conv.read && !counted) daily.arrived(msg, conv, ctx);
  if (!mine && !isAction(msg) && msg.id > conv.read && !counted) {
    if (isVisible(conv)) markRead(conv);
    else conv.unread += 1;
  }
  if (gapFrom !== null) repairGap(conv, gapFrom);
  const atEnd = nearEnd();
  renderAll();
  if (isSelected(conv) && (atEnd || mine)) scrollToEnd();
}

function onAck(frame) {
  const conv = chat.convs.get(frame.conv);
  if (conv && conv.pending.has(frame.cid)) {
    // stored; its msg frame may come later (after a sync's backlog): show it as sent meanwhile
    const p = conv.pending.get(frame.cid);
    conv.pending.delete(frame.cid);
    conv.add({ id: frame.id, prev: 0, conv: frame.conv, from: ctx.me, device: chat.session.device_id,
               cid: frame.cid, body: p.body, ts: p.ts, stub: true, attachments: p.attachments });
    renderAll();
  }
}

function onSynced() {
  // (re)connected: ask for everyone's presence, catch up our read mark. Sync brings back only
  // messages: receipts, group events and typing sent while we were away are gone (the node drops a
  // closed link's other frames), so after a reconnect re-read the list and the open ones' receipts.
  if (chat.synced) refetchAfterReconnect();
  chat.synced = true;
  askPresence([...chat.users.keys()].filter((id) => id !== ctx.me), true);
  const conv = chat.convs.get(chat.selected);
  if (conv) markRead(conv);
  for (const [cid, frame] of conn.pending) if (!frame.kind) showPending(frame.conv, cid, frame.body, attach.metas(frame.attachments));
}

async function refetchAfterReconnect() {
  for (const conv of chat.convs.values()) conv.typing.clear();
  loadFriends().catch(report); // friend frames sent while we were away are gone too
  await reloadConversations();
  await Promise.all([...chat.convs.values()].filter((c) => c.loaded).map(loadReceipts));
  renderAll();
}

async function loadReceipts(conv) {
  try {
    const { receipts } = await api.receipts(conv.id);
    for (const r of receipts) {
      if (r.user_id === ctx.me) conv.readUpto(r.read, ctx.me);
      else { conv.mark(r.user_id, "delivered", r.delivered); conv.mark(r.user_id, "read", r.read); }
    }
  } catch (err) {
    report(err);
  }
}

function onReceipt(frame) {
  const conv = chat.convs.get(frame.conv);
  if (!conv) return;
  if (frame.user === ctx.me) {
    if (frame.status === "read") conv.readUpto(frame.upto, ctx.me);
  } else {
    conv.mark(frame.user, frame.status, frame.upto);
  }
  renderAll();
}

function onTyping(frame) {
  const conv = chat.convs.get(frame.conv);
  if (!conv) return;
  if (frame.state === "stop") conv.typing.delete(frame.from);
  else conv.typing.set(frame.from, Date.now() + frame.ttl_ms);
  renderAll();
}

// Presence is asked in chunks of 100 users, paced to the connection's presence budget (the welcome's
// `limits.frames.presence`, protocol §11): a user with many contacts asks the first 500 at once and the
// rest as the budget refills, never refused (a refusal is a strike). `all`: everyone again (a sync).
const asking = { budget: null, queue: [], timer: null };

function onWelcome(frame) {
  asking.budget = new FrameBudget(frame.limits?.frames?.presence, Date.now());
  asking.queue = [];
  clearTimeout(asking.timer);
  asking.timer = null;
}

function askPresence(users, all = false) {
  const queued = all ? [] : asking.queue.flat();
  asking.queue = presenceChunks([...queued, ...users]);
  pacePresence();
}

function pacePresence() {
  if (asking.timer !== null || !asking.budget) return;
  while (asking.queue.length) {
    const users = asking.queue[0];
    const wait = asking.budget.wait(users.length, Date.now());
    if (wait > 0) {
      asking.timer = setTimeout(() => { asking.timer = null; pacePresence(); }, wait);
      return;
    }
    asking.budget.take(users.length, Date.now());
    asking.queue.shift();
    conn?.send({ type: "presence", users });
  }
}

function onPresence(frame) {
  for (const p of frame.users) chat.presence.set(p.user, p);
  renderAll();
  view.renderFriends(chat.friends, ctx);
}

function onGroup(frame) {
  if (frame.event === "left" && chat.selected === frame.conv) chat.selected = null;
  reloadConversations();
}

function onError(frame) {
  if (frame.ref && chat.actionCids.has(frame.ref) && !frame.retryable) {
    chat.actionCids.delete(frame.ref);
    report(new ApiError(400, frame));
  }
  if (frame.ref) {
    for (const conv of chat.convs.values()) {
      if (conv.pending.has(frame.ref) && !frame.retryable) {
        conv.pending.delete(frame.ref);
        renderAll();
        if (!attach.explain(frame)) report(new ApiError(400, frame));
      }
    }
  }
}

// ---- sending, reading, typing ----------------------------------------------------------------

function showPending(convId, cid, body, attachments) {
  const conv = chat.convs.get(convId);
  // a stored copy may be held already (history fetched over HTTP before the send's ack): show it once
  if (conv && !conv.pending.has(cid) && !conv.holdsMine(cid, ctx.me)) conv.pending.set(cid, { cid, body, ts: Date.now(), attachments });
}

// Replies, edits, deletes and reactions (protocol §19): an action is a send with a kind; it shows when
// its msg comes back (applied to its target by the model), a refusal in the status line.
function sendAction(convId, fields) {
  if (!conn) return;
  chat.actionCids.add(conn.sendEntry(convId, fields));
}

function compose(mode, convId, id) {
  const msg = chat.convs.get(convId)?.messages.get(id);
  if (!msg) return;
  chat.composing = { mode, conv: convId, target: id, from: msg.from, body: shortText(msg) };
  const box = $("composer-body");
  if (mode === "edit") box.value = msg.body;
  view.renderComposing(chat.composing, ctx);
  box.focus();
}

function stopComposing() {
  if (chat.composing?.mode === "edit") $("composer-body").value = "";
  chat.composing = null;
  view.renderComposing(null, ctx);
}

/** Sends the composer's text as an edit or a reply when one is being composed; true if it did. */
function sendComposed(conv, body) {
  const c = chat.composing;
  if (!c || c.conv !== conv.id) return false;
  chat.composing = null;
  view.renderComposing(null, ctx);
  if (c.mode === "edit") {
    sendAction(conv.id, { kind: "edit", target: c.target, body });
    $("composer-body").value = "";
    return true;
  }
  const files = attach.take();
  const cid = conn.sendEntry(conv.id, { body, reply_to: c.target, ...withFiles(files) });
  showPending(conv.id, cid, body, files);
  $("composer-body").value = "";
  renderAll();
  scrollToEnd();
  return true;
}

function sendMessage() {
  const box = $("composer-body");
  const body = box.value;
  const conv = chat.convs.get(chat.selected);
  const files = chat.composing?.mode === "edit" ? 0 : attach.count();
  if (!conv || !conn || (!body.trim() && !files)) return;
  if (files && !attach.ready()) return; // still uploading: attach.js says so by the composer
  if (sendComposed(conv, body)) return;
  const sent = attach.take();
  const cid = sent.length ? conn.sendEntry(conv.id, { body, ...withFiles(sent) }) : conn.sendMessage(conv.id, body);
  showPending(conv.id, cid, body, sent);
  box.value = "";
  chat.typingSent = { conv: null, at: 0 };
  renderAll();
  scrollToEnd();
}

function onComposerInput() {
  const conv = chat.selected;
  const text = $("composer-body").value.trim();
  const now = Date.now();
  if (text && (chat.typingSent.conv !== conv || now - chat.typingSent.at > TYPING_EVERY_MS)) {
    if (conn?.send({ type: "typing", conv })) chat.typingSent = { conv, at: now };
  } else if (!text && chat.typingSent.conv === conv) {
    conn?.send({ type: "typing", conv, state: "stop" });
    chat.typingSent = { conv: null, at: 0 };
  }
}

function isSelected(conv) {
  return chat.selected === conv.id;
}

function isVisible(conv) {
  return isSelected(conv) && conv.loaded && document.visibilityState === "visible";
}

function markRead(conv) {
  const upto = conv.lastId;
  if (!isVisible(conv) || upto === 0) return;
  if (upto > conv.read && conn?.send({ type: "read", conv: conv.id, upto })) conv.read = upto;
  conv.unread = 0;
  renderAll();
}

// ---- scrolling and time ----------------------------------------------------------------------

function nearEnd() {
  const s = $("scroller");
  return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
}

function scrollToEnd() {
  const s = $("scroller");
  s.scrollTop = s.scrollHeight;
}

async function onScroll() {
  const conv = chat.convs.get(chat.selected);
  const s = $("scroller");
  if (!conv || !conv.loaded || !conv.more || s.scrollTop > 40) return;
  const fromBottom = s.scrollHeight - s.scrollTop;
  await loadOlder(conv);
  renderAll();
  s.scrollTop = s.scrollHeight - fromBottom; // keep the reader's place
}

function tick() {
  // typing expiry, "last seen … ago", a live refusal's countdown
  live.tick();
  const now = Date.now();
  let changed = false;
  for (const conv of chat.convs.values()) {
    for (const [user, until] of conv.typing) if (until <= now) { conv.typing.delete(user); changed = true; }
  }
  if (changed) renderAll();
  const conv = chat.convs.get(chat.selected);
  if (conv && conv.kind === "dm") {
    const other = conv.others(ctx.me)[0];
    if (other) $("conv-sub").textContent = lastSeen(chat.presence.get(other.id), now);
  }
}

// where it shows: places.js (under its form, or connection trouble in the top bar)
function report(err, place = "composer-error", words = "") {
  daily.report(err, place, words);
}

// ---- wiring ----------------------------------------------------------------------------------

function wire() {
  $("auth-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const username = $("auth-username").value.trim();
    const password = $("auth-password").value;
    const signup = event.submitter?.value === "signup";
    $("auth-error").textContent = signup ? "Creating your account…" : "Logging in…";
    try {
      if (signup) await api.signup(username, password);
      const r = await login(username, password);
      $("auth-error").textContent = "";
      $("auth-password").value = "";
      await start({ node: r.node, fallbacks: r.fallbacks });
    } catch (err) {
      $("auth-error").textContent = err.message;
      daily.authError(err);
    }
  });
  $("logout").addEventListener("click", async () => {
    try { await api.logout(); } catch (err) { /* the session ends here either way */ }
    endSession("");
  });
  $("add-friend").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("friend-name").value.trim();
    try {
      const { user } = await api.findUser(name);
      chat.users.set(user.id, user);
      await befriend(user.id);
      $("friend-name").value = "";
    } catch (err) {
      report(err, "friend-error", err.code === "unknown_user" ? `No user called ${name}.` : "");
    }
  });
  $("new-group").addEventListener("submit", async (event) => {
    event.preventDefault();
    const members = [...document.querySelectorAll("#group-members input:checked")].map((i) => i.value);
    try {
      const { conversation } = await api.createGroup($("group-name").value.trim(), members);
      $("group-name").value = "";
      await loadConversations();
      await openConversation(conversation.id);
    } catch (err) {
      report(err, "group-error");
    }
  });
  $("composer").addEventListener("submit", (event) => { event.preventDefault(); sendMessage(); });
  $("composer-body").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); sendMessage(); }
  });
  $("composer-body").addEventListener("input", onComposerInput);
  $("composer-body").addEventListener("keydown", (event) => { if (event.key === "Escape" && chat.composing) stopComposing(); });
  $("composing-cancel").addEventListener("click", () => { stopComposing(); $("composer-body").focus(); });
  $("scroller").addEventListener("scroll", onScroll);
  attach.wire();
  wireLive();
  document.addEventListener("visibilitychange", () => {
    const conv = chat.convs.get(chat.selected);
    daily.visibility(conv || null);
    if (conv) markRead(conv);
  });
  daily.wireDaily(closeConversation);
}

function wireLive() {
  $("live-join").addEventListener("submit", (event) => {
    event.preventDefault();
    const room = roomFrom($("live-id").value);
    $("live-status").textContent = room ? "" : "That is not a live room's id or link.";
    if (room) { $("live-id").value = ""; live.open(room); }
  });
  $("live-create").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await live.create($("live-new-title").value.trim());
      $("live-new-title").value = "";
      $("live-status").textContent = "";
    } catch (err) {
      $("live-status").textContent = err.message;
    }
  });
  $("live-leave").addEventListener("click", () => live.close());
  $("live-copy").addEventListener("click", () => live.copyLink());
  $("live-unpin").addEventListener("click", () => live.act("unpin", null));
  $("live-meta-form").addEventListener("submit", (event) => { event.preventDefault(); live.saveMeta(); });
  $("live-slow-form").addEventListener("submit", (event) => { event.preventDefault(); live.setSlowMode(); });
  $("live-composer").addEventListener("submit", (event) => { event.preventDefault(); live.sendMessage(); });
  $("live-body").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); live.sendMessage(); }
  });
  window.addEventListener("hashchange", () => { if (chat.session) route(); });
}

async function boot() {
  wire();
  chat.session = loadSession();
  if (!chat.session) { endSession(""); return; }
  try {
    const { user } = await api.me();
    chat.session.user = user;
    await start(null);
  } catch (err) {
    endSession(err.status === 401 ? "Your session ended; please log in again." : err.message);
  }
}

boot();
