"""Presence over HTTP: reads of the buckets the presence worker keeps in NATS KV (``parley.presence_bus``).

The buckets are opened once at start-up (``run_api``); when the bus fails the answer is 503
``bus_unavailable``, never a guess. A read takes one token per user asked from the account's presence
budget (``RequestBudget.take_presence``, the WebSocket ``presence`` frame's rates) besides its address's.
"""

from __future__ import annotations

from aiohttp import web
from parley.api import validation as v
from parley.api.http import BUDGET, PRESENCE, STORE, authed, json

from parley.errors import BadRequest, Unavailable
from parley.presence_bus import hide_deleted, read_presence


async def presence(request: web.Request) -> web.Response:
    """Online state and last activity of up to 100 users (any users: presence is not secret here), except
    that a user and someone they blocked or who blocked them read each other as never seen, and a deleted
    account reads as never seen."""
    claims = await authed(request)
    raw = [u for u in request.query.get("user_ids", "").split(",") if u]
    if not 1 <= len(raw) <= 100:
        raise BadRequest("user_ids: 1 to 100 user ids, comma-separated", code="bad_field", field="user_ids")
    users = [v.user_id(u, "user_ids") for u in dict.fromkeys(raw)]
    request.app[BUDGET].take_presence(claims.user, len(users))
    buckets = request.app[PRESENCE]
    hidden = await request.app[STORE].blocks_with(claims.user)
    try:
        found = await read_presence(*buckets, users, hidden)
    except Exception as err:
        raise Unavailable(f"presence is unavailable: {err}", code="bus_unavailable") from err
    return json({"presence": await hide_deleted(found, request.app[STORE].get_users)})


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/v1/presence", presence)
