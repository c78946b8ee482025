"""Accounts and sessions over HTTP: signup, login, refresh, logout, placement on an edge node, the
caller's profile, other users' profiles, the caller's devices.

Invariants: a login places the caller on a node *before* it creates any state, so a login that fails for
want of a node leaves no device or session behind; a token is only as good as its session (``authed``),
so logout revokes the session, drops the device's push token and tells the nodes to close its sockets
(``revocations``); a session lives ``session_lifetime_s`` from its login, and no token outlives it.
Password hashing and checking run off the event loop on a bounded pool (Argon2 is slow on purpose), and
only after the brute-force limits (``api/limits.py``) allowed the attempt.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
from aiohttp import web
from parley.api import validation as v
from parley.api.announce import announce_profile
from parley.api.http import (
    BUDGET,
    HASHING,
    HTTP,
    LIMITS,
    SETTINGS,
    STORE,
    authed,
    authed_session,
    body_of,
    json,
    now_ms,
)
from parley.api.revocations import REVOCATIONS
from parley.api.shapes import user_json

from parley.auth import issue_token, token_ttl
from parley.errors import BadRequest, NotFound, Unauthorized, Unavailable
from parley.ids import DeviceId, UserId, new_device_id, new_session_id, new_user_id
from parley.store import Device, Session, Store, User


async def signup(request: web.Request) -> web.Response:
    limits = request.app[LIMITS]
    by_address = [(limits.signup_address, request.app[BUDGET].address(request))]
    await limits.check(by_address)
    body = await body_of(request)
    name, password = v.username(body), v.password(body)
    display_name = v.display_name(body) or name
    await limits.count(by_address)  # every well-formed attempt, taken or not
    user = User(id=new_user_id(), username=name, display_name=display_name, created_at=now_ms())
    await request.app[STORE].create_user(user, await request.app[HASHING].hash(password))
    return json({"user": user_json(user)}, status=201)


async def login(request: web.Request) -> web.Response:
    body = await body_of(request)
    name, password = v.username(body), v.password(body)
    limits = request.app[LIMITS]
    attempt = [(limits.login_account, name), (limits.auth_address, request.app[BUDGET].address(request))]
    await limits.check(attempt)  # before any hashing: a locked-out guess costs no Argon2
    store, settings = request.app[STORE], request.app[SETTINGS]
    found = await store.user_by_name(name)
    if not await request.app[HASHING].verify(found[1] if found else None, password) or found is None:
        await limits.count(attempt)
        raise Unauthorized("wrong username or password", code="bad_credentials")
    user, hashing = found[0], request.app[HASHING]
    if hashing.needs_rehash(found[1]):  # PARLEY_ARGON2_* changed since it was hashed
        await store.set_password_hash(user, await hashing.hash(password))
    placement = await _place(request, body.get("region"))  # before any state: no node, no session
    device = await _device_for_login(store, user.id, body)
    now = int(time.time())
    session = Session(new_session_id(), user.id, device.id, now_ms(), now + settings.session_lifetime_s)
    await store.create_session(session)
    token, expires = issue_token(settings.secret.reveal(), user=user.id, device=device.id, session=session.id,
                                 now=now, ttl_s=token_ttl(session, now=now, ttl_s=settings.token_ttl_s))
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
    """The node (and fallbacks) discovery picks in the region; 503 ``no_node`` when it has none."""
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
    """A new token for the same session and device, so a client needs the password again only when its
    session ends: logged out, or past its absolute lifetime (no token outlives its session). Refused tokens
    count as failures of the address."""
    limits = request.app[LIMITS]
    by_address = [(limits.auth_address, request.app[BUDGET].address(request))]
    await limits.check(by_address)
    try:
        claims, session = await authed_session(request)
    except Unauthorized:
        await limits.count(by_address)
        raise
    settings, now = request.app[SETTINGS], int(time.time())
    token, expires = issue_token(settings.secret.reveal(), user=claims.user, device=claims.device,
                                 session=claims.session, now=now,
                                 ttl_s=token_ttl(session, now=now, ttl_s=settings.token_ttl_s))
    return json({"token": token, "expires_at": expires})


async def place(request: web.Request) -> web.Response:
    await authed(request)
    return json(await _place(request, request.query.get("region")))


async def logout(request: web.Request) -> web.Response:
    claims = await authed(request)
    await request.app[STORE].revoke_session(claims.session)
    await request.app[STORE].delete_push_token(claims.user, claims.device)  # no pushes to a logged-out phone
    await request.app[REVOCATIONS].announce(claims.user, [claims.session])  # retried until NATS takes it
    return web.Response(status=204)


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
    name = v.display_name(body)
    user = await request.app[STORE].update_user(claims.user, display_name=name, bio=bio)
    if name is not None or bio is not None:  # the pages that show the name show the new one at once
        await announce_profile(request, user)
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


def add_routes(r: web.UrlDispatcher) -> None:
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
