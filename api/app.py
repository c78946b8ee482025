"""The HTTP API (aiohttp). Stateless: every request carries its token; state lives in the store.

Errors become ``{"code", "message", ...}`` JSON with the error's HTTP status in one middleware.
docs/openapi.yaml describes every route.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import Any, TypeVar

import aiohttp
import orjson
from aiohttp import web
from nats.js.kv import KeyValue
from parley.api import validation as v

from parley import bus
from parley.auth import Claims, Passwords, issue_token, verify_token
from parley.bus import BusClient
from parley.errors import BadRequest, Forbidden, NotFound, ParleyError, Unauthorized, Unavailable
from parley.ids import (
    ConversationId,
    DeviceId,
    UserId,
    control_subject,
    conversation_of_message,
    dm_conversation,
    dm_members,
    is_group,
    message_subject,
    new_device_id,
    new_session_id,
    new_user_id,
    user_message_filters,
)
from parley.messages import decode_payload
from parley.metrics import ApiMetrics
from parley.presence_bus import open_buckets, read_presence
from parley.runtime import StoreProbe, run_until_stopped, serve, serve_health
from parley.settings import Settings
from parley.store import Conversation, Device, Receipt, Session, Store, StoredMessage, User, open_store

log = logging.getLogger("parley.api")

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STORE: web.AppKey[Store] = web.AppKey("store", Store)
SETTINGS: web.AppKey[Settings] = web.AppKey("settings", Settings)
NATS: web.AppKey[BusClient] = web.AppKey("nats", BusClient)
HTTP: web.AppKey[aiohttp.ClientSession] = web.AppKey("http", aiohttp.ClientSession)
PASSWORDS: web.AppKey[Passwords] = web.AppKey("passwords", Passwords)
PRESENCE: web.AppKey[tuple[KeyValue, KeyValue]] = web.AppKey("presence")
METRICS: web.AppKey[ApiMetrics] = web.AppKey("metrics", ApiMetrics)
HISTORY_MAX = 200
UNREAD_MAX = 100  # a client shows it as "99+"; also how many messages after the mark are looked at
UNREAD_READS = 16  # GET /v1/conversations: conversations whose unread count is read at once


def now_ms() -> int:
    return int(time.time() * 1000)


async def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """Run CPU-heavy work (Argon2 takes ~0.2 s) on a thread, so other requests are not held up."""
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


@web.middleware
async def measured(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Requests by route pattern (never the path itself: it holds ids) and status."""
    began = time.perf_counter()
    response = await handler(request)
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    metrics = request.app[METRICS]
    metrics.requests.labels(route, request.method, str(response.status)).inc()
    metrics.seconds.labels(route).observe(time.perf_counter() - began)
    return response


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ParleyError as err:
        if not err.peer_fault:
            log.warning("%s %s: %s", request.method, request.path, err.message)
        return json(err.as_dict(), status=err.http_status)
    except web.HTTPException as exc:
        if exc.status == 404:
            return json({"code": "not_found", "message": "no such route"}, status=404)
        if exc.status == 413:
            return json({"code": "too_large", "message": "request body is too large"}, status=413)
        if exc.status == 405:
            return json({"code": "method_not_allowed", "message": f"{request.method} is not allowed here"}, 405)
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return json({"code": "internal", "message": "internal error"}, status=500)


async def body_of(request: web.Request) -> dict[str, Any]:
    try:
        data = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise BadRequest("request body is not valid JSON", code="bad_json") from None
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object", code="bad_json")
    return data


async def authed(request: web.Request) -> Claims:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise Unauthorized("send 'Authorization: Bearer <token>'", code="bad_token")
    settings = request.app[SETTINGS]
    claims = verify_token(settings.secret.reveal(), header[7:].strip(), now=int(time.time()))
    session = await request.app[STORE].get_session(claims.session)
    if session is None or session.revoked:
        raise Unauthorized("this session was logged out", code="session_revoked")
    return claims


def user_json(u: User) -> dict[str, Any]:
    return {"id": u.id, "username": u.username, "display_name": u.display_name, "bio": u.bio,
            "created_at": u.created_at}


def message_json(m: StoredMessage) -> dict[str, Any]:
    return {"id": m.id, "prev": m.prev, "conv": m.conv, "from": m.sender, "device": m.device, "cid": m.cid,
            "body": m.body, "ts": m.ts}


