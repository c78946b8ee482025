"""The browser chat client (``web/``): one page and its static files, served by the API.

Serving it from the API gives the page the API's origin, so its HTTP calls need no CORS; its
WebSockets go to the edge nodes (other ports), which the Content-Security-Policy allows with
``connect-src ws: wss:``. The rest of the policy (no inline script or style, flat asset names) is
``parley/webfiles.py``'s, shared with discovery's live cluster page.

The page's test hooks (``static/testhooks.js``: ``window.parleyTest`` reaches the connection and moves
its clock) are served, and loaded by the page, only with ``PARLEY_WEB_TEST_HOOKS`` on (browser tests).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from parley.api.http import SETTINGS

from parley.errors import NotFound
from parley.webfiles import StaticSite

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
# img-src blob:: attachments come by fetch with the token and show through blob: URLs (ADR 0032)
SITE = StaticSite(WEB_DIR / "index.html", WEB_DIR / "static", connect_src="'self' ws: wss:",
                  missing=lambda why: NotFound(why, code="not_found"), img_src="'self' blob:")


HOOKS = "testhooks.js"
HOOKS_TAG = f'<script type="module" src="/static/{HOOKS}"></script>\n</head>'.encode()


async def page(request: web.Request) -> web.Response:
    response = await SITE.page(request)
    if request.app[SETTINGS].web_test_hooks:
        assert isinstance(response.body, bytes)
        response.body = response.body.replace(b"</head>", HOOKS_TAG, 1)
    return response


async def asset(request: web.Request) -> web.Response:
    if request.match_info["name"] == HOOKS and not request.app[SETTINGS].web_test_hooks:
        raise NotFound("no such file", code="not_found")
    return await SITE.asset(request)


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/", page)
    r.add_get("/static/{name}", asset)
