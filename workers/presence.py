"""The presence worker: heartbeats of its partitions in, online/offline changes out.

Users are split into ``presence_partitions`` partitions; any number of workers share them, each
holding leases on a fair share (``workers/presence_leases.py``). For each partition it holds, a worker
subscribes to ``hb.<p>.>`` (every node's beats for those users), keeps what each node holds
(``parley.presence_holdings``: told of each device's arrival and departure, a beat per node and partition, a
report when it asks — ``hb.ask.<node>`` — for one, ADR 0049) and runs the pure ``PresenceBook`` over it (online
while a live node holds one of the user's devices, or one was heard within the timeout), ticks twice a second to
take silent users offline, and for each change publishes ``presence.<user>`` (friends' nodes forward it) and updates
the ``presence`` and ``last_seen`` buckets (read on demand). Each online user's ``presence`` entry is
rewritten once per third of the bucket's TTL, a slice of the users each tick (``parley.presence_refresh``,
docs/adr/0046), so an entry never expires while its user is online.

Taking a partition (at start, from a worker that died, or handed over) reads its online users back
from the ``presence`` bucket and announces nothing until they time out or beat again; giving one up
(handing it to a joining worker, or stopping) writes their latest activity there first and forgets them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time

import orjson
from aiohttp import web
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.kv import KeyValue
from parley.workers.presence_leases import PartitionLeases, open_lease_bucket
from parley.workers.presence_writes import Announcements

from parley import bus, wire
from parley.bus import BusClient
from parley.bus.buckets import presence_refresh_s
from parley.bus.outage import is_transient
from parley.metrics import PresenceMetrics
from parley.presence import PresenceBook, Transition
from parley.presence_bus import ONLINE_BUCKET, ask_subject, heartbeat_filter, open_buckets, partition_of_subject
from parley.presence_holdings import Holdings
from parley.presence_partitions import partition_of
from parley.presence_refresh import Refreshes
from parley.runtime import run_until_stopped, serve, serve_health
from parley.settings import Settings

log = logging.getLogger("parley.presence")
WRITES_IN_FLIGHT = 256


def now_ms() -> int:
    return int(time.time() * 1000)


def mono_ms() -> int:
    """The refresh's clock: the ages of bucket writes, which a wall clock set back must not stretch."""
    return int(time.monotonic() * 1000)


def worker_name() -> str:
    """Unique per process (a restarted worker is a new one; its old leases simply expire)."""
    host = "".join(c if (c.isascii() and c.isalnum()) or c in "-_" else "-" for c in socket.gethostname())
    return f"{host}-{os.getpid()}-{secrets.token_hex(2)}"