def conversation_json(c: Conversation, users: dict[UserId, User]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": c.id,
        "kind": c.kind,
        "members": [user_json(users[m]) for m in c.members if m in users],
        "created_at": c.created_at,
        "last_message": message_json(c.last_message) if c.last_message else None,
    }
    if c.kind == "group":
        out |= {"name": c.name, "roles": dict(c.roles)}
    return out


# ---- accounts and sessions -------------------------------------------------------------------


async def signup(request: web.Request) -> web.Response:
    body = await body_of(request)
    name, password = v.username(body), v.password(body)
    user = User(id=new_user_id(), username=name, display_name=v.display_name(body) or name, created_at=now_ms())
    await request.app[STORE].create_user(user, await off_loop(request.app[PASSWORDS].hash, password))
    return json({"user": user_json(user)}, status=201)


async def login(request: web.Request) -> web.Response:
    body = await body_of(request)
    name, password = v.username(body), v.password(body)
    store, settings = request.app[STORE], request.app[SETTINGS]
    found = await store.user_by_name(name)
    if not await off_loop(request.app[PASSWORDS].verify, found[1] if found else None, password) or found is None:
        raise Unauthorized("wrong username or password", code="bad_credentials")
    user = found[0]
    placement = await _place(request, body.get("region"))  # before any state: no node, no session
    device = await _device_for_login(store, user.id, body)
    session = Session(new_session_id(), user.id, device.id, now_ms(), int(time.time()) + settings.token_ttl_s)
    await store.create_session(session)
    token, expires = issue_token(settings.secret.reveal(), user=user.id, device=device.id, session=session.id,
                                 now=int(time.time()), ttl_s=settings.token_ttl_s)
    return json({"token": token, "expires_at": expires, "user": user_json(user), "device_id": device.id,
                 "cursor": device.cursor, **placement})


async def _device_for_login(store: Store, user: UserId, body: dict[str, Any]) -> Device:
    wanted = v.optional_id(body, "device_id")
    name = v.field(body, "device_name", required=False, max_len=64) or "device"
    if wanted is not None:
        existing = await store.get_device(DeviceId(wanted))
        if existing is None or existing.user != user:
            raise NotFound("no such device for this user", code="unknown_device", field="device_id")
        return existing
    return await store.upsert_device(Device(new_device_id(), user, name, now_ms()))


async def _place(request: web.Request, region: object) -> dict[str, Any]:
    if region is not None and (not isinstance(region, str) or not v.REGION_RE.match(region)):
        raise BadRequest("region: 1 to 32 of a-z 0-9 -", code="bad_field", field="region")
    settings = request.app[SETTINGS]
    url = f"{settings.discovery_url}/v1/place"
    try:
        async with request.app[HTTP].get(url, params={"region": region or settings.region}) as resp:
            data = await resp.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as err:
        raise Unavailable(f"discovery is unreachable: {err}", code="no_node") from err
    if "node" not in data:
        raise Unavailable(data.get("message", "no edge node is available"), code="no_node")
    return {"node": data["node"], "fallbacks": data.get("fallbacks", [])}


async def refresh(request: web.Request) -> web.Response:
    """A new token for the same session and device, so a client never needs the password again
    while its session lives (logout ends it)."""
    claims = await authed(request)
    settings = request.app[SETTINGS]
    token, expires = issue_token(settings.secret.reveal(), user=claims.user, device=claims.device,
                                 session=claims.session, now=int(time.time()), ttl_s=settings.token_ttl_s)
    return json({"token": token, "expires_at": expires})


async def place(request: web.Request) -> web.Response:
    await authed(request)
    return json(await _place(request, request.query.get("region")))


async def announce(request: web.Request, users: Iterable[UserId], event: dict[str, Any]) -> None:
    """Tell the nodes holding these users' devices (their control subjects). The store already has
    the change; a lost announcement only delays it until the devices reconnect."""
    data = orjson.dumps(event)
    try:
        nc = request.app[NATS]
        for user in users:
            await nc.publish(control_subject(user), data)
        await nc.flush(timeout=2)
    except Exception as err:
        log.warning("could not announce %s: %s", event.get("kind"), err)


async def logout(request: web.Request) -> web.Response:
    claims = await authed(request)
    await request.app[STORE].revoke_session(claims.session)
    await request.app[STORE].delete_push_token(claims.user, claims.device)  # no pushes to a logged-out phone
    await announce(request, [claims.user], {"kind": "revoke", "session": claims.session})
    return web.Response(status=204)


# ---- profile, users, devices ---------------------------------------------------------------


async def me(request: web.Request) -> web.Response:
    claims = await authed(request)
    user = await request.app[STORE].get_user(claims.user)
    if user is None:
        raise NotFound("no such user", code="unknown_user")
    return json({"user": user_json(user), "device_id": claims.device})


