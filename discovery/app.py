"""The discovery service: watches the node registry and answers placement requests over HTTP.

GET /v1/place?region=R → {"node": {...}, "fallbacks": [...]} (503 no_node when none is eligible); each pick
                        reserves a slot on its node until the node's next beat (placement.py, reservations.py)
GET /v1/nodes          → every node it knows, with freshness, for operators
GET /v1/cluster        → the cluster page's data: nodes by region (gone ones for a while) with their traffic,
                         consumer lag, and the health of the API, workers, NATS/JetStream and alerts
GET /v1/cluster/health → its ``health`` part alone
GET /cluster           → the live cluster page (discovery/page/), which polls /v1/cluster
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from nats.js.kv import KeyValue
from parley.discovery import cluster_page
from parley.discovery.placement import eligible, place_client
from parley.discovery.probes import jetstream
from parley.discovery.reservations import Reservations
from parley.discovery.sampler import TrafficSampler
from parley.discovery.timeline import NodeTimeline, NodeView

from parley import bus, tls
from parley.metrics import DiscoveryMetrics
from parley.registry import NodeRecord, open_bucket
from parley.runtime import run_until_stopped, serve, serve_health
from parley.settings import Settings
from parley.tasks import cancel_and_wait

METRICS: web.AppKey[DiscoveryMetrics] = web.AppKey("metrics", DiscoveryMetrics)
COUNT_NODES: web.AppKey[Callable[[], None]] = web.AppKey("count_nodes")
SAMPLER: web.AppKey[TrafficSampler] = web.AppKey("sampler", TrafficSampler)
log = logging.getLogger("parley.discovery")


class NodeDirectory:
    """The registry as this process last saw it; refreshed by a KV watch.

    A killed node's entry expires from the bucket by its TTL, and a KV watch is not told of expiries:
    entries not rewritten for ``forget_s`` are forgotten here (until then they show as stale). ``timeline``
    remembers deleted entries for the cluster page (``nodes`` holds the current ones only)."""

    def __init__(self, forget_s: float = 600.0, linger_s: float = 300.0) -> None:
        self.nodes: dict[str, NodeRecord] = {}
        self.forget_s = forget_s
        self.timeline = NodeTimeline(linger_s)

    def apply(self, key: str, value: bytes | None, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if not value:
            if key in self.nodes:
                self.timeline.deleted(self.nodes.pop(key), now)
        else:
            try:
                record = NodeRecord.from_json(value)
            except (ValueError, TypeError) as err:
                log.warning("ignoring bad registry entry %s: %s", key, err)
            else:
                self.nodes[key] = record
                self.timeline.seen(record)
        self.prune(now)

    def prune(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        for gone in [k for k, n in self.nodes.items() if n.updated_at < now - self.forget_s]:
            del self.nodes[gone]
        self.timeline.prune(now)

    def shown(self, now: float, ttl: float) -> list[NodeView]:
        """The nodes the cluster page shows: current ones and, for a while, those that left or fell silent."""
        self.prune(now)  # also when no node beats any more (nothing to apply)
        return self.timeline.view(self.nodes, now=now, ttl=ttl)

    async def follow(self, open_kv: Callable[[], Awaitable[KeyValue]], quiet_s: float) -> None:
        """Watch the registry. Nodes rewrite their entries every few seconds, so a watch that stays quiet
        for ``quiet_s`` is dead (a NATS restart loses the memory bucket; the nodes re-create it and the
        old watch never hears of it): open the bucket again and watch from the start."""
        while True:
            watcher = None
            try:
                kv = await open_kv()
                watcher = await kv.watchall()
                while True:
                    entry = await watcher.updates(timeout=quiet_s)  # type: ignore[no-untyped-call]  # nats-py
                    if entry is not None:
                        self.apply(entry.key, entry.value if entry.operation is None else None)
            except Exception as err:
                log.warning("registry watch: %s; watching again", err or type(err).__name__)
                if watcher is not None:
                    try:
                        await watcher.stop()  # type: ignore[no-untyped-call]
                    except Exception:
                        pass
                await asyncio.sleep(1)


def make_app(settings: Settings, directory: NodeDirectory, metrics: DiscoveryMetrics | None = None,
             sampler: TrafficSampler | None = None) -> web.Application:
    metrics = metrics or DiscoveryMetrics()
    sampler = sampler or TrafficSampler(settings, lambda: directory.nodes.values(),
                                        keep=lambda: directory.timeline.departed)
    known_regions: set[str] = set()
    reservations = Reservations(hold_s=settings.node_ttl_s, window_s=settings.node_beat_s)
    rng = random.Random()

    async def place(request: web.Request) -> web.Response:
        region, now, known = request.query.get("region") or settings.region, time.time(), directory.nodes.values()
        picks = place_client(known, region, now=now, ttl=settings.node_ttl_s, rng=rng,
                             held=reservations.held(known, now), recent=reservations.recent(now))
        if picks:
            reservations.reserve(picks[0], now)
        # label by the asked region only when a node serves it: a client cannot mint label values
        label = region if region in {n.region for n in directory.nodes.values()} else "other"
        if not picks:
            metrics.placements.labels(label, "none").inc()
            return web.json_response({"code": "no_node", "message": "no edge node is available"}, status=503)
        metrics.placements.labels(label, "local" if picks[0].region == region else "elsewhere").inc()
        return web.json_response({"node": picks[0].public(), "fallbacks": [n.public() for n in picks[1:]]})

    def count_nodes() -> None:
        live = eligible(directory.nodes.values(), now=time.time(), ttl=settings.node_ttl_s)
        counts = {r: 0 for r in known_regions | {n.region for n in directory.nodes.values()}}
        for n in live:
            counts[n.region] += 1
        known_regions.update(counts)
        for region, count in counts.items():
            metrics.nodes.labels(region).set(count)

    async def nodes(_: web.Request) -> web.Response:
        now = time.time()
        directory.prune(now)  # also when no node beats any more (nothing to apply)
        live = {n.id for n in eligible(directory.nodes.values(), now=now, ttl=settings.node_ttl_s)}
        body = [{**n.public(), "connections": n.connections, "max_connections": n.max_connections,
                 "draining": n.draining, "age_s": round(now - n.updated_at, 2), "eligible": n.id in live}
                for n in sorted(directory.nodes.values(), key=lambda n: n.id)]
        return web.json_response({"nodes": body})

    app = web.Application()
    app.router.add_get("/v1/place", place)
    app.router.add_get("/v1/nodes", nodes)
    cluster_page.add_routes(app.router, settings, directory.shown, sampler)
    app[METRICS] = metrics
    app[SAMPLER] = sampler
    app[COUNT_NODES] = count_nodes
    return app


async def run_discovery(settings: Settings) -> None:
    nc = await bus.connect(settings, "discovery")
    directory = NodeDirectory()
    watch = asyncio.get_running_loop().create_task(
        directory.follow(lambda: open_bucket(nc.jetstream(), settings), quiet_s=max(3 * settings.node_beat_s, 5.0)))
    app = make_app(settings, directory, sampler=TrafficSampler(
        settings, lambda: directory.nodes.values(), keep=lambda: directory.timeline.departed,
        bus=lambda timeout: jetstream(nc, timeout)))
    sampling = asyncio.get_running_loop().create_task(app[SAMPLER].run())
    serve_health(app, ready=lambda: nc.is_connected, registry=app[METRICS].registry, before=app[COUNT_NODES])
    runner = await serve(app, settings.discovery_host, settings.discovery_port, shutdown_timeout=1,
                         ssl_context=tls.server_context(settings))
    log.info("discovery on %s://%s:%s", settings.http_scheme(), settings.discovery_host, settings.discovery_port)
    try:
        await run_until_stopped()
    finally:
        await cancel_and_wait(watch, sampling)
        await runner.cleanup()
        await nc.close()
