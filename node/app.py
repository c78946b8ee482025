"""Wires an edge node: settings → store → NATS → EdgeNode → aiohttp, plus its heartbeats."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

from aiohttp import web
from nats.js.kv import KeyValue

from node.server import EdgeNode
from parley import bus
from parley.presence_bus import open_buckets
from parley.registry import NodeRecord, open_bucket
from parley.runtime import StoreProbe, run_until_stopped, serve, serve_health
from parley.settings import Settings
from parley.store import open_store

log = logging.getLogger("parley.node")


def node_id_of(settings: Settings) -> str:
    return settings.node_id or f"{socket.gethostname()}-{settings.node_port}"


async def run_node(settings: Settings) -> None:
    node_id = node_id_of(settings)
    store = open_store(settings)
    await store.migrate()
    node: EdgeNode | None = None

    async def reconnected() -> None:
        if node is not None:
            await node.on_reconnected()

    nc = await bus.connect(settings, f"node {node_id}", reconnected_cb=reconnected)
    js = nc.jetstream()
    await bus.ensure_stream(js, settings)
    kv = await open_bucket(js, settings)
    node = EdgeNode(settings, store, nc, node_id)
    node.presence_buckets = await open_buckets(js, settings)

    app = web.Application()
    app.router.add_get("/ws", node.handle_ws)
    probe = StoreProbe(store)
    probe.start()
    serve_health(app, ready=lambda: nc.is_connected and probe.ok and not node.draining,
                 registry=node.metrics.registry)
    runner = await serve(app, settings.node_host, settings.node_port)
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
        reported = 0.0
        while True:
            node.metrics.connections.set(len(node.hub))
            node.metrics.users.set(len(node.hub.users()))
            try:
                await beat(node.draining)
                if time.monotonic() - reported >= settings.presence_beat_s:
                    reported = time.monotonic()
                    await node.presence.beat()
                await node.flush_cursors()
            except Exception as err:  # keep beating through NATS or store trouble
                log.warning("node duties: %s", err)
                kv = await reopen(kv)
            await asyncio.sleep(min(settings.node_beat_s, settings.cursor_flush_s, settings.presence_beat_s))

    log.info("node %s listening on %s (region %s)", node_id, settings.ws_url(), settings.region)
    task = asyncio.get_running_loop().create_task(duties())
    try:
        await run_until_stopped()
    finally:
        node.draining = True
        task.cancel()
        try:
            await kv.delete(node_id)
        except Exception:
            pass
        await node.close_all()
        await probe.stop()
        await runner.cleanup()
        await bus.close_quietly(nc)
        await store.close()
