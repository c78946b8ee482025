"""The live archiver: copies every accepted live-room message from the ``LIVE`` stream into the store
(ADR 0018). It runs inside the archiver process, beside the conversation archiver.

Archivers share one durable pull consumer (``live_archiver``); a batch is written in one store call
(idempotent, and a rewrite never revives a deleted message) and acked only once written. While the store is
down the batch is retried with backoff, telling JetStream we are still at it, so nothing accepted is lost.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout

from parley.bus import BusClient, ensure, live
from parley.bus.outage import is_transient
from parley.errors import Unavailable
from parley.ids import UserId
from parley.live.rooms import room_of
from parley.settings import Settings
from parley.store.protocols import LiveMessages
from parley.store.records import LiveMessage

log = logging.getLogger("parley.archiver")
MAX_BACKOFF_S = 5.0


def stored(msg: Msg) -> LiveMessage:
    d = orjson.loads(msg.data)
    return LiveMessage(room_of(msg.subject), msg.metadata.sequence.stream, UserId(d["from"]), d["cid"], d["body"],
                       d["ts"])


async def write(store: LiveMessages, msgs: list[Msg], stop: asyncio.Event) -> bool:
    """Write the batch, retrying while the store is down; False if stopped first (JetStream redelivers)."""
    rows, backoff = [stored(m) for m in msgs], 0.1
    while True:
        try:
            await store.put_live_messages(rows)
            return True
        except Unavailable as err:
            if stop.is_set():
                return False
            log.warning("live archiver: store unavailable (%s); retrying %d messages", err, len(rows))
            for m in msgs:
                await m.in_progress()
            await asyncio.sleep(backoff)
            backoff = min(MAX_BACKOFF_S, backoff * 2)


async def archive_live(settings: Settings, store: LiveMessages, nc: BusClient, stop: asyncio.Event) -> None:
    js = nc.jetstream()
    await ensure.ensure_stream(js, live.stream_config(settings))
    await live.ensure_archiver_consumer(js, settings)
    sub = await js.pull_subscribe_bind(durable=live.ARCHIVER, stream=live.STREAM)
    log.info("live archiver consuming %s", live.STREAM)
    try:
        while not stop.is_set():
            try:
                msgs = await sub.fetch(batch=settings.archiver_batch, timeout=1)
            except (NatsTimeout, TimeoutError):
                continue
            except Exception as err:  # NATS reconnecting, a leader election: JetStream keeps the messages
                if not is_transient(err):
                    raise
                log.warning("live archiver: %s; pulling again", err)
                await asyncio.sleep(0.5)
                continue
            if msgs and await write(store, msgs, stop):
                try:
                    for m in msgs:
                        await m.ack()
                except Exception as err:  # redelivered after ack_wait and rewritten: the same rows
                    log.warning("live archiver: acks failed (%s); the batch will be redelivered", err)
    finally:
        await sub.unsubscribe()
