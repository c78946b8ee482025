"""The banned-word lists over HTTP: list, add (in bulk, idempotent) and remove entries of the global list
and of a live room's list, in the ``banned_words`` KV bucket that every node watches (docs/adr/0019).

Who may edit: the global list, operators (``PARLEY_ADMINS``; 403 ``not_operator``); a room's list, whoever
``may_edit_room_list`` says (the room's owner and moderators once live rooms land; operators until then;
403 ``not_moderator``). Reading a list is editing's privilege too: the lists are what evaders would want.
A body is read here up to ``MAX_BODY_BYTES`` (the app's 64 KiB limit is for everything else) and holds at
most ``MAX_BULK`` entries; every entry is checked before anything is written, so a bad one writes none.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue
from parley.api import live
from parley.api.http import NATS, SETTINGS, authed, json

from parley.auth import Claims
from parley.bus import buckets
from parley.errors import BadRequest, Forbidden, Unavailable
from parley.live.banned import BadEntry, Entry, decode, encode, entry_key, list_name

BANNED: web.AppKey[KeyValue] = web.AppKey("banned_words", KeyValue)
MAX_BULK = 5000
MAX_BODY_BYTES = 1024 * 1024
WRITES_AT_ONCE = 64
LIST_WAIT_S = 10.0


def is_operator(request: web.Request, claims: Claims) -> bool:
    return claims.user in request.app[SETTINGS].admin_ids()


async def may_edit_room_list(request: web.Request, claims: Claims, room: str) -> bool:
    """Whether the caller may read and edit ``room``'s list: operators, the live room's owner and its
    moderators (``unknown_room`` when there is no such room)."""
    return is_operator(request, claims) or (await request.app[live.ROOMS].get(room))[0].moderates(claims.user)


async def _editor(request: web.Request) -> str | None:
    """The list the request names (None: the global list), once the caller may edit it."""
    claims = await authed(request)
    room = request.match_info.get("room")
    if room is None:
        if not is_operator(request, claims):
            raise Forbidden("only operators edit the global banned-word list", code="not_operator")
        return None
    room = live.room_id(request)
    if not await may_edit_room_list(request, claims, room):
        raise Forbidden("only the room's owner, its moderators and operators edit its banned words",
                        code="not_moderator", room=room)
    return room


async def _body(request: web.Request) -> dict[str, Any]:
    """The JSON body, up to ``MAX_BODY_BYTES`` (413 ``too_large`` past it, as for any other body)."""
    raw = b""
    while len(raw) <= MAX_BODY_BYTES and not request.content.at_eof():
        if (request.content_length or 0) > MAX_BODY_BYTES:
            break
        raw += await request.content.read(MAX_BODY_BYTES + 1 - len(raw))
    if len(raw) > MAX_BODY_BYTES or (request.content_length or 0) > MAX_BODY_BYTES:
        raise web.HTTPRequestEntityTooLarge(MAX_BODY_BYTES, max(len(raw), request.content_length or 0))
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("request body is not valid JSON", code="bad_json") from None
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object", code="bad_json")
    return data


def _items(body: dict[str, Any], name: str) -> list[Any]:
    items = body.get(name)
    if not isinstance(items, list) or not items:
        raise BadRequest(f"{name} is a non-empty list", code="bad_field", field=name)
    if len(items) > MAX_BULK:
        raise BadRequest(f"at most {MAX_BULK} {name} per request", code="bad_field", field=name, limit=MAX_BULK)
    return items


def _entries(body: dict[str, Any]) -> list[Entry]:
    out = []
    for i, item in enumerate(_items(body, "entries")):
        try:
            out.append(Entry.from_json(item))
        except BadEntry as err:
            raise BadRequest(f"entries[{i}]: {err}", code="bad_field", field="entries", index=i) from None
    return out


def _words(body: dict[str, Any]) -> list[str]:
    words = _items(body, "words")
    for i, word in enumerate(words):
        if not isinstance(word, str) or not word:
            raise BadRequest(f"words[{i}] is a non-empty string", code="bad_field", field="words", index=i)
    return words


async def _in_batches(calls: list[Any]) -> None:
    for i in range(0, len(calls), WRITES_AT_ONCE):
        await asyncio.gather(*(call() for call in calls[i:i + WRITES_AT_ONCE]))


async def _read_list(request: web.Request, name: str) -> list[dict[str, Any]]:
    """Every entry of the list ``name``: as many keys as the stream says it holds (deleted ones included:
    a watch's "caught up" marker can come early on a large list), read by one watch."""
    kv = request.app[BANNED]
    info = await request.app[NATS].jetstream().stream_info(f"KV_{buckets.BANNED_WORDS}",
                                                           subjects_filter=f"$KV.{buckets.BANNED_WORDS}.{name}.*")
    expected = len(info.state.subjects or {})
    if not expected:
        return []
    seen: dict[str, Any] = {}
    watcher = await kv.watch(f"{name}.*")
    try:
        async with asyncio.timeout(LIST_WAIT_S):
            async for update in watcher:
                if update is not None:
                    seen[update.key] = update
                    if len(seen) >= expected:
                        break
    except TimeoutError:
        raise Unavailable("the banned-word list could not be read in time; try again",
                          code="bus_unavailable") from None
    finally:
        await watcher.stop()  # type: ignore[no-untyped-call]
    return [decode(u.value or b"").as_json() for u in seen.values() if u.operation not in (KV_DEL, KV_PURGE)]


async def list_entries(request: web.Request) -> web.Response:
    room = await _editor(request)
    entries = sorted(await _read_list(request, list_name(room)), key=lambda e: e["word"])
    return json({"list": "global" if room is None else "room", "room": room, "entries": entries})


async def add_entries(request: web.Request) -> web.Response:
    room = await _editor(request)
    entries = _entries(await _body(request))
    kv, name = request.app[BANNED], list_name(room)
    await _in_batches([lambda e=e: kv.put(entry_key(name, e.word), encode(e)) for e in entries])
    return json({"added": len(entries)})


async def remove_entries(request: web.Request) -> web.Response:
    room = await _editor(request)
    words = _words(await _body(request))
    kv, name = request.app[BANNED], list_name(room)
    await _in_batches([lambda w=w: kv.delete(entry_key(name, w)) for w in words])
    return json({"removed": len(words)})


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/v1/banned-words", list_entries)
    r.add_post("/v1/banned-words", add_entries)
    r.add_post("/v1/banned-words/remove", remove_entries)
    r.add_get("/v1/banned-words/rooms/{room}", list_entries)
    r.add_post("/v1/banned-words/rooms/{room}", add_entries)
    r.add_post("/v1/banned-words/rooms/{room}/remove", remove_entries)