async def update_me(request: web.Request) -> web.Response:
    claims = await authed(request)
    body = await body_of(request)
    bio = v.field(body, "bio", required=False, max_len=512)
    user = await request.app[STORE].update_user(claims.user, display_name=v.display_name(body), bio=bio)
    return json({"user": user_json(user)})


async def get_user(request: web.Request) -> web.Response:
    await authed(request)
    user = await request.app[STORE].get_user(UserId(v.user_id(request.match_info["user_id"])))
    if user is None:
        raise NotFound("no such user", code="unknown_user")
    return json({"user": user_json(user)})


async def find_user(request: web.Request) -> web.Response:
    await authed(request)
    found = await request.app[STORE].user_by_name(v.username({"username": request.query.get("username")}))
    if found is None:
        raise NotFound("no such user", code="unknown_user")
    return json({"user": user_json(found[0])})


async def devices(request: web.Request) -> web.Response:
    claims = await authed(request)
    listed = await request.app[STORE].list_devices(claims.user)
    return json({"devices": [{"id": d.id, "name": d.name, "created_at": d.created_at, "cursor": d.cursor,
                              "current": d.id == claims.device} for d in listed]})


# ---- friends -----------------------------------------------------------------------------


async def list_friends(request: web.Request) -> web.Response:
    claims = await authed(request)
    store = request.app[STORE]
    rows = await store.list_friends(claims.user)
    users = await store.get_users([uid for uid, _ in rows])
    out: dict[str, list[dict[str, Any]]] = {"friends": [], "incoming": [], "outgoing": []}
    for uid, state in rows:
        if uid in users:
            out["friends" if state == "friends" else state].append(user_json(users[uid]))
    return json(out)


async def add_friend(request: web.Request) -> web.Response:
    claims = await authed(request)
    other = UserId(v.user_id((await body_of(request)).get("user_id")))
    if other == claims.user:
        raise BadRequest("you cannot befriend yourself", code="bad_field", field="user_id")
    store = request.app[STORE]
    if await store.get_user(other) is None:
        raise NotFound("no such user", code="unknown_user")
    before = await store.friend_state(claims.user, other)
    state = await store.add_friend(claims.user, other)
    if state == "friends" and before != "friends":  # their nodes start following each other's presence
        await announce_friendship(request, claims.user, other, True)
    return json({"user_id": other, "state": state}, status=200)


async def remove_friend(request: web.Request) -> web.Response:
    claims = await authed(request)
    other = UserId(v.user_id(request.match_info["user_id"]))
    store = request.app[STORE]
    was = await store.friend_state(claims.user, other)
    await store.remove_friend(claims.user, other)
    if was == "friends":
        await announce_friendship(request, claims.user, other, False)
    return web.Response(status=204)


async def announce_friendship(request: web.Request, a: UserId, b: UserId, friends: bool) -> None:
    await announce(request, [a], {"kind": "friend", "user_id": b, "friends": friends})
    await announce(request, [b], {"kind": "friend", "user_id": a, "friends": friends})


async def presence(request: web.Request) -> web.Response:
    """Online state and last activity of up to 100 users (any users: presence is not secret here)."""
    await authed(request)
    raw = [u for u in request.query.get("user_ids", "").split(",") if u]
    if not 1 <= len(raw) <= 100:
        raise BadRequest("user_ids: 1 to 100 user ids, comma-separated", code="bad_field", field="user_ids")
    users = [v.user_id(u, "user_ids") for u in dict.fromkeys(raw)]
    buckets = request.app[PRESENCE]
    try:
        found = await read_presence(*buckets, users)
    except Exception as err:
        raise Unavailable(f"presence is unavailable: {err}", code="bus_unavailable") from err
    return json({"presence": found})


# ---- conversations and history ---------------------------------------------------------------


async def list_conversations(request: web.Request) -> web.Response:
    claims = await authed(request)
    store = request.app[STORE]
    # Read the archiver's floor before the store: the store then holds at least everything up to it.
    archived = await bus.archived_through(request.app[NATS], request.app[SETTINGS])
    convs = await store.list_conversations(claims.user)
    tail = await _tail_from_stream(request, claims.user, convs, archived)
    convs = _with_latest(convs, tail)
    users = await store.get_users(sorted({m for c in convs for m in c.members}))
    gate = asyncio.Semaphore(UNREAD_READS)  # a user in thousands of conversations: a few reads at a time

    async def unread(conv: Conversation) -> tuple[int, int]:
        async with gate:
            return await _unread(store, claims.user, conv, tail.get(conv.id, []))

    marks = await asyncio.gather(*(unread(c) for c in convs))
    return json({"conversations": [conversation_json(c, users) | {"read": read, "unread": unread}
                                   for c, (read, unread) in zip(convs, marks, strict=True)]})


