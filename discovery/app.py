"""The discovery service: watches the node registry and answers placement requests over HTTP.

GET /v1/place?region=R → {"node": {...}, "fallbacks": [...]} (503 no_node when none is eligible)
GET /v1/nodes          → every node it knows, with freshness, for operators
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from nats.js.kv import KeyValue

from discovery.placement import eligible, place_client
from parley import bus
from parley.registry import NodeRecord, open_bucket
from parley.runtime import run_until_stopped, serve, serve_health
from parley.settings import Settings

log = logging.getLogger("parley.discovery")


class NodeDirectory:
    """The registry as this process last saw it; refreshed by a KV watch."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeRecord] = {}

    def apply(self, key: str, value: bytes | None) -> None:
        if not value:
            self.nodes.pop(key, None)
            return
        try:
            self.nodes[key] = NodeRecord.from_json(value)
        except (ValueError, TypeError) as err:
            log.warning("ignoring bad registry entry %s: %s", key, err)

    async def follow(self, kv: KeyValue) -> None:
        while True:
            try:
                watcher = await kv.watchall()
                async for entry in watcher:
                    if entry is None:
                        continue
                    self.apply(entry.key, entry.value if entry.operation is None else None)
            except Exception as err:
                log.warning("registry watch: %s; retrying", err)
                await asyncio.sleep(1)


def make_app(settings: Settings, directory: NodeDirectory) -> web.Application:
    async def place(request: web.Request) -> web.Response:
        region = request.query.get("region") or settings.region
        picks = place_client(directory.nodes.values(), region, now=time.time(), ttl=settings.node_ttl_s)
        if not picks:
            return web.json_response({"code": "no_node", "message": "no edge node is available"}, status=503)
        return web.json_response({"node": picks[0].public(), "fallbacks": [n.public() for n in picks[1:]]})

    async def nodes(_: web.Request) -> web.Response:
        now = time.time()
        live = {n.id for n in eligible(directory.nodes.values(), now=now, ttl=settings.node_ttl_s)}
        body = [{**n.public(), "connections": n.connections, "max_connections": n.max_connections,
                 "draining": n.draining, "age_s": round(now - n.updated_at, 2), "eligible": n.id in live}
                for n in sorted(directory.nodes.values(), key=lambda n: n.id)]
        return web.json_response({"nodes": body})

    app = web.Application()
    app.router.add_get("/v1/place", place)
    app.router.add_get("/v1/nodes", nodes)
    return app


async def run_discovery(settings: Settings) -> None:
    nc = await bus.connect(settings, "discovery")
    kv = await open_bucket(nc.jetstream(), settings)
    directory = NodeDirectory()
    watch = asyncio.get_running_loop().create_task(directory.follow(kv))
    app = make_app(settings, directory)
    serve_health(app, ready=lambda: nc.is_connected)
    runner = await serve(app, settings.discovery_host, settings.discovery_port, shutdown_timeout=1)
    log.info("discovery on http://%s:%s", settings.discovery_host, settings.discovery_port)
    try:
        await run_until_stopped()
    finally:
        watch.cancel()
        await runner.cleanup()
        await nc.close()
