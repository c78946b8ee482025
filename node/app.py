"""Wires an edge node: settings → store → NATS → EdgeNode → aiohttp, plus its heartbeats."""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import signal
import socket
import time
from collections.abc import Coroutine
from functools import partial
from typing import Any

import orjson
from aiohttp import web
from nats.aio.msg import Msg
from nats.js.kv import KeyValue
from parley.node.attachments import AttachmentClaims
from parley.node.cadence import Cadence
from parley.node.drain import destinations, drain
from parley.node.live.hall import LiveHall
from parley.node.live.room_screens import build_screens
from parley.node.server import EdgeNode

from parley import bus, tls
from parley.attachments.catalog import Catalog
from parley.bus import buckets, ensure
from parley.bus.live import Rooms, ensure_live
from parley.ids import node_control_subject
from parley.loopwatch import LoopWatch
from parley.presence_bus import open_buckets, read_presence
from parley.registry import NodeRecord, open_bucket, read_all
from parley.runtime import StoreProbe, serve, serve_health
from parley.settings import Settings
from parley.store import open_store
from parley.store.deadline import with_deadline
from parley.tasks import cancel_and_wait

log = logging.getLogger("parley.node")


GC_THRESHOLDS = (20_000, 20, 10)  # young objects before a collection (Python's default: 700, 10, 10)