async def _unread(store: Store, user: UserId, conv: Conversation, tail: list[StoredMessage]) -> tuple[int, int]:
    """The user's read mark in ``conv`` and how many messages of others lie above it: counted among
    the newest ``UNREAD_MAX`` messages after the mark (store and unarchived tail), so at most ``UNREAD_MAX``;
    no history is read when the conversation's last message is not above the mark."""
    mine = next((r for r in await store.receipts(conv.id) if r.user == user), None)
    read = mine.read if mine else 0
    if conv.last_message is None or conv.last_message.id <= read:
        return read, 0
    rows = await store.history(conv.id, before=None, after=read, limit=UNREAD_MAX, newest_first=True)
    after = {m.id: m for m in rows} | {m.id: m for m in tail if m.id > read}
    newest = sorted(after.values(), key=lambda m: m.id, reverse=True)[:UNREAD_MAX]
    return read, min(UNREAD_MAX, sum(1 for m in newest if m.sender != user))


async def open_dm(request: web.Request) -> web.Response:
    claims = await authed(request)
    other = UserId(v.user_id((await body_of(request)).get("user_id")))
    store = request.app[STORE]
    if other == claims.user:
        raise BadRequest("a conversation needs another user", code="bad_field", field="user_id")
    if await store.get_user(other) is None:
        raise NotFound("no such user", code="unknown_user")
    if await store.friend_state(claims.user, other) != "friends":
        raise Forbidden("you can only message friends", code="not_friends")
    conv_id = dm_conversation(claims.user, other)
    await store.open_conversation(Conversation(conv_id, "dm", tuple(sorted((claims.user, other))), now_ms()))
    conv = await store.get_conversation(conv_id)
    assert conv is not None
    users = await store.get_users(list(conv.members))
    return json({"conversation": conversation_json(conv, users)}, status=200)


async def member_conversation(request: web.Request, claims: Claims) -> Conversation:
    """The conversation of the URL, if it exists and the caller is a member (404 / 403 otherwise)."""
    conv_id = request.match_info["conv"]
    members = dm_members(conv_id)
    if members is None and not is_group(conv_id):
        raise NotFound("no such conversation", code="unknown_conversation")
    if members is not None and claims.user not in members:
        raise Forbidden("you are not a member of this conversation", code="not_member")
    conv = await request.app[STORE].get_conversation(ConversationId(conv_id))
    if conv is None:
        raise NotFound("no such conversation", code="unknown_conversation")
    if claims.user not in conv.members:
        raise Forbidden("you are not a member of this conversation", code="not_member")
    return conv


async def history(request: web.Request) -> web.Response:
    claims = await authed(request)
    conv = await member_conversation(request, claims)
    q = request.query
    limit = v.int_query(q.get("limit"), "limit", low=1, high=HISTORY_MAX, default=50)
    before = v.int_query(q.get("before"), "before", low=0, high=2**53 - 1, default=None)
    after = v.int_query(q.get("after"), "after", low=0, high=2**53 - 1, default=None)
    order = q.get("order", "desc" if after is None else "asc")
    if order not in ("asc", "desc"):
        raise BadRequest("order must be asc or desc", code="bad_field", field="order")
    assert limit is not None
    newest_first = order == "desc"
    archived = await bus.archived_through(request.app[NATS], request.app[SETTINGS])  # before the store read
    rows = await request.app[STORE].history(conv.id, before=before, after=after, limit=limit + 1,
                                            newest_first=newest_first)
    rows = await _with_unarchived(request, conv.id, rows, archived, before=before, after=after,
                                  newest_first=newest_first)
    page, more = rows[:limit], len(rows) > limit
    return json({"messages": [message_json(m) for m in page], "more": more})


async def receipts(request: web.Request) -> web.Response:
    """Each member's delivered and read marks (members without any are listed with zeros)."""
    conv = await member_conversation(request, await authed(request))
    saved = {r.user: r for r in await request.app[STORE].receipts(conv.id)}
    rows = [saved.get(m, Receipt(conv.id, m)) for m in conv.members]
    return json({"receipts": [{"user_id": r.user, "delivered": r.delivered, "read": r.read} for r in rows]})


