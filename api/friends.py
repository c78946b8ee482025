"""Friends over HTTP: the caller's friends and pending requests, sending or accepting a request,
unfriending or withdrawing.

Friendship is mutual: each side asks once (the second ask makes them ``friends``). Every change (a request,
an acceptance, a decline or withdrawal, an unfriend) is announced to both users' nodes, which send their
devices a ``friend`` frame; only a change into or out of ``friends`` makes them start or stop following
each other's presence. A request between two users where one
blocked the other is refused (``blocked``, api/blocks.py); a deleted account is ``unknown_user``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from parley.api import validation as v
from parley.api.announce import announce_friend_state
from parley.api.blocks import existing_user, refuse_if_blocked
from parley.api.http import STORE, authed, body_of, json
from parley.api.shapes import user_json

from parley.errors import BadRequest
from parley.ids import UserId


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
    await existing_user(store, other)
    await refuse_if_blocked(store, claims.user, other, "send a friend request")
    before = await store.friend_state(claims.user, other)
    state = await store.add_friend(claims.user, other)
    if state != before:  # their devices hear of it; friends: their nodes follow each other's presence
        await announce_friend_state(request, claims.user, other, state)
    return json({"user_id": other, "state": state}, status=200)


async def remove_friend(request: web.Request) -> web.Response:
    claims = await authed(request)
    other = UserId(v.user_id(request.match_info["user_id"]))
    store = request.app[STORE]
    was = await store.friend_state(claims.user, other)
    await store.remove_friend(claims.user, other)
    if was != "none":  # an unfriend, a declined or a withdrawn request
        await announce_friend_state(request, claims.user, other, "none")
    return web.Response(status=204)


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/v1/friends", list_friends)
    r.add_post("/v1/friends", add_friend)
    r.add_delete("/v1/friends/{user_id}", remove_friend)
