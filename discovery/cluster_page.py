"""The live cluster page (``discovery/page/``): one HTML file and its static files, served by discovery.

Served by discovery so its only data source, ``GET /v1/cluster``, is same-origin. The policy (no
inline script or style, nothing from elsewhere, flat asset names) is ``parley/webfiles.py``'s, shared
with the chat client; the page renders every text with ``textContent`` and draws its charts on <canvas>.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from parley.webfiles import StaticSite

PAGE_DIR = Path(__file__).resolve().parent / "page"
SITE = StaticSite(PAGE_DIR / "index.html", PAGE_DIR, connect_src="'self'",
                  missing=lambda why: web.HTTPNotFound(text=why))


def add_routes(r: web.UrlDispatcher) -> None:
    SITE.add_routes(r, "/cluster", "/cluster/static")
