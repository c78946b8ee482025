"""Live-room moderation over HTTP (docs/openapi.yaml, tag ``live``; ADR 0020): time out, ban and lift a user,
slow mode, what is in force, and the audit log (paged). Every route answers 403 ``not_moderator`` to a
caller who does not moderate the room (its owner and moderators, and operators: ``parley.live.moderation.
is_moderator``) and 404 ``unknown_room`` when there is no such room. The work is in
``parley.live.moderation``; this module reads requests and writes answers.
"""

from __future__ import annotations

import time

from aiohttp import web
from parley.api import validation as v
from parley.api.http import SETTINGS, authed, body_of, json
from parley.api.live import ROOMS, room_id

from parley.errors import BadRequest, Forbidden
from parley.live.audit import MAX_PAGE
from parley.live.moderation import Moderation, is_moderator

MODERATION: web.AppKey[Moderation] = web.AppKey("moderation", Moderation)


async def _moderator(request: web.Request) -> tuple[str, str]:
    """(room, the caller's user id) when the caller moderates the room; 403 ``not_moderator`` otherwise."""
    claims, room = await authed(request), room_id(request)
    meta, _ = await request.app[ROOMS].get(room)  # unknown_room
    if not is_moderator(claims, room, request.app[SETTINGS], (meta.owner, *meta.moderators)):
        raise Forbidden("you do not moderate this room", code="not_moderator")
    return room, claims.user


def _number(body: dict[str, object], name: str) -> float:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"{name} must be a number", code="bad_field", field=name)
    return float(value)


async def in_force(request: web.Request) -> web.Response:
    room, _ = await _moderator(request)
    return json(await request.app[MODERATION].in_force(room, time.time()))


async def time_out(request: web.Request) -> web.Response:
    room, me = await _moderator(request)
    user = v.user_id(request.match_info["user_id"])
    until = await request.app[MODERATION].time_out(room, user, me, _number(await body_of(request), "duration_s"),
                                                   time.time())
    return json({"user_id": user, "until": until})


async def ban(request: web.Request) -> web.Response:
    room, me = await _moderator(request)
    await request.app[MODERATION].ban(room, v.user_id(request.match_info["user_id"]), me, time.time())
    return web.Response(status=204)


async def lift(request: web.Request) -> web.Response:
    room, me = await _moderator(request)
    await request.app[MODERATION].lift(room, v.user_id(request.match_info["user_id"]), me, time.time())
    return web.Response(status=204)


async def slow_mode(request: web.Request) -> web.Response:
    room, me = await _moderator(request)
    await request.app[MODERATION].slow_mode(room, _number(await body_of(request), "seconds"), me, time.time())
    return web.Response(status=204)


async def audit_log(request: web.Request) -> web.Response:
    room, _ = await _moderator(request)
    after = v.int_query(request.query.get("after"), "after", low=0, high=2**63 - 1, default=0) or 0
    limit = v.int_query(request.query.get("limit"), "limit", low=1, high=MAX_PAGE, default=50) or 50
    entries = await request.app[MODERATION].audit.page(room, after, limit)
    return json({"entries": entries, "next": entries[-1]["seq"] if len(entries) == limit else None})


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/v1/live/{room}/moderation", in_force)
    r.add_put("/v1/live/{room}/timeouts/{user_id}", time_out)
    r.add_delete("/v1/live/{room}/timeouts/{user_id}", lift)
    r.add_put("/v1/live/{room}/bans/{user_id}", ban)
    r.add_delete("/v1/live/{room}/bans/{user_id}", lift)
    r.add_put("/v1/live/{room}/slow_mode", slow_mode)
    r.add_get("/v1/live/{room}/audit", audit_log)
