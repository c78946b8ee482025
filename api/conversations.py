"""Conversations over HTTP: the caller's conversations with unread counts, opening a DM, a
conversation's history, and its members' receipts.

Invariants:
- History is never behind what devices were sent. The archiver writes the stream into the store a
  little late, so a read takes the archiver's floor (``bus.archived_through``) *before* it reads the
  store, then adds what the stream holds above that floor (the unarchived tail), and fills any hole
  in the store's page from the stream while it holds the messages (``_fill_holes``).
- A DM is only opened between friends (and only sent into between friends, node/membership.py): after
  an unfriend or a block it stays listed and its history readable, but opening it answers 403
  (``not_friends``, or ``blocked``); its id is derived from the two members, so opening it again
  returns the same conversation.
- A page shows each message as it is now (edited, a tombstone, its reactions: ADR 0025), the actions' entries
  included (the chain stays whole); the archiver applied the stored ones, the unarchived tail's are applied here.
- ``member_conversation`` is the one membership check for routes under ``/v1/conversations/{conv}``
  and ``/v1/groups/{conv}``: 404 for no such conversation, 403 for a non-member.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from aiohttp import web
from parley.api import validation as v
from parley.api.blocks import existing_user, refuse_if_blocked
from parley.api.http import NATS, SETTINGS, STORE, authed, body_of, json, now_ms
from parley.api.shapes import conversation_json, message_json

from parley import bus
from parley.actions import current
from parley.auth import Claims
from parley.bus.repair import ask_repair
from parley.cursor import cursor_key, seal_cursor
from parley.errors import BadRequest, Forbidden, NotFound, Unavailable
from parley.gaps import fill_span, holes_in, trailing_hole
from parley.ids import ConversationId, UserId, dm_conversation, dm_members, is_group
from parley.messages import decode_payload
from parley.protocol import MAX_ID
from parley.settings import Settings
from parley.shards import (
    conversation_of_message,
    home_for,
    home_in,
    message_subject,
    pack,
    pos_of_id,
    user_message_filters,
)
from parley.store import Conversation, Receipt, Store, StoredMessage

log = logging.getLogger("parley.api")
HISTORY_MAX = 200
UNREAD_MAX = 100  # a client shows it as "99+"; also how many messages after the mark are looked at
UNREAD_READS = 16  # GET /v1/conversations: conversations whose unread count is read at once
FLOOR_TIMEOUT_S = 2.0  # a shard's floor: a shard silent this long is left out of the listing's tail


async def list_conversations(request: web.Request) -> web.Response:
    claims = await authed(request)
    store = request.app[STORE]
    # Read the archiver's floors before the store: the store then holds at least everything up to them.
    nc, settings = request.app[NATS], request.app[SETTINGS]
    floors = await asyncio.gather(*(_floor(nc, settings, shard) for shard in range(settings.shards)))
    convs = await store.list_conversations(claims.user)
    tail, lasts = await _tail_from_stream(request, claims.user, convs, floors)
    convs = _with_latest(convs, tail)
    users = await store.get_users(sorted({m for c in convs for m in c.members}))
    gate = asyncio.Semaphore(UNREAD_READS)  # a user in thousands of conversations: a few reads at a time

    async def unread(conv: Conversation) -> tuple[int, int]:
        async with gate:
            return await _unread(store, claims.user, conv, tail.get(conv.id, []))

    marks = await asyncio.gather(*(unread(c) for c in convs))
    # what this listing covers, as a cursor: a new device that starts from it misses nothing listed after it
    cursor = seal_cursor(cursor_key(request.app[SETTINGS].secret.reveal()), lasts)
    return json({"conversations": [conversation_json(c, users) | {"read": read, "unread": unread}
                                   for c, (read, unread) in zip(convs, marks, strict=True)], "cursor": cursor})


async def _floor(nc: bus.BusClient, settings: Settings, shard: int) -> int | None:
    """The archiver's floor in ``shard``; None when the shard does not answer (another region's while the
    link is down): the listing then leaves that shard out of its tail and its cursor (a device starting
    from it reads that shard from the beginning of its history, once it answers)."""
    try:
        return await asyncio.wait_for(bus.archived_through(nc, settings, shard), FLOOR_TIMEOUT_S)
    except (Unavailable, TimeoutError):
        return None


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
    return read, min(UNREAD_MAX, sum(1 for m in newest if m.sender != user and not m.kind))


async def open_dm(request: web.Request) -> web.Response:
    claims = await authed(request)
    other = UserId(v.user_id((await body_of(request)).get("user_id")))
    store = request.app[STORE]
    if other == claims.user:
        raise BadRequest("a conversation needs another user", code="bad_field", field="user_id")
    await existing_user(store, other)
    if await store.friend_state(claims.user, other) != "friends":
        await refuse_if_blocked(store, claims.user, other, "message this user")
        raise Forbidden("you can only message friends", code="not_friends")
    conv_id = dm_conversation(claims.user, other)
    await store.open_conversation(Conversation(conv_id, "dm", tuple(sorted((claims.user, other))), now_ms(),
                                               shard=new_home(request.app[SETTINGS], conv_id)))
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
    before = v.int_query(q.get("before"), "before", low=0, high=MAX_ID, default=None)
    after = v.int_query(q.get("after"), "after", low=0, high=MAX_ID, default=None)
    order = q.get("order", "desc" if after is None else "asc")
    if order not in ("asc", "desc"):
        raise BadRequest("order must be asc or desc", code="bad_field", field="order")
    assert limit is not None
    newest_first = order == "desc"
    shard = home_of(conv, request.app[SETTINGS].shards)
    archived = await bus.archived_through(request.app[NATS], request.app[SETTINGS], shard)  # before the store read
    rows = await request.app[STORE].history(conv.id, before=before, after=after, limit=limit + 1,
                                            newest_first=newest_first)
    # complete down to ``after`` (or the conversation's start) unless a newest-first page was cut short
    floor = (after or pack(shard, 0)) if not newest_first or len(rows) <= limit else None
    # the page reaches the top of what is archived (newest first, or everything after ``after``)
    top = archived if before is None and (newest_first or len(rows) <= limit) else None
    rows = await _fill_holes(request, conv.id, shard, rows, floor, top, newest_first=newest_first)
    rows = await _with_unarchived(request, conv.id, shard, rows, archived, before=before, after=after,
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
    request: web.Request, conv: ConversationId, shard: int, rows: list[StoredMessage], archived: int, *,
    before: int | None, after: int | None, newest_first: bool,
) -> list[StoredMessage]:
    """Add messages the stream holds but the archiver had not written when the store was read, so
    history is never behind what devices were sent. Ids of one shard compare like its sequences."""
    nc, settings = request.app[NATS], request.app[SETTINGS]
    first, last = await bus.stream_bounds(nc, settings, shard)
    start = max(archived + 1, first, pos_of_id(after or 0) + 1)
    end = min(last, pos_of_id(before) - 1 if before is not None else last)
    if start > end:
        return rows
    tail = await bus.read_stream(nc.jetstream(), settings, shard, [message_subject(shard, conv)], start=start, end=end)
    extra = [m for m in (decode_payload(id, conv, data) for id, _, data in tail)
             if (after is None or m.id > after) and (before is None or m.id < before)]
    merged = {m.id: m for m in rows} | {m.id: m for m in extra}
    # actions not archived yet: the page shows their targets as they are now (ADR 0025)
    shown = current(list(merged.values()), [m for m in sorted(extra, key=lambda m: m.id) if m.kind or m.reply_to])
    return sorted(shown, key=lambda m: m.id, reverse=newest_first)


async def _fill_holes(request: web.Request, conv: ConversationId, shard: int, rows: list[StoredMessage],
                      floor: int | None, top: int | None, *, newest_first: bool) -> list[StoredMessage]:
    """Fill holes in a page of the store's history (a message whose ``prev`` is not there: the store lost
    it) from the stream while it still holds them (``parley.gaps``), and ask the archiver to write them
    back (``bus.repair``). ``top``: the archiver's floor when the page should reach it; then messages the
    stream has above the page's newest, up to the floor, were lost too (a hole no later message shows)."""
    nc, settings = request.app[NATS], request.app[SETTINGS]
    ordered = sorted(rows, key=lambda m: m.id)
    holes = holes_in([(m.id, m.prev) for m in ordered], floor)
    newest = ordered[-1].id if ordered else floor
    if top is not None and newest is not None:
        last = await bus.last_id_of(nc, settings, shard, conv)
        hole = trailing_hole(newest, last, top)
        if hole is not None:
            holes.append(hole)
    if not holes:
        return rows
    first, _ = await bus.stream_bounds(nc, settings, shard)
    filled: list[StoredMessage] = []
    for hole in holes:
        span = fill_span(hole, first)
        if span is not None:
            found = await bus.read_stream(nc.jetstream(), settings, shard, [message_subject(shard, conv)],
                                          start=span[0], end=span[1])
            filled += [decode_payload(id, conv, data) for id, _, data in found]
    if not filled:
        return rows
    log.warning("%d messages of %s missing from the store, filled from the stream", len(filled), conv)
    await ask_repair(nc, shard, [pos_of_id(m.id) for m in filled])
    return sorted(ordered + filled, key=lambda m: m.id, reverse=newest_first)


