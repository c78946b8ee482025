"""A DM's two copies on a node holding both members (ADR 0066), on an edge node in this process against a real
nats-server and a real SQLite store: every device gets each message of its DMs once, in stored order, and each
stored message's position is read from its headers once, and its latency observed once, not once per copy."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from parley.node import deliveries

from parley import bus, protocol
from parley.ids import UserId, dm_conversation, new_device_id, new_user_id
from parley.messages import encode_payload
from parley.settings import Settings
from parley.shards import home_for, message_subject
from tests.node.served import migrated, node_settings, served, signed_in

SECRET = "s" * 48
A, B, C = new_user_id(), new_user_id(), new_user_id()  # A and B connected here; C never is
AB, AC = dm_conversation(A, B), dm_conversation(A, C)
Frame = dict[str, Any]


@pytest.fixture
async def edge(nats_url: str, tmp_path: Path) -> AsyncIterator[tuple[Any, Any, Any, tuple[Settings, str]]]:
    settings = node_settings(nats_url, tmp_path / "p.db", SECRET)
    async with migrated(settings) as store, served(settings, store) as (node, nc, url):
        yield node, nc, store, (settings, url)


async def connect(http: aiohttp.ClientSession, url: str, store: Any, user: UserId) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(url)
    await ws.send_str(orjson.dumps({"type": "hello", "version": protocol.VERSION,
                                    "token": await signed_in(store, SECRET, user)}).decode())
    while (await frame_of(ws))["type"] != "synced":
        pass
    return ws


async def frame_of(ws: aiohttp.ClientWebSocketResponse) -> Frame:
    msg = await ws.receive(timeout=10)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return orjson.loads(msg.data)  # type: ignore[no-any-return]


async def messages(ws: aiohttp.ClientWebSocketResponse, last: str) -> list[tuple[str, str]]:
    """(conversation, body) of every ``msg`` frame until the one with body ``last``, then a ping's pong (a copy sent
    twice would come before it)."""
    out: list[tuple[str, str]] = []
    while not out or out[-1][1] != last:
        f = await frame_of(ws)
        if f["type"] == "msg":
            out.append((f["conv"], f["body"]))
    await ws.send_str('{"type":"ping","ts":1}')
    while (f := await frame_of(ws))["type"] != "pong":
        if f["type"] == "msg":
            out.append((f["conv"], f["body"]))
    return out


async def test_a_dm_between_two_members_here_reaches_each_device_once_in_order_read_and_timed_once(
        edge: tuple[Any, Any, Any, tuple[Settings, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    node, nc, store, (settings, url) = edge
    reads: list[bytes] = []

    def counted(raw: bytes) -> tuple[str, int] | None:
        reads.append(raw)
        return bus.ordered.stream_position(raw)

    monkeypatch.setattr(deliveries, "stream_position", counted)
    async with aiohttp.ClientSession() as http:
        a1, a2 = await connect(http, url, store, A), await connect(http, url, store, A)
        b = await connect(http, url, store, B)
        await nc.flush()
        await node.nc.flush()  # the server has their subscriptions
        sent: list[tuple[str, str]] = []
        for i in range(20):  # both DMs of A interleaved: C's (one copy here) between A and B's (two copies)
            conv, sender = (AB, B if i % 3 else A) if i % 4 != 3 else (AC, C)
            payload = encode_payload(sender=sender, device=new_device_id(), cid=f"m{i}", body=f"m{i}",
                                     ts=int(time.time() * 1000), prev=0)
            await nc.jetstream().publish(message_subject(home_for(conv, settings.shards), conv), payload)
            sent.append((conv, f"m{i}"))
        assert await messages(a1, "m19") == sent
        assert await messages(a2, "m19") == sent
        assert await messages(b, "m18") == [m for m in sent if m[0] == AB]
        assert len(reads) == len(sent)  # A and B's came twice, read once; C's once
        assert sum(node.metrics.e2e_seconds._counts) == len(sent)  # a message's latency once, not once per copy
        assert node.metrics.delivered.n == 3 * sum(m[0] == AB for m in sent) + 2 * sum(m[0] == AC for m in sent)
        for ws in (a1, a2, b):
            await ws.close()
