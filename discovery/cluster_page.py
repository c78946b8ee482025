"""The live cluster page (``discovery/page/``): one HTML file and its static files, served by discovery.

Served by discovery so its only data source, ``GET /v1/cluster``, is same-origin. Like the chat client
(api/web.py) the Content-Security-Policy allows no inline script or style and nothing from elsewhere; the
page renders every text with ``textContent`` and draws its charts on <canvas>. Files are read per request
from the source tree (an editable install leaves it in place); asset names are flat, so none climbs out.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

PAGE_DIR = Path(__file__).resolve().parent / "page"
ASSET_RE = re.compile(r"^[a-z0-9-]{1,64}\.(js|css|svg)$")
TYPES = {"html": "text/html", "js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def file_response(path: Path) -> web.Response:
    if not path.is_file():
        raise web.HTTPNotFound(text=f"{path.name} is not there (the page lives in {PAGE_DIR})")
    kind = TYPES[path.suffix.lstrip(".")]
    return web.Response(body=path.read_bytes(), content_type=kind, charset="utf-8", headers=HEADERS)


async def page(_: web.Request) -> web.Response:
    return file_response(PAGE_DIR / "index.html")


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if not ASSET_RE.match(name):
        raise web.HTTPNotFound(text="no such file")
    return file_response(PAGE_DIR / name)


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/cluster", page)
    r.add_get("/cluster/static/{name}", asset)
