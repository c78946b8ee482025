"""The browser chat client (``web/``): one page and its static files, served by the API.

Serving it from the API gives the page the API's origin, so its HTTP calls need no CORS; its
WebSockets go to the edge nodes (other ports), which the Content-Security-Policy allows with
``connect-src ws: wss:``. The policy allows no inline script or style at all: the page's code is
only the files under ``web/static`` and it renders user text with ``textContent``. Files are read
per request (they are small; an edited file shows on reload) from the repository's ``web/`` folder,
which an editable install (``pip install -e .``, what ``make`` does) leaves in place.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from parley.errors import NotFound

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
ASSET_RE = re.compile(r"^[a-z0-9-]{1,64}\.(js|css|svg)$")  # flat names only: nothing can climb out
TYPES = {"html": "text/html", "js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def file_response(path: Path) -> web.Response:
    if not path.is_file():
        raise NotFound(f"{path.name} is not there (the web client lives in {WEB_DIR})", code="not_found")
    kind = TYPES[path.suffix.lstrip(".")]
    return web.Response(body=path.read_bytes(), content_type=kind, charset="utf-8", headers=HEADERS)


async def page(_: web.Request) -> web.Response:
    return file_response(WEB_DIR / "index.html")


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if not ASSET_RE.match(name):
        raise NotFound("no such file", code="not_found")
    return file_response(WEB_DIR / "static" / name)


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/", page)
    r.add_get("/static/{name}", asset)
