"""Push settings over HTTP: a device's FCM token, per-user mute and privacy, per-conversation mute.

A device has at most one token (registering again replaces it); only the device's own user can set
or remove it. ``hide_text`` makes notifications say "New message" instead of showing the text.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from parley.api import validation as v
from parley.api.conversations import member_conversation
from parley.api.http import STORE, authed, body_of, json, now_ms

from parley.auth import Claims
from parley.errors import BadRequest, NotFound
from parley.ids import DeviceId
from parley.store import PushPrefs, PushToken

PLATFORMS = ("android", "ios", "web")
# FCM registration tokens: URL-safe base64 with ':' separators, ~150-250 characters in practice
TOKEN_RE = re.compile(r"^[A-Za-z0-9_\-:.]{32,4096}$")


def prefs_json(p: PushPrefs) -> dict[str, Any]:
    return {"muted": p.muted, "hide_text": p.hide_text, "muted_conversations": list(p.muted_convs)}


def flag(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false", code="bad_field", field=name)
    return value


async def own_device(request: web.Request, claims: Claims) -> DeviceId:
    device = DeviceId(v.user_id(request.match_info["device_id"], "device_id"))
    found = await request.app[STORE].get_device(device)
    if found is None or found.user != claims.user:
        raise NotFound("no such device for this user", code="unknown_device", field="device_id")
    return device


async def put_token(request: web.Request) -> web.Response:
    claims = await authed(request)
    device = await own_device(request, claims)
    body = await body_of(request)
    platform, token = body.get("platform"), body.get("token")
    if platform not in PLATFORMS:
        raise BadRequest("platform must be android, ios or web", code="bad_field", field="platform")
    if not isinstance(token, str) or not TOKEN_RE.match(token):
        raise BadRequest("token is not an FCM registration token (32 to 4096 of A-Z a-z 0-9 _ - : .)",
                         code="bad_field", field="token")
    await request.app[STORE].put_push_token(PushToken(claims.user, device, platform, token, now_ms()))
    return json({"device_id": device, "platform": platform})


async def delete_token(request: web.Request) -> web.Response:
    claims = await authed(request)
    device = await own_device(request, claims)
    await request.app[STORE].delete_push_token(claims.user, device)
    return web.Response(status=204)


async def get_settings(request: web.Request) -> web.Response:
    claims = await authed(request)
    return json(prefs_json(await request.app[STORE].push_prefs(claims.user)))


async def patch_settings(request: web.Request) -> web.Response:
    claims = await authed(request)
    body = await body_of(request)
    prefs = await request.app[STORE].set_push_prefs(claims.user, muted=flag(body, "muted"),
                                                    hide_text=flag(body, "hide_text"))
    return json(prefs_json(prefs))


async def mute(request: web.Request) -> web.Response:
    claims = await authed(request)
    conv = await member_conversation(request, claims)
    muted = flag(await body_of(request), "muted")
    if muted is None:
        raise BadRequest("muted is required", code="bad_field", field="muted")
    await request.app[STORE].mute_conversation(claims.user, conv.id, muted)
    return json({"conversation": conv.id, "muted": muted})


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_put("/v1/devices/{device_id}/push-token", put_token)
    r.add_delete("/v1/devices/{device_id}/push-token", delete_token)
    r.add_get("/v1/push/settings", get_settings)
    r.add_patch("/v1/push/settings", patch_settings)
    r.add_put("/v1/conversations/{conv}/mute", mute)
