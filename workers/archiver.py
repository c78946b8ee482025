"""The archiver: copies every message from the stream into the store, exactly once in effect.

A durable pull consumer (``archiver``) hands out batches in stream order. A batch is written in one
store call (idempotent: a redelivered message rewrites the same row) and acked only after the write
succeeded. Up to ``archiver_concurrency`` batches are written at once (a store such as Cassandra
takes them in parallel); they may finish in any order, which is safe because the consumer's ack
floor only moves over a contiguous run of acks. While the store is down every batch is retried with
backoff, telling JetStream we are still working on it, so nothing is skipped and nothing is acked
early. The ack floor is then "archived through": nodes read the store below it and the stream above.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.client import JetStreamContext

from parley import bus
from parley.bus import BusClient
from parley.bus.outage import is_transient
from parley.errors import Unavailable
from parley.messages import decode_payload
from parley.metrics import ArchiverMetrics
from parley.runtime import StoreProbe, run_until_stopped, serve, serve_health
from parley.settings import Settings
from parley.shards import conversation_of_message, pack, shard_of_message, stream_of
from parley.store import Archive, StoredMessage, open_store

log = logging.getLogger("parley.archiver")
MAX_BACKOFF_S = 5.0
COALESCE_S = 0.02  # history lags the stream by this much more; sync and history read the tail anyway


def decode_batch(msgs: list[Msg]) -> list[StoredMessage]:
    out = []
    for m in msgs:
        try:
            out.append(decode_payload(pack(shard_of_message(m.subject), m.metadata.sequence.stream),
                                      conversation_of_message(m.subject), m.data))
        except (ValueError, KeyError, TypeError) as err:  # never written by a node; keep it out of history
            log.error("skipping undecodable message %s on %s: %s", m.metadata.sequence.stream, m.subject, err)
    return out


async def fill_batch(sub: JetStreamContext.PullSubscription, room: int, window_s: float) -> list[Msg]:
    """More messages for up to ``window_s``: one transaction (one fsync) per batch, not per trickle."""
    more: list[Msg] = []
    deadline = asyncio.get_running_loop().time() + window_s
    while len(more) < room:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0.001:
            break
        try:
            more += await sub.fetch(batch=room - len(more), timeout=left)
        except Exception as err:  # nothing more now, or an election (503): write what we have
            if not is_transient(err):
                raise
            break
    return more


async def write_with_retry(store: Archive, msgs: list[Msg], stop: asyncio.Event,
                           metrics: ArchiverMetrics | None = None) -> bool:
    rows = decode_batch(msgs)
    metrics = metrics or ArchiverMetrics()
    delay = 0.1
    while not stop.is_set():
        try:
            began = time.perf_counter()
            await store.put_messages(rows)
            metrics.write_seconds.observe(time.perf_counter() - began)
            metrics.archived.inc(len(rows))
            return True
        except Unavailable as err:
            metrics.store_errors.inc()
            log.warning("store unavailable (%s); retrying %d messages in %.1fs", err.message, len(rows), delay)
            for m in msgs:
                await m.in_progress()
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, MAX_BACKOFF_S)
    return False


async def write_and_ack(store: Archive, msgs: list[Msg], stop: asyncio.Event, metrics: ArchiverMetrics) -> None:
    if await write_with_retry(store, msgs, stop, metrics):
        for m in msgs:
            await m.ack()
    else:  # stopping before the write succeeded: hand them back now, not after ack_wait
        for m in msgs:
            await m.nak()


async def room_for_one_more(writing: set[asyncio.Task[None]], limit: int) -> None:
    """Wait until fewer than ``limit`` batches are being written; a write that crashed stops us."""
    while len(writing) >= limit:
        done, _ = await asyncio.wait(writing, return_when=asyncio.FIRST_COMPLETED)
        writing.difference_update(done)
        for task in done:
            task.result()


async def archive(settings: Settings, store: Archive, nc: BusClient, stop: asyncio.Event,
                  metrics: ArchiverMetrics | None = None) -> None:
    """Archive every shard: one pull loop per shard stream, each with its own batches in flight."""
    metrics = metrics or ArchiverMetrics()
    js = nc.jetstream()
    await bus.ensure_stream(js, settings)
    await bus.ensure_archiver_consumer(js, settings)
    await asyncio.gather(*(archive_shard(settings, store, nc, shard, stop, metrics)
                           for shard in range(settings.shards)))


async def archive_shard(settings: Settings, store: Archive, nc: BusClient, shard: int, stop: asyncio.Event,
                        metrics: ArchiverMetrics) -> None:
    js = nc.jetstream()
    stream = stream_of(settings.stream_name, shard)
    sub = await js.pull_subscribe_bind(consumer=bus.ARCHIVER, stream=stream)
    log.info("archiver consuming %s, %d batches at a time", stream, settings.archiver_concurrency)
    writing: set[asyncio.Task[None]] = set()
    try:
        while not stop.is_set():
            await room_for_one_more(writing, settings.archiver_concurrency)
            try:
                msgs = await sub.fetch(batch=settings.archiver_batch, timeout=1)
            except (NatsTimeout, TimeoutError):  # nats-py raises either when a fetch finds nothing
                continue
            except Exception as err:  # NATS away: the client reconnects by itself
                log.warning("fetch failed: %s", err)
                await asyncio.sleep(0.5)
                continue
            msgs += await fill_batch(sub, settings.archiver_batch - len(msgs), COALESCE_S)
            writing.add(asyncio.get_running_loop().create_task(write_and_ack(store, msgs, stop, metrics)))
        await room_for_one_more(writing, 1)
        await nc.flush(timeout=2)
    finally:
        for task in writing:
            task.cancel()
        await asyncio.gather(*writing, return_exceptions=True)
        await sub.unsubscribe()


async def watch_lag(settings: Settings, nc: BusClient, metrics: ArchiverMetrics) -> None:
    """How far history is behind the stream (the consumer's pending count), every few seconds."""
    js = nc.jetstream()
    while True:
        try:
            pending = 0
            for shard in range(settings.shards):
                info = await js.consumer_info(stream_of(settings.stream_name, shard), bus.ARCHIVER)
                pending += info.num_pending or 0
            metrics.lag.set(pending)
        except Exception as err:  # NATS away: the gauge keeps its last value
            log.debug("lag: %s", err)
        await asyncio.sleep(5)


async def run_archiver(settings: Settings) -> None:
    store = open_store(settings)
    await store.migrate()
    nc = await bus.connect(settings, "archiver")
    metrics = ArchiverMetrics()
    app = web.Application()
    probe = StoreProbe(store, registry=metrics.registry)
    probe.start()
    serve_health(app, ready=lambda: nc.is_connected and probe.ok, registry=metrics.registry)
    runner = await serve(app, settings.archiver_host, settings.archiver_port)
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(archive(settings, store, nc, stop, metrics))
    lag = asyncio.get_running_loop().create_task(watch_lag(settings, nc, metrics))
    waiter = asyncio.get_running_loop().create_task(run_until_stopped())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    lag.cancel()
    await probe.stop()
    await asyncio.gather(task, lag, return_exceptions=True)
    waiter.cancel()
    await runner.cleanup()
    await bus.close_quietly(nc)
    await store.close()
    if task.done() and task.exception():
        raise task.exception()  # type: ignore[misc]
