"""Live rooms over HTTP (ADR 0018): create, meta (title, description, state), moderators, paged history,
deleting and pinning a message.

Any signed-in user reads a room; its creator owns it. The owner and moderators change its meta, delete
and pin messages; only the owner names or removes moderators. Meta lives in the ``live_rooms`` bucket
(compare-and-set on its revision, retried, so concurrent changes never overwrite each other); every change
is told to the room's viewers as a frame on ``live.evt.<room>`` (``live_meta``, ``live_deleted``,
``live_pinned``), encoded here once. History reads the store, which has every accepted message a moment
after it was accepted (the live archiver); a deleted message stays in it as a tombstone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from parley.api import validation as v
from parley.api.http import NATS, STORE, authed, body_of, json, now_ms

from parley.bus.live import Rooms
from parley.errors import BadRequest, Conflict, NotFound
from parley.ids import new_id
from parley.live.rooms import (
    RoomMeta,
    checked_description,
    checked_state,
    checked_title,
    event_subject,
    is_room_id,
    with_moderator,
)
from parley.protocol import MAX_ID

ROOMS: web.AppKey[Rooms] = web.AppKey("live_rooms", Rooms)
VIEWERS: web.AppKey[KeyValue] = web.AppKey("live_viewers", KeyValue)  # nodes keep each room's total (ADR 0021)
HISTORY_MAX = 200
CAS_TRIES = 5


def room_id(request: web.Request) -> str:
    room = request.match_info["room"]
    if not is_room_id(room):
        raise BadRequest("room is not a valid id (16 characters of a-z 2-7)", code="bad_field", field="room")
    return room


async def tell(request: web.Request, room: str, frame: dict[str, Any]) -> None:
    await request.app[NATS].publish(event_subject(room), orjson.dumps({**frame, "room": room}))


async def change(request: web.Request, room: str, edit: Callable[[RoomMeta], RoomMeta]) -> RoomMeta:
    """Apply ``edit`` to the room's meta (it checks who may) if nobody changed it meanwhile (compare-and-set
    on the bucket's revision); read and tried again when someone did."""
    rooms = request.app[ROOMS]
    for _ in range(CAS_TRIES):
        meta, revision = await rooms.get(room)
        changed = edit(meta)
        try:
            await rooms.kv.update(room, changed.encode(), last=revision)
            return changed
        except KeyWrongLastSequenceError:
            continue
    raise Conflict("the room is changing too fast; try again", code="conflict", room=room)


async def create(request: web.Request) -> web.Response:
    claims = await authed(request)
    body = await body_of(request)
    meta = RoomMeta(id=new_id(), owner=claims.user, title=checked_title(body.get("title")),
                    description=checked_description(body.get("description", "")), created_at=now_ms())
    await request.app[ROOMS].kv.create(meta.id, meta.encode())
    return json(meta.as_dict(), status=201)


async def show(request: web.Request) -> web.Response:
    await authed(request)
    room = room_id(request)
    meta, _ = await request.app[ROOMS].get(room)
    return json({**meta.as_dict(), "viewers": await viewers(request, room)})


async def viewers(request: web.Request, room: str) -> int:
    """The room's viewers across the cluster as a node stored them (0: nobody watches, or not yet told)."""
    try:
        entry = await request.app[VIEWERS].get(room)
    except KeyNotFoundError:
        return 0
    try:
        return max(0, int(entry.value or b"0"))
    except ValueError:
        return 0


async def update(request: web.Request) -> web.Response:
    claims = await authed(request)
    room, body = room_id(request), await body_of(request)
    fields: dict[str, Any] = {}
    if "title" in body:
        fields["title"] = checked_title(body["title"])
    if "description" in body:
        fields["description"] = checked_description(body["description"])
    if "state" in body:
        fields["state"] = checked_state(body["state"])

    def edit(meta: RoomMeta) -> RoomMeta:
        meta.must_moderate(claims.user)
        return dataclasses.replace(meta, **fields)

    meta = await change(request, room, edit)
    await tell(request, room, {"type": "live_meta", "meta": meta.as_dict()})
    return json(meta.as_dict())