async def _with_unarchived(
    request: web.Request, conv: ConversationId, rows: list[StoredMessage], archived: int, *,
    before: int | None, after: int | None, newest_first: bool,
) -> list[StoredMessage]:
    """Add messages the stream holds but the archiver had not written when the store was read, so
    history is never behind what devices were sent."""
    nc, settings = request.app[NATS], request.app[SETTINGS]
    first, last = await bus.stream_bounds(nc, settings)
    start = max(archived + 1, first, (after or 0) + 1)
    end = min(last, (before if before is not None else 2**53) - 1)
    if start > end:
        return rows
    tail = await bus.read_stream(nc.jetstream(), settings, [message_subject(conv)], start=start, end=end)
    extra = [decode_payload(seq, conv, data) for seq, _, data in tail]
    merged = {m.id: m for m in rows} | {m.id: m for m in extra}
    return sorted(merged.values(), key=lambda m: m.id, reverse=newest_first)


async def _tail_from_stream(
    request: web.Request, user: UserId, convs: list[Conversation], archived: int
) -> dict[ConversationId, list[StoredMessage]]:
    """Messages of these conversations the archiver had not written when the store was read, from the
    stream's tail, per conversation in id order."""
    nc, settings = request.app[NATS], request.app[SETTINGS]
    first, last = await bus.stream_bounds(nc, settings)
    start = max(archived + 1, first)
    if start > last:
        return {}
    groups = [c.id for c in convs if c.kind == "group"]
    tail = await bus.read_stream(nc.jetstream(), settings, user_message_filters(user, groups), start=start, end=last)
    out: dict[ConversationId, list[StoredMessage]] = {}
    for seq, subject, data in tail:
        conv = conversation_of_message(subject)
        out.setdefault(conv, []).append(decode_payload(seq, conv, data))
    return out


def _with_latest(convs: list[Conversation], tail: dict[ConversationId, list[StoredMessage]]) -> list[Conversation]:
    """Last messages from the unarchived tail; most recently active first."""
    updated = [replace(c, last_message=tail[c.id][-1] if tail.get(c.id) else c.last_message) for c in convs]
    return sorted(updated, key=lambda c: c.last_message.id if c.last_message else 0, reverse=True)


def make_app(settings: Settings, store: Store, nc: BusClient) -> web.Application:
    app = web.Application(middlewares=[measured, errors], client_max_size=64 * 1024)
    app[SETTINGS], app[STORE], app[NATS] = settings, store, nc
    app[METRICS] = ApiMetrics()
    app[PASSWORDS] = Passwords(settings.argon2_time_cost, settings.argon2_memory_kib)

    async def http_client(app: web.Application) -> Any:
        app[HTTP] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        yield
        await app[HTTP].close()

    app.cleanup_ctx.append(http_client)
    r = app.router
    r.add_post("/v1/signup", signup)
    r.add_post("/v1/login", login)
    r.add_post("/v1/logout", logout)
    r.add_post("/v1/refresh", refresh)
    r.add_get("/v1/place", place)
    r.add_get("/v1/me", me)
    r.add_patch("/v1/me", update_me)
    r.add_get("/v1/devices", devices)
    r.add_get("/v1/users", find_user)
    r.add_get("/v1/users/{user_id}", get_user)
    r.add_get("/v1/friends", list_friends)
    r.add_post("/v1/friends", add_friend)
    r.add_delete("/v1/friends/{user_id}", remove_friend)
    r.add_get("/v1/presence", presence)
    r.add_get("/v1/conversations", list_conversations)
    r.add_post("/v1/conversations", open_dm)
    r.add_get("/v1/conversations/{conv}/messages", history)
    r.add_get("/v1/conversations/{conv}/receipts", receipts)
    from parley.api import groups, push
    from parley.api import web as web_client

    groups.add_routes(r)
    push.add_routes(r)
    web_client.add_routes(r)
    return app


async def run_api(settings: Settings) -> None:
    store = open_store(settings)
    await store.migrate()
    nc = await bus.connect(settings, "api")
    app = make_app(settings, store, nc)
    app[PRESENCE] = await open_buckets(nc.jetstream(), settings)
    probe = StoreProbe(store, registry=app[METRICS].registry)
    probe.start()
    serve_health(app, ready=lambda: nc.is_connected and probe.ok, registry=app[METRICS].registry)
    runner = await serve(app, settings.api_host, settings.api_port)
    log.info("api on http://%s:%s", settings.api_host, settings.api_port)
    try:
        await run_until_stopped()
    finally:
        await probe.stop()
        await runner.cleanup()
        await nc.close()
        await store.close()