async def _tail_from_stream(
    request: web.Request, user: UserId, convs: list[Conversation], floors: list[int | None]
) -> tuple[dict[ConversationId, list[StoredMessage]], dict[int, int]]:
    """Messages of these conversations the archiver had not written when the store was read, from each
    shard's tail, per conversation in id order; and, per shard, the position the listing covers."""
    nc, settings = request.app[NATS], request.app[SETTINGS]
    out: dict[ConversationId, list[StoredMessage]] = {}
    lasts: dict[int, int] = {}
    for shard, archived in enumerate(floors):
        if archived is None:
            continue
        first, last = await bus.stream_bounds(nc, settings, shard)
        lasts[shard] = last
        start = max(archived + 1, first)
        groups = [c.id for c in convs if c.kind == "group" and home_of(c, settings.shards) == shard]
        if start > last or not convs:
            continue
        filters = user_message_filters(shard, user, groups)
        for id, subject, data in await bus.read_stream(nc.jetstream(), settings, shard, filters, start=start, end=last):
            conv = conversation_of_message(subject)
            out.setdefault(conv, []).append(decode_payload(id, conv, data))
    return out, lasts


def new_home(settings: Settings, conv: str) -> int:
    """The shard a conversation opened here is homed in: one of this API's region (``parley.layout``)."""
    return home_in(conv, settings.layout().home_shards(settings.region))


def home_of(conv: Conversation, shards: int) -> int:
    """The shard ``conv`` lives in (stored; conversations from before shards: the hash)."""
    return conv.shard if conv.shard is not None else home_for(conv.id, shards)


def _with_latest(convs: list[Conversation], tail: dict[ConversationId, list[StoredMessage]]) -> list[Conversation]:
    """Last messages from the unarchived tail; most recently active first."""
    updated = [replace(c, last_message=tail[c.id][-1] if tail.get(c.id) else c.last_message) for c in convs]
    return sorted(updated, key=lambda c: c.last_message.ts if c.last_message else 0, reverse=True)


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/v1/conversations", list_conversations)
    r.add_post("/v1/conversations", open_dm)
    r.add_get("/v1/conversations/{conv}/messages", history)
    r.add_get("/v1/conversations/{conv}/receipts", receipts)