async def set_moderator(request: web.Request) -> web.Response:
    claims = await authed(request)
    room, user = room_id(request), v.user_id(request.match_info["user_id"])
    add = request.method == "PUT"
    if add:
        found = await request.app[STORE].get_user(user)  # type: ignore[arg-type]
        if found is None or found.deleted:
            raise NotFound("no such user", code="unknown_user")

    def edit(meta: RoomMeta) -> RoomMeta:
        meta.must_own(claims.user)
        return with_moderator(meta, user, add=add)

    meta = await change(request, room, edit)
    await tell(request, room, {"type": "live_meta", "meta": meta.as_dict()})
    return json(meta.as_dict())


async def history(request: web.Request) -> web.Response:
    await authed(request)
    room = room_id(request)
    await request.app[ROOMS].get(room)  # unknown_room
    limit = v.int_query(request.query.get("limit"), "limit", low=1, high=HISTORY_MAX, default=50)
    before = v.int_query(request.query.get("before"), "before", low=0, high=MAX_ID, default=None)
    assert limit is not None
    rows = await request.app[STORE].live_history(room, before=before, limit=limit)
    messages = [{"id": m.id, "from": m.sender, "cid": m.cid, "body": m.body, "ts": m.ts, "deleted": m.deleted}
                for m in rows]
    return json({"room": room, "messages": messages,
                 "next_before": rows[-1].id if len(rows) == limit else None})


async def delete_message(request: web.Request) -> web.Response:
    claims = await authed(request)
    room, id = room_id(request), message_id(request)
    meta, _ = await request.app[ROOMS].get(room)
    meta.must_moderate(claims.user)
    if not await request.app[STORE].delete_live_message(room, id):
        raise NotFound("no such message in this room (or not stored yet)", code="unknown_message", id=id)
    await tell(request, room, {"type": "live_deleted", "id": id, "by": claims.user})
    return web.Response(status=204)


async def pin(request: web.Request) -> web.Response:
    claims = await authed(request)
    room = room_id(request)
    (await request.app[ROOMS].get(room))[0].must_moderate(claims.user)  # before looking at the body
    id: int | None = None
    if request.method == "PUT":
        raw = (await body_of(request)).get("id")
        if isinstance(raw, float) and raw.is_integer():  # JSON Schema's integer: 7.0 is one
            raw = int(raw)
        if not isinstance(raw, int) or isinstance(raw, bool) or not 1 <= raw <= MAX_ID:
            raise BadRequest(f"id: a message id from 1 to {MAX_ID}", code="bad_field", field="id")
        id = raw
        rows = await request.app[STORE].live_history(room, before=id + 1, limit=1)
        if not rows or rows[0].id != id or rows[0].deleted:
            raise NotFound("no such message in this room (or not stored yet)", code="unknown_message", id=id)

    def edit(meta: RoomMeta) -> RoomMeta:
        meta.must_moderate(claims.user)
        return dataclasses.replace(meta, pinned=id)

    meta = await change(request, room, edit)
    await tell(request, room, {"type": "live_pinned", "id": id, "by": claims.user})
    return json(meta.as_dict())


def message_id(request: web.Request) -> int:
    id = v.int_query(request.match_info["id"], "id", low=1, high=MAX_ID, default=None)
    assert id is not None
    return id


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_post("/v1/live", create)
    r.add_get("/v1/live/{room}", show)
    r.add_patch("/v1/live/{room}", update)
    r.add_put("/v1/live/{room}/moderators/{user_id}", set_moderator)
    r.add_delete("/v1/live/{room}/moderators/{user_id}", set_moderator)
    r.add_get("/v1/live/{room}/messages", history)
    r.add_delete("/v1/live/{room}/messages/{id}", delete_message)
    r.add_put("/v1/live/{room}/pin", pin)
    r.add_delete("/v1/live/{room}/pin", pin)
