"""The presence worker: heartbeats from every node in, online/offline changes out.

It runs the pure ``PresenceBook`` (online while any device was heard within the timeout) over the
nodes' heartbeat batches, ticks twice a second to take silent users offline, and for each change
publishes ``presence.<user>`` (friends' nodes forward it) and updates the ``presence`` and
``last_seen`` buckets (read on demand). A restart reads the online users back from the bucket and
announces nothing until they time out or beat again. One worker serves a cluster; beyond that,
shard heartbeat subjects by user (README, Scale).
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
from aiohttp import web
from nats.aio.msg import Msg
from nats.js.errors import NoKeysError
from nats.js.kv import KeyValue

from parley import bus, wire
from parley.bus import BusClient
from parley.bus.outage import is_transient
from parley.metrics import PresenceMetrics
from parley.presence import PresenceBook, Transition
from parley.presence_bus import HEARTBEAT_PREFIX, open_buckets, presence_subject
from parley.runtime import run_until_stopped, serve, serve_health
from parley.settings import Settings

log = logging.getLogger("parley.presence")


def now_ms() -> int:
    return int(time.time() * 1000)


class PresenceWorker:
    def __init__(self, settings: Settings, nc: BusClient, online: KeyValue, seen: KeyValue) -> None:
        self.book = PresenceBook(timeout_ms=int(settings.presence_timeout_s * 1000))
        self._settings, self._nc, self._online, self._seen = settings, nc, online, seen
        self.metrics = PresenceMetrics()

    async def restore(self) -> None:
        try:
            keys = await self._online.keys()
        except NoKeysError:
            return
        for user in keys:
            entry = await self._online.get(user)
            if entry.value:
                self.book.restore(user, orjson.loads(entry.value)["last_active_at"])
        log.info("presence: %d users online at start", len(keys))

    async def on_heartbeats(self, msg: Msg) -> None:
        try:
            batch = wire.decode(msg.data)
        except wire.WireError as err:
            log.warning("presence: bad heartbeat batch on %s: %s", msg.subject, err.message)
            return
        if not isinstance(batch, wire.Heartbeats):
            log.warning("presence: %s on %s is not a heartbeat batch", batch.kind, msg.subject)
            return
        changes = [self.book.heartbeat(user, device, at) for user, device, at in batch.beats]
        self.metrics.heartbeats.inc(len(batch.beats))
        for change in changes:
            if change is not None:
                await self.announce(change)

    async def announce(self, change: Transition) -> None:
        self.metrics.transitions.labels("online" if change.online else "offline").inc()
        event = wire.PresenceChange(change.user, change.online, change.last_active_at)
        value = orjson.dumps({"last_active_at": change.last_active_at})
        try:
            if change.online:
                await self._online.put(change.user, value)
            else:
                await self._seen.put(change.user, value)
                await self._online.delete(change.user)
        except Exception as err:  # a KV leader election: the change still goes out; the refresh stores it
            if not is_transient(err):
                raise
            log.warning("presence: KV unavailable (%s); %s announced, stored at the next refresh",
                        type(err).__name__, change.user)
        await self._nc.publish(presence_subject(change.user), wire.encode(event))

    async def tick_forever(self, stop: asyncio.Event) -> None:
        refresh_every = self._settings.presence_timeout_s
        refreshed = time.monotonic()
        while not stop.is_set():
            for change in self.book.tick(now_ms()):
                await self.announce(change)
            self.metrics.online.set(len(self.book.online_users()))
            if time.monotonic() - refreshed >= refresh_every:  # keep online entries inside the bucket's TTL
                refreshed = time.monotonic()
                try:
                    for user in self.book.online_users():
                        last = self.book.last_active(user)
                        await self._online.put(user, orjson.dumps({"last_active_at": last}))
                except Exception as err:  # an election: the next refresh writes them (the TTL is 3 timeouts)
                    if not is_transient(err):
                        raise
                    log.warning("presence: KV unavailable during the refresh (%s)", type(err).__name__)
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except TimeoutError:
                pass


async def run_presence(settings: Settings) -> None:
    nc = await bus.connect(settings, "presence")
    online, seen = await open_buckets(nc.jetstream(), settings)
    worker = PresenceWorker(settings, nc, online, seen)
    await worker.restore()
    sub = await nc.subscribe(HEARTBEAT_PREFIX + ">", cb=worker.on_heartbeats)
    app = web.Application()
    serve_health(app, ready=lambda: nc.is_connected, registry=worker.metrics.registry)
    runner = await serve(app, settings.presence_host, settings.presence_port)
    stop = asyncio.Event()
    ticking = asyncio.get_running_loop().create_task(worker.tick_forever(stop))
    try:
        await run_until_stopped()
    finally:
        stop.set()
        await ticking
        await sub.unsubscribe()
        await runner.cleanup()
        await bus.close_quietly(nc)
