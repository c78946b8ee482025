"""The archiver: copies every message from the streams into the store, exactly once in effect.

Any number of archivers share one durable pull consumer (``archiver``) on each message stream
(``bus.message_streams``); JetStream hands each message to one of them, in stream order. Messages
come in through ``bus.pull.Puller`` (one inbox per stream, one pull request open at a time, the
stream sequence read off the ack subject: no per-message task, future or metadata object); once a stream
brings more than one message a tick, its puller fetches what is pending every ``archiver_linger_s`` on a
tick shared by every stream rather than taking each message as it comes (at a few hundred messages a second,
a wakeup per message was most of the archiver's CPU; ADR 0038). They are gathered into batches
(``archiver_batch``, or what came within ``COALESCE_S``: one tick's bursts). A batch is written in
one store call (idempotent: a redelivered message rewrites the same row) and acked only after the
write succeeded: one ack per message (several archivers share the durable, so a cumulative ack could
ack another's messages before they are written), all of a batch in one write to NATS. A batch still
being written tells JetStream so (progress) every third of ``archiver_ack_wait_s``, so a large batch or a slow
store never has its messages handed to another archiver and written twice meanwhile (ADR 0058). An archiver
that dies holding batches loses nothing: JetStream hands them to another after ``archiver_ack_wait_s``;
one that stops lets its open pull requests end, finishes its writes or gives the batches back (nak)
at once. Up to ``archiver_concurrency`` batches are held at once (pull requests ask for no more); they
may finish in any order, which is safe because the consumer's ack floor only moves over a contiguous
run of acks. While the store is down every batch is retried with backoff, telling JetStream we are
still working on it, so nothing is skipped and nothing is acked early. The ack floor is then
"archived through": nodes read the store below it and the stream above. That holds only if what the store
acked survives a crash of the store (commitlog_sync group on Cassandra, ADR 0011); should the store lose
messages anyway, readers fill them from the stream and ask us (``arc.repair``, ``serve_repairs``) to write
them back. Actions (edits, deletes, reactions) and replies are then folded into their targets' stored state
(``Archive.apply_actions``, ADR 0025) in the same retry loop; an action whose target a batch written beside it
has not stored yet is retried, ``MISSING_TRIES`` times at most. Once started, the process freezes what it has
out of the garbage collector's walks and collects the young generation less often (``tune_gc``, ADR 0036).
Live rooms' messages are archived beside, from the ``LIVE`` stream (``live_archiver.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import time
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from nats.aio.msg import Msg
from parley.workers.live_archiver import archive_live

from parley import bus
from parley.bus import BusClient
from parley.bus.pull import ACK, NAK, PROGRESS, Puller, stream_sequence
from parley.bus.repair import REPAIR_SUBJECT, message_at, parse_repair
from parley.bus.stream import local_shards
from parley.errors import Unavailable
from parley.messages import decode_payload, decode_row
from parley.metrics import ArchiverMetrics
from parley.priority import step_aside
from parley.runtime import StoreProbe, run_until_stopped, serve, serve_health
from parley.settings import Settings
from parley.shards import conversation_of_message, pack, parse_message_subject, shard_of_message
from parley.store import Archive, StoredMessage, open_store
from parley.store.columns import MessageRow, row_of
from parley.tasks import cancel_and_wait

log = logging.getLogger("parley.archiver")
MAX_BACKOFF_S = 5.0
COALESCE_S = 0.02  # history lags the stream by this much more; sync and history read the tail anyway
MISSING_TRIES = 20  # an action whose target is not stored: retried this often (with backoff), then logged and left
PROGRESS_PER_ACK_WAIT = 3  # a batch still being written says so this often per ack_wait (a larger batch takes longer)
PULL_EXPIRES_S = 1.0  # an idle pull request ends after this (a stopping archiver waits for it at most)
# the cyclic GC's young-generation threshold (Python's default: 700). A batch's messages, bound statements and
# futures live for its whole write; collected every 700 allocations they are traversed again and again and
# promoted into the old generations, whose collections then walk the whole heap (ADR 0036: the GC was a fifth to
# a third of the archiver's busy samples, 6% with this). Cyclic garbage waits longer: up to ~10 MB more.
GC_YOUNG = 50_000


Delivered = tuple[str, str, bytes]  # subject, ack subject (reply), payload


def decode_messages(delivered: Iterable[Delivered]) -> list[StoredMessage]:
    out = []
    for subject, reply, data in delivered:
        try:
            out.append(decode_payload(pack(shard_of_message(subject), stream_sequence(reply)),
                                      conversation_of_message(subject), data))
        except (ValueError, KeyError, TypeError) as err:  # never written by a node; keep it out of history
            log.error("skipping undecodable message %s on %s: %s", reply, subject, err)
    return out


def decode_batch(msgs: list[Msg]) -> list[StoredMessage]:
    return decode_messages((m.subject, m.reply, m.data) for m in msgs)


def decode_rows(delivered: Iterable[Delivered]) -> tuple[list[MessageRow], list[StoredMessage]]:
    """The rows to write, and the actions and replies among them (``entries_of``) to fold. A plain message
    goes from its payload to its row (``decode_row``) with no ``StoredMessage`` (ADR 0069); the skipped
    are as ``decode_messages`` skips them."""
    rows: list[MessageRow] = []
    entries: list[StoredMessage] = []
    for subject, reply, data in delivered:
        try:
            shard, conv = parse_message_subject(subject)
            got = decode_row(pack(shard, stream_sequence(reply)), conv, data)
        except (ValueError, KeyError, TypeError) as err:  # never written by a node; keep it out of history
            log.error("skipping undecodable message %s on %s: %s", reply, subject, err)
            continue
        if isinstance(got, StoredMessage):
            rows.append(row_of(got))
            if got.kind or got.reply_to:
                entries.append(got)
        else:
            rows.append(got)
    entries.sort(key=lambda m: m.id)
    return rows, entries


async def write_with_retry(store: Archive, nc: BusClient, batch: list[Delivered], stop: asyncio.Event,
                           metrics: ArchiverMetrics | None = None) -> bool:
    rows, entries = decode_rows(batch)
    metrics = metrics or ArchiverMetrics()
    delay = 0.1
    tries = 0
    while not stop.is_set():
        try:
            began = time.perf_counter()
            await store.put_rows(rows)
            missing = await store.apply_actions(entries) if entries else []
            tries += 1
            if missing and tries < MISSING_TRIES:
                raise Unavailable(f"{len(missing)} actions' targets are not stored yet", code="store_unavailable")
            if missing:
                log.error("%d actions' targets never came; their entries stay, unapplied: %s", len(missing),
                          [m.id for m in missing])
            metrics.write_seconds.observe(time.perf_counter() - began)
            metrics.archived.inc(len(rows))
            return True
        except Unavailable as err:
            metrics.store_errors.inc()
            log.warning("store unavailable (%s); retrying %d messages in %.1fs", err.message, len(rows), delay)
            await answer(nc, batch, PROGRESS)
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, MAX_BACKOFF_S)
    return False


def entries_of(rows: list[StoredMessage]) -> list[StoredMessage]:
    """The actions and replies among ``rows``, in id order (their targets' order of events)."""
    return sorted((m for m in rows if m.kind or m.reply_to), key=lambda m: m.id)


async def answer(nc: BusClient, batch: list[Delivered], what: bytes) -> None:
    """One ack (or nak, or in-progress) per message, all in one write: several archivers share the
    durable, so a cumulative ack could ack another's messages before they are written."""
    try:
        await nc.publish_bare([reply for _, reply, _ in batch], what)
    except Exception as err:  # NATS away: JetStream redelivers after ack_wait; the rewrite is idempotent
        log.warning("could not answer %d messages (%s): %s", len(batch), what.decode(), err)


async def write_and_ack(store: Archive, nc: BusClient, batch: list[Delivered], stop: asyncio.Event,
                        metrics: ArchiverMetrics, progress_s: float = 10.0) -> None:
    writing = asyncio.get_running_loop().create_task(write_with_retry(store, nc, batch, stop, metrics))
    try:
        if await in_progress(nc, batch, writing, progress_s):
            await answer(nc, batch, ACK)
        else:  # stopping before the write succeeded: hand them back now, not after ack_wait
            await answer(nc, batch, NAK)
    finally:
        await cancel_and_wait(writing)
        metrics.held.dec(len(batch))


async def in_progress(nc: BusClient, batch: list[Delivered], writing: asyncio.Task[bool], every_s: float) -> bool:
    """The write's outcome; while it lasts, JetStream is told every ``every_s`` that we are still working on the
    batch, so a large batch (or a slow store) outliving ``archiver_ack_wait_s`` is not handed to another
    archiver and written twice meanwhile."""
    while True:
        done, _ = await asyncio.wait({writing}, timeout=every_s)
        if done:
            return writing.result()
        await answer(nc, batch, PROGRESS)


class Batcher:
    """Gathers delivered messages into batches (``archiver_batch`` of them, or what came within
    ``COALESCE_S`` of a batch's first: one transaction, one fsync per batch, not per trickle) and
    writes up to ``archiver_concurrency`` batches at once. Batches may finish in any order, which is
    safe because the consumer's ack floor only moves over a contiguous run of acks."""

    def __init__(self, settings: Settings, store: Archive, nc: BusClient, stop: asyncio.Event,
                 metrics: ArchiverMetrics) -> None:
        self._settings, self._store, self._nc, self._stop, self._metrics = settings, store, nc, stop, metrics
        self._filling: list[Delivered] = []
        self._timer: asyncio.TimerHandle | None = None
        self.writing: set[asyncio.Task[None]] = set()
        self.held = 0
        self.pullers: list[Puller] = []
        self.failed: BaseException | None = None
        self.crashed = asyncio.Event()

    def room(self) -> int:
        """Messages we may ask for now: a whole batch while fewer than ``archiver_concurrency`` batches'
        worth are held (no trickle of small requests while the writes are full), else none."""
        batch = self._settings.archiver_batch
        free = self._settings.archiver_concurrency * batch - self.held
        return free if free >= batch else 0

    def deliver(self, subject: str, reply: str, data: bytes) -> None:
        self._filling.append((subject, reply, data))
        self.held += 1
        if len(self._filling) >= self._settings.archiver_batch:
            self.cut()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(COALESCE_S, self.cut)

    def cut(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._filling = self._filling, []
        if not batch:
            return
        self._metrics.held.inc(len(batch))
        task = asyncio.get_running_loop().create_task(
            write_and_ack(self._store, self._nc, batch, self._stop, self._metrics,
                          self._settings.archiver_ack_wait_s / PROGRESS_PER_ACK_WAIT))
        self.writing.add(task)
        task.add_done_callback(functools.partial(self._done, count=len(batch)))

    def _done(self, task: asyncio.Task[None], count: int) -> None:
        self.writing.discard(task)
        was_full = self.room() == 0
        self.held -= count
        if not task.cancelled() and task.exception() is not None and self.failed is None:
            self.failed = task.exception()  # a write that crashed stops us
            self.crashed.set()
        if was_full:  # the pullers stopped asking for want of room: they may ask again (else they never stopped)
            for puller in self.pullers:
                puller.wake()

    async def finish(self) -> None:
        self.cut()
        while self.writing:
            await asyncio.wait(list(self.writing))


async def archive(settings: Settings, store: Archive, nc: BusClient, stop: asyncio.Event,
                  metrics: ArchiverMetrics | None = None) -> None:
    """Pull from every message stream's shared ``archiver`` consumer until ``stop``; then finish (ack)
    the batches being written, or give them back (nak) if the store is down, so another archiver
    gets them at once."""
    metrics = metrics or ArchiverMetrics()
    js = nc.jetstream()
    await bus.ensure_stream(js, settings)
    for stream in bus.message_streams(settings):
        await bus.ensure_archiver_consumer(js, settings, stream)
    log.info("archiver consuming %s, %d batches at a time", bus.message_streams(settings),
             settings.archiver_concurrency)
    repairs = await serve_repairs(settings, store, nc)
    batcher = Batcher(settings, store, nc, stop, metrics)
    batcher.pullers = [Puller(nc, stream, bus.ARCHIVER, batch=settings.archiver_batch, expires_s=PULL_EXPIRES_S,
                              room=batcher.room, deliver=batcher.deliver, linger_s=settings.archiver_linger_s)
                       for stream in bus.message_streams(settings)]
    halt = asyncio.Event()  # stop, or a write crashed
    loop = asyncio.get_running_loop()
    relay = [loop.create_task(_set_when(stop, halt)), loop.create_task(_set_when(batcher.crashed, halt))]
    pulling = [loop.create_task(p.run(halt)) for p in batcher.pullers]
    try:
        await asyncio.gather(*pulling)
        await batcher.finish()
        if batcher.failed is not None:
            raise batcher.failed
        await nc.flush(timeout=2)
    finally:
        await cancel_and_wait(*relay, *pulling, *batcher.writing)
        with contextlib.suppress(Exception):
            await repairs.unsubscribe()


async def serve_repairs(settings: Settings, store: Archive, nc: BusClient) -> Any:
    """Answer ``arc.repair`` (``bus.repair``): read the asked sequences from the stream, write them to the
    store. One archiver of the queue group takes each request; a failure is logged (the next reader that
    meets the hole asks again)."""
    async def handle(msg: Msg) -> None:
        asked = parse_repair(msg.data)
        if asked is None or asked[0] not in local_shards(settings):
            return
        shard, seqs = asked
        try:
            rows = []
            for seq in seqs:
                hit = await message_at(nc, settings, shard, seq)
                if hit is not None:
                    rows.append(decode_payload(pack(shard, seq), conversation_of_message(hit[0]), hit[1]))
            await store.put_messages(rows)
            if entries_of(rows):
                await store.apply_actions(entries_of(rows))
            log.warning("repaired %d messages of shard %d in the store from the stream", len(rows), shard)
        except Exception as err:
            log.warning("could not repair %d messages of shard %d: %s", len(seqs), shard, err)

    return await nc.subscribe(REPAIR_SUBJECT, queue=bus.ARCHIVER, cb=handle)


async def _set_when(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


async def watch_lag(settings: Settings, nc: BusClient, metrics: ArchiverMetrics) -> None:
    """How far history is behind the streams (the shared consumers' pending counts), every few seconds."""
    js = nc.jetstream()
    while True:
        try:
            pending = [(await js.consumer_info(stream, bus.ARCHIVER)).num_pending or 0
                       for stream in bus.message_streams(settings)]
            metrics.lag.set(sum(pending))
        except Exception as err:  # NATS away: the gauge keeps its last value
            log.debug("lag: %s", err)
        await asyncio.sleep(5)


def tune_gc() -> None:
    """Started up: what exists now (modules, the driver's metadata) lives as long as the process, so the GC
    stops walking it (``gc.freeze``), and collects the young generation every ``GC_YOUNG`` allocations."""
    gc.collect()
    gc.freeze()
    _, old, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG, old, oldest)


async def run_archiver(settings: Settings) -> None:
    store = open_store(settings)
    await store.migrate()  # the store's thread has started: it keeps the default priority (ADR 0060)
    step_aside(settings.archiver_nice)  # the rest of the archiver, and the threads it starts from here on
    nc = await bus.connect(settings, "archiver")
    tune_gc()
    metrics = ArchiverMetrics()
    app = web.Application()
    probe = StoreProbe(store, registry=metrics.registry)
    probe.start()
    serve_health(app, ready=lambda: nc.is_connected and probe.ok, registry=metrics.registry)
    runner = await serve(app, settings.archiver_host, settings.archiver_port)
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(archive(settings, store, nc, stop, metrics))
    live = asyncio.get_running_loop().create_task(archive_live(settings, store, nc, stop))
    lag = asyncio.get_running_loop().create_task(watch_lag(settings, nc, metrics))
    waiter = asyncio.get_running_loop().create_task(run_until_stopped())
    await asyncio.wait([task, live, waiter], return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    await cancel_and_wait(lag, waiter)
    await probe.stop()
    await asyncio.gather(task, live, return_exceptions=True)
    await runner.cleanup()
    await bus.close_quietly(nc)
    await store.close()
    for done in (task, live):  # either archiver failing stops the process with its error
        if done.done() and not done.cancelled() and done.exception():
            raise done.exception()  # type: ignore[misc]
