"""Blocking over HTTP: the caller's block list, blocking and unblocking a user (both idempotent).

A block is one-way in the store and two-way in effect (docs/adr/0015): no DM either way (sends answer
``blocked``), no friend request and no group add between the two, no presence either way. Blocking ends
the pair's friendship and pending requests; unblocking brings none back. Groups both are in stay as they
are, and messages there reach both. The friendship's end is announced to both users' nodes
(``wire.FriendChange``), so a connected sender's next send in the DM is refused and presence stops.
"""

from __future__ import annotations

from aiohttp import web
from parley.api import validation as v
from parley.api.announce import announce_friendship
from parley.api.http import STORE, authed, json
from parley.api.shapes import user_json

from parley.errors import BadRequest, Forbidden, NotFound
from parley.ids import UserId
from parley.store import Store


async def existing_user(store: Store, user: UserId) -> None:
    """404 ``unknown_user`` for no such user or a deleted account."""
    found = await store.get_user(user)
    if found is None or found.deleted:
        raise NotFound("no such user", code="unknown_user")


async def refuse_if_blocked(store: Store, me: UserId, other: UserId, doing: str) -> None:
    """403 ``blocked`` if either of the two blocked the other."""
    if other in await store.blocks_with(me):
        raise Forbidden(f"you cannot {doing}: one of you blocked the other", code="blocked", user_id=other)


async def list_blocks(request: web.Request) -> web.Response:
    claims = await authed(request)
    store = request.app[STORE]
    blocked = await store.blocked_by(claims.user)
    users = await store.get_users(blocked)
    return json({"blocks": [user_json(users[u]) for u in blocked if u in users]})


async def block(request: web.Request) -> web.Response:
    claims = await authed(request)
    other = _other(request, claims.user)
    store = request.app[STORE]
    await existing_user(store, other)
    was = await store.friend_state(claims.user, other)
    await store.block(claims.user, other)
    if was != "none":  # their nodes stop their presence and refuse DM sends at once; a request is gone
        await announce_friendship(request, claims.user, other, False)
    return web.Response(status=204)


async def unblock(request: web.Request) -> web.Response:
    claims = await authed(request)
    other = _other(request, claims.user)
    await request.app[STORE].unblock(claims.user, other)
    return web.Response(status=204)


def _other(request: web.Request, me: UserId) -> UserId:
    other = UserId(v.user_id(request.match_info["user_id"]))
    if other == me:
        raise BadRequest("you cannot block yourself", code="bad_field", field="user_id")
    return other


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/v1/blocks", list_blocks)
    r.add_put("/v1/blocks/{user_id}", block)
    r.add_delete("/v1/blocks/{user_id}", unblock)
