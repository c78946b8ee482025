"""The API's shared middlewares, on an app with no store or bus behind it (routes that need none)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer
from parley.api.app import make_app

from parley.settings import Settings


async def test_405_names_the_allowed_methods():
    """Found by the HTTP fuzzer: RFC 9110 requires ``Allow`` on a 405; the JSON error used to drop it."""
    app = make_app(Settings(), store=None, nc=None)  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        for method, path, allowed in [("TRACE", "/", {"GET", "HEAD"}), ("DELETE", "/v1/signup", {"POST"}),
                                      ("PUT", "/v1/me", {"GET", "HEAD", "PATCH"})]:
            resp = await client.request(method, path)
            assert resp.status == 405 and (await resp.json())["code"] == "method_not_allowed"
            assert {m.strip() for m in resp.headers["Allow"].split(",")} == allowed, path
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
