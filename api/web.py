"""The browser chat client (``web/``): one page and its static files, served by the API.

Serving it from the API gives the page the API's origin, so its HTTP calls need no CORS; its
WebSockets go to the edge nodes (other ports), which the Content-Security-Policy allows with
``connect-src ws: wss:``. The rest of the policy (no inline script or style, flat asset names) is
``parley/webfiles.py``'s, shared with discovery's live cluster page.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from parley.errors import NotFound
from parley.webfiles import StaticSite

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
SITE = StaticSite(WEB_DIR / "index.html", WEB_DIR / "static", connect_src="'self' ws: wss:",
                  missing=lambda why: NotFound(why, code="not_found"))


def add_routes(r: web.UrlDispatcher) -> None:
    SITE.add_routes(r, "/", "/static")
