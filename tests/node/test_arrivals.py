"""A wave of connects and the shard reading its first syncs share (node/server.py ``handle_ws``, node/bounds.py
``ShardWatch.arriving``, ADR 0067), against a real nats-server, a real SQLite store and an edge node in this process:
a connection is counted from its upgrade until its first round asks for a reading, and the reading begins once every
one counted has asked — not after the fixed gap, here made 5 s long so that waiting it shows. A connection that goes
without a first sync (closed before its hello, refused at it) is counted out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from parley.node import bounds
from parley.node.bounds import Reading
from parley.node.server import EdgeNode

from parley import protocol
from parley.auth import verify_token
from parley.ids import UserId, new_user_id
from tests.node.served import migrated, node_settings, served, signed_in
from tests.poll import eventually

SECRET = "s" * 48
GAP_S = 5.0  # the fixed gap, as these tests make it: a first sync that waits it is seen to
QUICK_S = 2.5  # a wave that does not wait it is synced well within this


class Node:
    def __init__(self, node: EdgeNode, store: Any, url: str) -> None:
        self.node, self.store, self.url = node, store, url
        self.readings: list[Reading] = []  # every reading the watch took since the test began
        self.asked = 0  # rounds that asked the watch for a reading
        read, after = node.watch._read, node.watch.after

        async def counted_read() -> Reading:
            self.readings.append(await read())
            return self.readings[-1]

        async def counted_after(*args: Any, **kw: Any) -> Reading:
            self.asked += 1
            return await after(*args, **kw)

        node.watch._read = counted_read  # type: ignore[method-assign]
        node.watch.after = counted_after  # type: ignore[method-assign]

    async def token(self) -> str:
        return await signed_in(self.store, SECRET, new_user_id())


@pytest.fixture
async def edge(nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Node]:
    monkeypatch.setattr(bounds, "MIN_GAP_S", GAP_S)
    settings = node_settings(nats_url, tmp_path / "p.db", SECRET)
    async with migrated(settings) as store, served(settings, store) as (node, _, url):
        await eventually(lambda: node.watch.latest is not None, what="the node's first reading")
        yield Node(node, store, url)


def hello(token: str) -> str:
    return orjson.dumps({"type": "hello", "version": protocol.VERSION, "token": token}).decode()


async def synced(ws: aiohttp.ClientWebSocketResponse) -> float:
    """Reads up to the first ``synced``; when it came (monotonic)."""
    while True:
        msg = await ws.receive(timeout=10)
        assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, ws.close_code)
        if orjson.loads(msg.data)["type"] == "synced":
            return time.monotonic()


async def test_a_wave_of_first_connects_shares_one_reading_without_waiting_the_gap(edge):
    tokens = [await edge.token() for _ in range(3)]
    async with aiohttp.ClientSession() as http:
        socks = [await http.ws_connect(edge.url) for _ in tokens]  # upgraded: all three counted
        began = time.monotonic()
        before = len(edge.readings)
        for ws, token in zip(socks, tokens, strict=True):
            await ws.send_str(hello(token))
        done = await asyncio.gather(*(synced(ws) for ws in socks))
        assert max(done) - began < QUICK_S, max(done) - began
        assert len(edge.readings) - before == 1  # the three first syncs took one reading between them
        for ws in socks:
            await ws.close()


async def test_a_connection_upgraded_but_not_yet_at_its_hello_is_waited_for(edge):
    """Counted from the upgrade, not the hello: the wave's late hello shares the reading the early one asked for."""
    early, late = await edge.token(), await edge.token()
    async with aiohttp.ClientSession() as http:
        slow = await http.ws_connect(edge.url)  # upgraded; its hello comes after the other's round has asked
        quick = await http.ws_connect(edge.url)
        before = len(edge.readings)
        began = time.monotonic()
        await quick.send_str(hello(early))
        await eventually(lambda: edge.asked == 1, what="the early connect's first round asked for its reading")
        assert len(edge.readings) == before  # not taken yet: the slow connection is still under way
        await slow.send_str(hello(late))
        done = await asyncio.gather(synced(quick), synced(slow))
        assert max(done) - began < QUICK_S, max(done) - began
        assert len(edge.readings) - before == 1
        await quick.close()
        await slow.close()


async def test_connections_that_go_without_a_first_sync_do_not_hold_the_next_ones_reading(edge):
    revoked = await signed_in(edge.store, SECRET, UserId(new_user_id()))
    async with aiohttp.ClientSession() as http:
        gone = await http.ws_connect(edge.url)
        await gone.close()  # before its hello
        forged = await http.ws_connect(edge.url)
        await forged.send_str(hello("not-a-token"))
        assert (await forged.receive(timeout=10)).type == aiohttp.WSMsgType.TEXT  # the error
        assert (await forged.receive(timeout=10)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        await edge.store.revoke_session(verify_token(SECRET, revoked, now=int(time.time())).session)
        refused = await http.ws_connect(edge.url)
        await refused.send_str(hello(revoked))  # refused in its first arrival's set-up
        frames = [orjson.loads((await refused.receive(timeout=10)).data)]
        assert frames[0]["type"] == "error", frames
        assert (await refused.receive(timeout=10)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        ws = await http.ws_connect(edge.url)
        began = time.monotonic()
        await ws.send_str(hello(await edge.token()))
        assert await synced(ws) - began < QUICK_S, (edge.node.watch._coming, edge.node.watch._plain)
        await ws.close()