class PresenceWorker:
    def __init__(self, settings: Settings, nc: BusClient, online: KeyValue, seen: KeyValue) -> None:
        self.book = PresenceBook(timeout_ms=int(settings.presence_timeout_s * 1000))
        # at most one ask per node and partition a beat (half a beat: the node's beats are not exactly a beat apart)
        self.holdings = Holdings(self.book, ask_every_ms=int(settings.presence_beat_s * 500))
        self._settings, self._nc, self._online, self._seen = settings, nc, online, seen
        self._partitions = settings.presence_partitions
        self.subs: dict[int, Subscription] = {}
        self._ready: dict[int, asyncio.Event] = {}  # partitions held → set once their users are restored
        self._restoring: set[asyncio.Task[None]] = set()
        self.metrics = PresenceMetrics()
        self._counted = {True: self.metrics.transitions.labels("online"),  # a label looked up once, not per change
                         False: self.metrics.transitions.labels("offline")}
        self.refreshes = Refreshes(int(presence_refresh_s(settings) * 1000))
        self.announcements = Announcements(nc, unstored=lambda user: self.refreshes.unwritten(user, mono_ms()))

    async def adopt(self, partitions: list[int]) -> None:
        """These partitions are ours now. Subscribe at once (NATS queues their beats meanwhile), read
        their online users back from the bucket in the background, then handle the queued beats: the
        lease rounds never wait for a restore, and no user known online is announced online again."""
        restored = asyncio.Event()
        for p in partitions:
            self._ready[p] = restored
            if p not in self.subs:
                self.subs[p] = await self._nc.subscribe(heartbeat_filter(p), cb=self.on_heartbeats,
                                                        pending_msgs_limit=65536, pending_bytes_limit=256 * 2**20)
        task = asyncio.get_running_loop().create_task(self._restore(set(partitions), restored))
        self._restoring.add(task)
        task.add_done_callback(self._restoring.discard)
        self.metrics.partitions.set(len(self.subs))
        self.metrics.takeovers.inc(len(partitions))

    async def drop(self, partitions: list[int]) -> None:
        """Another worker will handle these: stop listening, leave their latest activity in the bucket."""
        gone = set(partitions)
        for p in partitions:
            self._ready.pop(p, None)
            sub = self.subs.pop(p, None)
            if sub is not None:
                await sub.unsubscribe()
        users = [u for u in self.book.online_users() if partition_of(u, self._partitions) in gone]
        self.holdings.forget(gone)
        try:
            await self._write_activity(users)
        except Exception as err:  # NATS away: the new owner reads slightly older times
            log.info("presence: saving activity of dropped partitions: %r", err)
        self.book.forget(users)
        for user in users:
            self.refreshes.forget(user)
        self.metrics.partitions.set(len(self.subs))

    async def _restore(self, partitions: set[int], restored: asyncio.Event) -> None:
        """The partitions' online users from the bucket, in one pass over it (a watch, not a get per key)."""
        found, at = 0, now_ms()
        try:
            watcher = await self._online.watchall(ignore_deletes=True)
            try:
                while (entry := await watcher.updates(timeout=10)) is not None:  # type: ignore[no-untyped-call]
                    p = partition_of(entry.key, self._partitions)
                    if p in partitions and self._ready.get(p) is restored and entry.value:
                        self.book.restore(entry.key, orjson.loads(entry.value)["last_active_at"], at)
                        self.refreshes.restored(entry.key, mono_ms())
                        found += 1
            finally:
                await watcher.stop()  # type: ignore[no-untyped-call]
        except Exception as err:  # NATS away: users beat again within the timeout; worst case they flap
            log.warning("presence: restoring partitions %s: %r", sorted(partitions), err)
        finally:
            restored.set()
        log.info("presence: %d users online in partitions %s", found, sorted(partitions))

    async def on_heartbeats(self, msg: Msg) -> None:
        try:
            batch = wire.decode(msg.data)
        except wire.WireError as err:
            log.warning("presence: bad heartbeat batch on %s: %s", msg.subject, err.message)
            return
        if not isinstance(batch, wire.Heartbeats | wire.DeviceHeld | wire.StillHeld | wire.HeldReport):
            log.warning("presence: %s on %s is not a heartbeat batch", batch.kind, msg.subject)
            return
        p = partition_of_subject(msg.subject)
        ready = self._ready.get(p) if p is not None else None
        if p is None or ready is None:  # a partition given up while this batch was queued
            return
        if not ready.is_set():
            await ready.wait()
            if self._ready.get(p) is not ready:
                return
        if isinstance(batch, wire.Heartbeats):
            self._beats(p, batch, msg.subject)
        else:
            await self._holdings(p, batch, msg.subject)
        # nats-py runs queued callbacks back to back without yielding: let the lease rounds and the
        # ticks in between batches, or a backlog of beats starves renewals and the leases expire
        await asyncio.sleep(0)

    def _beats(self, p: int, batch: wire.Heartbeats, subject: str) -> None:
        """A node before ADR 0049: every device it holds, each beat."""
        beats = [b for b in batch.beats if partition_of(b[0], self._partitions) == p]
        if len(beats) < len(batch.beats):
            self._wrong_partition(subject)
        changes = [self.book.heartbeat(user, device, at) for user, device, at in beats]
        self.metrics.heartbeats.inc(len(beats))
        for change in changes:
            if change is not None:
                self.announce(change)

    async def _holdings(self, p: int, message: wire.Holdings, subject: str) -> None:
        users = ([message.user] if isinstance(message, wire.DeviceHeld) else
                 [u for u, _ in message.devices] if isinstance(message, wire.HeldReport) else [])
        if any(partition_of(u, self._partitions) != p for u in users):
            self._wrong_partition(subject)
            return
        outcome = self.holdings.heard(p, message)
        self.metrics.heartbeats.inc(len(users))
        for change in outcome.transitions:
            self.announce(change)
        if outcome.ask:
            self.metrics.asks.inc()
            try:
                await self._nc.publish(ask_subject(message.node), wire.encode(wire.ReportAsk(p)))
            except Exception as err:  # NATS away: asked again at the node's next beat
                log.info("presence: asking %s for partition %d: %r", message.node, p, err)

    def _wrong_partition(self, subject: str) -> None:
        log.warning("presence: beats on %s for users of other partitions: does the node's "
                    "PARLEY_PRESENCE_PARTITIONS differ from ours (%d)?", subject, self._partitions)

    def announce(self, change: Transition) -> None:
        """Queued: its bucket write and event go out with the others queued meanwhile (``presence_writes``)."""
        self._counted[change.online].inc()
        if change.online:  # its put is queued: the entry's age counts from now
            self.refreshes.written(change.user, mono_ms())
        else:  # its delete is queued
            self.refreshes.forget(change.user)
        self.announcements.announce(change)

    async def _write_activity(self, users: list[str]) -> None:
        async def one(user: str) -> None:
            last = self.book.last_active(user)
            if last is not None:
                await self._online.put(user, orjson.dumps({"last_active_at": last}))

        for start in range(0, len(users), WRITES_IN_FLIGHT):  # many at once: a partition can hold many users
            await asyncio.gather(*(one(u) for u in users[start:start + WRITES_IN_FLIGHT]))

    async def refresh(self, users: list[str]) -> None:
        """These online users' latest activity rewritten in the ``presence`` bucket, inside its TTL (the tick
        passes the slice ``Refreshes.take`` says is due). Published as the bucket's own writes are
        (``$KV.presence.<user>``) but without waiting for each write's ack: one flush for all, a few
        microseconds of Python per user, not a request's round trip each. A write lost to an election is made
        at the user's next refresh, a period later: the TTL is three periods (ADR 0046)."""
        prefix = f"$KV.{ONLINE_BUCKET}."
        for user in users:
            last = self.book.last_active(user)
            if last is not None:
                await self._nc.publish(prefix + user, orjson.dumps({"last_active_at": last}))
        await self._nc.flush()

    async def close(self) -> None:
        for task in list(self._restoring):
            task.cancel()
        await asyncio.gather(*self._restoring, return_exceptions=True)
        await self.announcements.close()

    def pending(self) -> int:
        """Heartbeat batches received and not yet handled: this worker's lag."""
        return sum(sub.pending_msgs for sub in self.subs.values())

    async def tick_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for change in self.holdings.tick(now_ms()):
                self.announce(change)
            self.metrics.online.set(self.book.online_count())
            self.metrics.pending.set(self.pending())
            due = self.refreshes.take(mono_ms())  # a slice of the users, each once per period (ADR 0046)
            if due:
                try:
                    await self.refresh(due)
                except Exception as err:  # an election: their next refresh writes them (the TTL is 3 periods)
                    if not is_transient(err):
                        raise
                    log.warning("presence: KV unavailable during the refresh (%s)", type(err).__name__)
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except TimeoutError:
                pass


