"""Presence over NATS: heartbeats in, state in KV buckets, changes out.

- Nodes publish on ``hb.<partition>.<node>`` for the users of one presence partition
  (``parley.presence_partitions``): each device when it connects and when it disconnects, numbered per
  partition, and each ``presence_beat_s`` one beat per partition with the last number and no devices; a
  worker that misses a number asks on ``hb.ask.<node>`` for the partition's report (every device held there),
  which also goes out by itself every few minutes (ADR 0049; ``parley.wire``'s table). Nodes before it
  sent every connected device each beat (``[user, device, at_ms]`` triples): workers still take those.
- The presence worker owning a partition (``workers/presence.py``) keeps what each node holds
  (``parley.presence_holdings``) and runs ``parley.presence.PresenceBook`` over it and the older beats, and
  publishes each change on ``presence.<user>``: ``{"user", "online", "last_active_at"}``.
- Bucket ``presence`` holds the online users (key = user id, value ``{"last_active_at"}``), each
  rewritten by the worker once per third of the bucket's TTL (``buckets.presence_ttl_s``, 10 min by
  default: every 200 s; docs/adr/0046), so an online user's ``last_active_at`` read here may be that much
  older than their last beat (the ``presence.<user>`` events, and the ``last_seen`` entry written when
  they go offline, are exact); the TTL empties it if every worker dies, so nobody stays online forever.
  Bucket ``last_seen`` keeps when each user was last active, for ``last_seen_ttl_s`` (a year by default;
  then ``last_active_at`` is null, as for a user never seen).
Readers (nodes answering a ``presence`` frame, the API) look users up here on demand, which is how
large groups see presence without any broadcast. A deleted account reads as never seen (``hide_deleted``:
the store says who is deleted, for the users the buckets show as seen): its ``last_seen`` entry may be
written again after the deletion (its devices' last beats come when their connections close), so the
readers decide, not the bucket; the entry itself expires with the bucket's TTL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

import orjson
from nats.js.client import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from parley.bus import buckets, ensure
from parley.ids import UserId
from parley.settings import Settings
from parley.store.records import User

HEARTBEAT_PREFIX = "hb."
ASK_PREFIX = "hb.ask."  # a worker asks a node for a partition's report (ADR 0049)
PRESENCE_PREFIX = "presence."
ONLINE_BUCKET, SEEN_BUCKET = buckets.PRESENCE, buckets.LAST_SEEN


def heartbeat_subject(partition: int, node: str) -> str:
    return f"{HEARTBEAT_PREFIX}{partition}.{node}"


def ask_subject(node: str) -> str:
    return ASK_PREFIX + node


def heartbeat_filter(partition: int) -> str:
    """Every node's beats for one partition: what the partition's owner subscribes to."""
    return f"{HEARTBEAT_PREFIX}{partition}.>"


def partition_of_subject(subject: str) -> int | None:
    token = subject[len(HEARTBEAT_PREFIX):].split(".", 1)[0]
    return int(token) if token.isdigit() else None


def presence_subject(user: str) -> str:
    return PRESENCE_PREFIX + user


async def open_buckets(js: JetStreamContext, settings: Settings) -> tuple[KeyValue, KeyValue]:
    """The ``presence`` and ``last_seen`` buckets (created if absent, refused if configured otherwise)."""
    return (await ensure.open_bucket(js, buckets.presence(settings)),
            await ensure.open_bucket(js, buckets.last_seen(settings)))


async def _value(kv: KeyValue, key: str) -> dict[str, Any] | None:
    try:
        entry = await kv.get(key)
    except KeyNotFoundError:
        return None
    return orjson.loads(entry.value) if entry.value else None


async def read_presence(online: KeyValue, seen: KeyValue, users: list[str],
                        hidden: AbstractSet[str] = frozenset()) -> list[dict[str, Any]]:
    """``{"user", "online", "last_active_at"}`` for each user (``last_active_at`` null if never seen).
    ``hidden`` users (a block between them and the asker) read as never seen, without a read."""

    async def one(user: str) -> dict[str, Any]:
        if user in hidden:
            return {"user": user, "online": False, "last_active_at": None}
        now = await _value(online, user)
        if now is not None:
            return {"user": user, "online": True, "last_active_at": now["last_active_at"]}
        before = await _value(seen, user)
        return {"user": user, "online": False, "last_active_at": before["last_active_at"] if before else None}

    return list(await asyncio.gather(*(one(u) for u in users)))


def as_never_seen(found: list[dict[str, Any]], gone: AbstractSet[str]) -> list[dict[str, Any]]:
    """``found`` (``read_presence``'s answer) with the ``gone`` users read as never seen."""
    return [{"user": e["user"], "online": False, "last_active_at": None} if e["user"] in gone else e for e in found]


async def hide_deleted(found: list[dict[str, Any]],
                       get_users: Callable[[list[UserId]], Awaitable[Mapping[UserId, User]]]) -> list[dict[str, Any]]:
    """``found`` with deleted accounts read as never seen; only the users shown as seen are looked up."""
    seen = [UserId(e["user"]) for e in found if e["last_active_at"] is not None]
    if not seen:
        return found
    return as_never_seen(found, {u for u, record in (await get_users(seen)).items() if record.deleted})
