"""Serving a browser page and its static files from one of our processes (the chat client from the
API, the live cluster page from discovery).

One policy for both: a Content-Security-Policy that allows no inline script or style and nothing
from elsewhere (pages render user text with ``textContent``), flat asset names only (``x.js``,
``x.css``, ``x.svg``: nothing can climb out of the folder), files read per request from the source
tree (small; an edited file shows on reload; an editable install leaves them in place).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

ASSET_RE = re.compile(r"^[a-z0-9-]{1,64}\.(js|css|svg)$")
TYPES = {"html": "text/html", "js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}


def policy(connect_src: str, img_src: str = "'self'") -> str:
    return (f"default-src 'none'; script-src 'self'; style-src 'self'; img-src {img_src}; "
            f"connect-src {connect_src}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class StaticSite:
    """``index`` at one path and the files of ``assets`` under another; ``missing`` makes the 404."""

    def __init__(self, index: Path, assets: Path, *, connect_src: str,
                 missing: Callable[[str], Exception], img_src: str = "'self'") -> None:
        self.index, self.assets, self.missing = index, assets, missing
        self.headers = {
            "Content-Security-Policy": policy(connect_src, img_src),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        }

    def file(self, path: Path) -> web.Response:
        if not path.is_file():
            raise self.missing(f"{path.name} is not there (looked in {path.parent})")
        kind = TYPES[path.suffix.lstrip(".")]
        return web.Response(body=path.read_bytes(), content_type=kind, charset="utf-8", headers=self.headers)

    async def page(self, _: web.Request) -> web.Response:
        return self.file(self.index)

    async def asset(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if not ASSET_RE.match(name):
            raise self.missing("no such file")
        return self.file(self.assets / name)

    def add_routes(self, r: web.UrlDispatcher, page: str, assets: str) -> None:
        """``page`` (e.g. ``/``) and ``assets`` + ``/{name}`` (e.g. ``/static``)."""
        r.add_get(page, self.page)
        r.add_get(assets + "/{name}", self.asset)