async def run_presence(settings: Settings) -> None:
    nc = await bus.connect(settings, "presence")
    control = await bus.connect(settings, "presence-leases")  # renewals never queue behind heartbeats
    online, seen = await open_buckets(nc.jetstream(), settings)
    worker = PresenceWorker(settings, nc, online, seen)
    leases = PartitionLeases(await open_lease_bucket(control.jetstream(), settings), worker_name(), settings,
                             adopt=worker.adopt, drop=worker.drop,
                             reopen=lambda: open_lease_bucket(control.jetstream(), settings))
    await leases.round()  # a first share before we say we are ready
    log.info("presence worker %s holds partitions %s", leases.me, leases.book.owned())
    app = web.Application()
    serve_health(app, ready=lambda: nc.is_connected and control.is_connected, registry=worker.metrics.registry)
    runner = await serve(app, settings.presence_host, settings.presence_port)
    stop = asyncio.Event()
    ticking = asyncio.get_running_loop().create_task(worker.tick_forever(stop))
    renewing = asyncio.get_running_loop().create_task(leases.run(stop))
    try:
        await run_until_stopped()
    finally:
        stop.set()
        await asyncio.gather(ticking, renewing, return_exceptions=True)
        await worker.close()
        try:  # hand everything back now rather than after the leases expire
            await leases.release_all()
        except Exception as err:
            log.info("presence: releasing leases: %r", err)
        await runner.cleanup()
        await bus.close_quietly(control)
        await bus.close_quietly(nc)