def collect_less() -> None:
    """The cyclic collector's start-up objects frozen (never scanned again) and its young generation larger: at
    the default 700 a connect storm spent ~10% of the node's CPU in collections, most in full ones walking every
    connection's objects each time they grew by a quarter (docs/adr/0039)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def node_id_of(settings: Settings) -> str:
    return settings.node_id or f"{socket.gethostname()}-{settings.node_port}"


async def run_node(settings: Settings) -> None:
    node_id = node_id_of(settings)
    store = with_deadline(open_store(settings), settings.store_deadline_s)
    await store.migrate()
    node: EdgeNode | None = None

    async def reconnected() -> None:
        if node is not None:
            await node.on_reconnected()

    nc = await bus.connect(settings, f"node {node_id}", reconnected_cb=reconnected)
    js = nc.jetstream()
    await bus.ensure_stream(js, settings)
    kv = await open_bucket(js, settings)
    await ensure.ensure_bucket(js, buckets.live_viewers(settings))  # the hall's counts for the API (ADR 0021)
    node = EdgeNode(settings, store, nc, node_id)
    node.start()
    online, seen = await open_buckets(js, settings)
    node.frames.presence = partial(read_presence, online, seen)
    screens = build_screens(settings, nc, node.metrics.registry)
    await _each(screens, "start")
    hall = node.frames.live = LiveHall(settings, nc, Rooms(await ensure_live(js, settings)), store, node.metrics,
                                       screens, node=node_id)
    node.frames.attachments = AttachmentClaims(await Catalog.open(js, settings))

    app = web.Application()
    app.router.add_get("/ws", node.handle_ws)
    probe = StoreProbe(store, registry=node.metrics.registry)
    probe.start()
    serve_health(app, ready=lambda: nc.is_connected and probe.ok and not node.draining,
                 registry=node.metrics.registry, before=hall.refresh_metrics)
    runner = await serve(app, settings.node_host, settings.node_port, ssl_context=tls.server_context(settings))
    collect_less()
    watch = LoopWatch(node.metrics.loop_lag, node.metrics.gc_seconds)  # the loop's stalls on the page (ADR 0040)
    watch.start()
    started = time.time()

    async def beat(draining: bool = False) -> None:
        record = NodeRecord(node_id, settings.ws_url(), settings.region, len(node.hub),
                            settings.max_connections, draining, time.time(), started)
        await kv.put(node_id, record.as_json())

    async def reopen(current: KeyValue) -> KeyValue:
        """NATS restarted and took the memory bucket with it: create it again (or keep the old handle)."""
        try:
            return await open_bucket(js, settings)
        except Exception:
            return current

    async def duties() -> None:
        nonlocal kv
        wakeup_s = min(settings.node_beat_s, settings.cursor_flush_s, settings.presence_beat_s)
        # each duty on its own period (node/cadence.py): the registry put every node_beat_s, not every wakeup
        registry, presence = Cadence(settings.node_beat_s, wakeup_s), Cadence(settings.presence_beat_s, wakeup_s)
        while True:
            node.metrics.connections.set(len(node.hub))
            node.metrics.users.set(node.hub.user_count())
            try:
                if registry.due(time.monotonic()):
                    await beat(node.draining)
                if presence.due(time.monotonic()):
                    await node.presence.beat()
                await node.flush_cursors()
                await hall.tell_counts()
            except Exception as err:  # keep beating through NATS or store trouble
                log.warning("node duties: %s", err)
                kv = await reopen(kv)
            await asyncio.sleep(wakeup_s)

    async def drain_node() -> None:
        node.draining = True
        node.metrics.draining.set(1)
        try:
            await beat(True)  # discovery stops placing clients here
            records = await read_all(kv)
        except Exception as err:  # NATS away: drain anyway; clients ask discovery where to go
            log.warning("drain: registry unavailable (%s); clients will ask discovery", err)
            records = []
        targets = destinations(records, node_id, settings.region, time.time(), settings.node_ttl_s)
        public = [t.public() for t in targets]
        node.moved_to = (public[0] if public else None, public[1:3])
        await asyncio.sleep(min(0.25, settings.node_beat_s))  # discovery's registry watch hears of it

        async def gone() -> None:
            while len(node.hub):
                await asyncio.sleep(0.05)

        left = await drain(lambda: list(node.hub), targets, spread_s=settings.drain_spread_s if targets else 0.0,
                           timeout_s=settings.drain_timeout_s, gone=gone)
        log.info("drained: %d connections left at the deadline", left)

    stop, drain_asked = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)  # stop now: connections close with 1001
    loop.add_signal_handler(signal.SIGTERM, drain_asked.set)  # drain first (what orchestrators send)

    async def on_ctl(msg: Msg) -> None:
        try:
            op = orjson.loads(msg.data or b"{}").get("op")
        except orjson.JSONDecodeError:
            op = None
        if op == "drain":
            drain_asked.set()
            answer = {"node": node_id, "draining": True, "connections": len(node.hub),
                      "timeout_s": settings.drain_timeout_s}
        else:
            answer = {"node": node_id, "error": "unknown_op", "message": "ops: drain"}
        await msg.respond(orjson.dumps(answer))

    ctl = await nc.subscribe(node_control_subject(node_id), cb=on_ctl)
    log.info("node %s listening on %s (region %s)", node_id, settings.ws_url(), settings.region)
    task = loop.create_task(duties())
    try:
        await first_of(stop.wait(), drain_asked.wait())
        if not stop.is_set():
            log.info("node %s draining", node_id)
            await first_of(drain_node(), stop.wait())  # a SIGINT cuts the drain short
    finally:
        try:
            await ctl.unsubscribe()
        except Exception:
            pass
        node.draining = True
        await cancel_and_wait(task)  # a flush it was in put its batch back
        try:
            await kv.delete(node_id)
        except Exception:
            pass
        await node.close_all()
        await _each(screens, "stop")
        await probe.stop()
        await watch.stop()
        await runner.cleanup()
        await bus.close_quietly(nc)
        await store.close()


async def _each(screens: list[Any], method: str) -> None:
    """Start or stop the screens that have watchers (a screen may have neither method; either may be async)."""
    for screen in screens:
        call = getattr(screen, method, None)
        if call is not None and inspect.isawaitable(result := call()):
            await result


async def first_of(*aws: Coroutine[Any, Any, object]) -> None:
    """Wait until one of ``aws`` finishes (re-raising its error); cancel the rest."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            t.result()
    finally:
        await cancel_and_wait(*tasks)
