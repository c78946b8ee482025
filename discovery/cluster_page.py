"""The live cluster page (``discovery/page/``) and its data, ``GET /v1/cluster``, served by discovery.

Served by discovery so its only data source is same-origin. The policy (no inline script or style, nothing
from elsewhere, flat asset names) is ``parley/webfiles.py``'s, shared with the chat client; the page
renders every text with ``textContent`` and draws its charts on <canvas>. The handlers only read what the
sampler cached (discovery/overview.py assembles it): a browser's request never reaches another process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from parley.discovery.overview import cluster_body, health
from parley.discovery.sampler import TrafficSampler
from parley.discovery.timeline import NodeView

from parley.settings import Settings
from parley.webfiles import StaticSite

PAGE_DIR = Path(__file__).resolve().parent / "page"
SITE = StaticSite(PAGE_DIR / "index.html", PAGE_DIR, connect_src="'self'",
                  missing=lambda why: web.HTTPNotFound(text=why))
NO_STORE = {"Cache-Control": "no-store"}


def add_routes(r: web.UrlDispatcher, settings: Settings, shown: Callable[[float, float], list[NodeView]],
               sampler: TrafficSampler) -> None:
    """``shown(now, ttl)``: the nodes to show (discovery's directory and its timeline)."""

    async def cluster(_: web.Request) -> web.Response:
        sampler.want()
        now = time.time()
        body = cluster_body(settings, shown(now, settings.node_ttl_s), sampler.history, sampler.processes,
                            sampler.bus, sampler.alerts, now=now, interval_s=sampler.interval_s,
                            window_s=sampler.window_s)
        return web.json_response(body, headers=NO_STORE)

    async def cluster_health(_: web.Request) -> web.Response:
        sampler.want()
        body = health(settings, sampler.history, sampler.processes, sampler.bus, sampler.alerts)
        return web.json_response({"now": round(time.time(), 3), **body}, headers=NO_STORE)

    r.add_get("/v1/cluster", cluster)
    r.add_get("/v1/cluster/health", cluster_health)
    SITE.add_routes(r, "/cluster", "/cluster/static")
