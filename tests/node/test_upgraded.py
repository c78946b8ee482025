"""``node/upgraded.py`` reaches into aiohttp's request handler and WebSocket writer: fail loudly when an upgrade moves
what it relies on, and show a connection behaves the same with what it lets go of gone."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer
from parley.node.upgraded import CHECKED, let_go


def test_this_aiohttp_is_one_the_adapter_was_checked_against():
    minor = ".".join(aiohttp.__version__.split(".")[:2])
    assert minor in CHECKED, f"aiohttp {aiohttp.__version__}: re-read node/upgraded.py against it, then add {minor}"


@asynccontextmanager
async def echo_server(trim: bool, seen: list[tuple[Any, Any, bool]]) -> AsyncIterator[TestClient[Any, Any]]:
    """A WebSocket echo on 127.0.0.1 (port 0); ``trim``: ``let_go`` after the upgrade. ``seen``: each connection's
    (request handler, writer, what ``let_go`` said)."""

    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        seen.append((request.protocol, ws._writer, let_go(request, ws) if trim else False))
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/ws", handle)
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_after_an_upgrade_the_parser_queue_and_mask_bits_are_let_go():
    seen: list[tuple[Any, Any, bool]] = []
    async with echo_server(True, seen) as client:
        first, second = await client.ws_connect("/ws"), await client.ws_connect("/ws")
        await first.send_str("x")
        assert (await first.receive()).data == "x"
        await second.send_str("y")
        assert (await second.receive()).data == "y"
        (h1, w1, ok1), (h2, w2, ok2) = seen
        assert ok1 and ok2
        assert h1._parser is None and h1._messages == ()
        assert w1.get_random_bits is w2.get_random_bits  # one shared partial, not one per connection
        await first.close()
        await second.close()


async def test_a_handler_not_in_the_expected_state_is_left_alone():
    seen: list[tuple[Any, Any, bool]] = []
    async with echo_server(True, seen) as client:
        ws = await client.ws_connect("/ws")
        await ws.send_str("x")
        await ws.receive()
        handler, writer, _ = seen[0]
        handler._messages = __import__("collections").deque()
        handler._payload_parser, parser = None, handler._payload_parser  # as if the upgrade were declined
        try:
            assert let_go(_Req(handler), _Ws(writer)) is False  # type: ignore[arg-type]
            assert type(handler._messages).__name__ == "deque"
        finally:
            handler._payload_parser = parser
        await ws.close()


class _Req:
    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol


class _Ws:
    def __init__(self, writer: Any) -> None:
        self._writer = writer


@pytest.mark.parametrize("trim", [False, True])
async def test_a_trimmed_connection_carries_frames_both_ways_pings_and_closes_as_before(trim: bool):
    seen: list[tuple[Any, Any, bool]] = []
    async with echo_server(trim, seen) as client:
        ws = await client.ws_connect("/ws", autoping=False)
        sizes = [0, 1, 125, 126, 65_535, 65_536, 300_000]
        for n in sizes:  # every frame-length encoding, text and binary
            await ws.send_str("a" * n)
            await ws.send_bytes(b"b" * n)
        for n in sizes:
            text, binary = await ws.receive(), await ws.receive()
            assert (text.type, len(text.data)) == (WSMsgType.TEXT, n)
            assert (binary.type, len(binary.data)) == (WSMsgType.BINARY, n)
        await ws.ping(b"hi")
        pong = await ws.receive()
        assert (pong.type, pong.data) == (WSMsgType.PONG, b"hi")
        await ws.close()
        assert ws.close_code == 1000
        handler = seen[0][0]
        for _ in range(200):  # the server side saw the connection go
            if handler.transport is None:
                break
            await asyncio.sleep(0.01)
        assert handler.transport is None


async def _retained_per_connection(trim: bool, n: int) -> float:
    seen: list[tuple[Any, Any, bool]] = []
    async with echo_server(trim, seen) as client:
        warm = [await client.ws_connect("/ws") for _ in range(5)]
        gc.collect()
        before = tracemalloc.take_snapshot()
        conns = [await client.ws_connect("/ws") for _ in range(n)]
        for ws in conns:
            await ws.send_str("x")
            await ws.receive()
        gc.collect()
        after = tracemalloc.take_snapshot()
        del seen[:]
        for ws in warm + conns:
            await ws.close()
    mine = [tracemalloc.Filter(True, "*aiohttp/web_*"), tracemalloc.Filter(True, "*aiohttp/_websocket/*")]
    diff = after.filter_traces(mine).compare_to(before.filter_traces(mine), "filename")
    return sum(d.size_diff for d in diff) / n


async def test_an_idle_connection_keeps_at_least_1_5_kb_less_of_aiohttps_server_side():
    """Allocation bytes counted by tracemalloc (deterministic), the server's aiohttp files only: the client's are
    ``client*.py`` and the same in both runs."""
    tracemalloc.start(1)
    try:
        kept = await _retained_per_connection(False, 20)
        trimmed = await _retained_per_connection(True, 20)
    finally:
        tracemalloc.stop()
    assert kept - trimmed >= 1500, (kept, trimmed)
