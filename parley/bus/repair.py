"""Healing holes in the store from the stream: a reader that filled one asks the archiver to write it back.

A node's sync or the API's history that found messages missing from the store below the archiver's floor
and read them from the stream (``parley.gaps``) publishes ``arc.repair`` (core NATS: lost if no archiver
listens, and then asked again by the next reader that meets the hole) with the shard and the sequences. An
archiver (queue group ``archiver``: one of them) reads each sequence from the stream itself (a direct get)
and writes it to the store, idempotently. A forged request can only make it rewrite what the stream holds.
"""

from __future__ import annotations

import logging

import orjson
from nats.aio.client import Client

from parley.bus.outage import TRANSIENT, unavailable
from parley.bus.port import Bus
from parley.errors import Unavailable
from parley.settings import Settings
from parley.shards import stream_of

log = logging.getLogger("parley.bus")
REPAIR_SUBJECT = "arc.repair"
MAX_SEQS = 1000  # per request: a bigger hole is asked for again by the next reader


def repair_request(shard: int, seqs: list[int]) -> bytes:
    return orjson.dumps({"shard": shard, "seqs": seqs[:MAX_SEQS]})


def parse_repair(data: bytes) -> tuple[int, list[int]] | None:
    """(shard, sequences) of a request, None if it is not one."""
    try:
        d = orjson.loads(data)
        shard, seqs = d["shard"], d["seqs"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    if not isinstance(shard, int) or not isinstance(seqs, list) or not all(isinstance(s, int) and s > 0 for s in seqs):
        return None
    return shard, seqs[:MAX_SEQS]


async def ask_repair(nc: Bus, shard: int, seqs: list[int]) -> None:
    """Ask an archiver to write these sequences of the shard's stream to the store (best effort)."""
    try:
        await nc.publish(REPAIR_SUBJECT, repair_request(shard, seqs))
    except Exception as err:  # the next reader that meets the hole asks again
        log.warning("could not ask for a repair of %d messages in shard %d: %s", len(seqs), shard, err)


async def message_at(nc: Client, settings: Settings, shard: int, seq: int) -> tuple[str, bytes] | None:
    """The subject and payload of sequence ``seq`` in the shard's stream (None if it is gone)."""
    try:
        msg = await nc.request(f"$JS.API.DIRECT.GET.{stream_of(settings.stream_name, shard)}",
                               orjson.dumps({"seq": seq}), timeout=5)
    except TRANSIENT as err:
        raise unavailable(err, "direct get") from err
    headers = msg.headers or {}
    if headers.get("Status") == "404":
        return None
    if "Nats-Subject" not in headers:
        raise Unavailable(f"direct get failed: {headers}", code="bus_unavailable")
    return headers["Nats-Subject"], msg.data
