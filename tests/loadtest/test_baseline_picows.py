"""The bare picows relay (loadtest/baseline_picows.py), on a real picows server on a free port: the lean
load device connects to it as to a node and gets a room's messages, the sender its acks; the relay answers a
close and forgets the device; and every frame of a script is answered as the aiohttp relay answers it (the
same frames, in the same order: a DM reaches its pair and a room message every other member, once)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from parley.loadtest.baseline import app
from parley.loadtest.baseline_picows import register_path, serve
from parley.loadtest.harness.device import LeanDevice, close_all

from tests.poll import eventually


@pytest.fixture
async def relay() -> AsyncIterator[tuple[aiohttp.ClientSession, int]]:
    server = await serve(0)
    port = server.sockets[0].getsockname()[1]
    async with aiohttp.ClientSession() as http:
        yield http, port
    server.close()
    await server.wait_closed()


async def test_the_load_device_gets_its_messages_and_a_closed_one_is_forgotten(
        relay: tuple[aiohttp.ClientSession, int]) -> None:
    http, port = relay
    async with http.get(f"http://127.0.0.1:{port}{register_path({'room': ['a', 'b', 'c']})}") as r:
        assert (r.status, await r.json()) == (200, {"rooms": 1})
    devs = {u: await LeanDevice.connect(http, f"ws://127.0.0.1:{port}/ws", u, u) for u in "abc"}
    await devs["b"].send_message("c1", "room", "1 from b")
    await eventually(lambda: (devs["a"].delivered, devs["c"].delivered, devs["b"].acks) == (1, 1, 1),
                     what="b's message at a and c, its ack at b")
    await close_all([devs["c"]])
    assert devs["c"].ws.close_code == 1000  # the relay answered the close
    await devs["b"].send_message("c2", "room", "2 from b")
    await eventually(lambda: (devs["a"].delivered, devs["b"].acks) == (2, 2), what="the second at a, its ack")
    assert (devs["b"].delivered, devs["c"].delivered) == (0, 1)  # c is gone: nothing written to its closed socket
    await close_all([devs["a"], devs["b"]])


async def test_anything_else_is_not_found(relay: tuple[aiohttp.ClientSession, int]) -> None:
    http, port = relay
    async with http.get(f"http://127.0.0.1:{port}/nothing") as r:
        assert r.status == 404


async def frames_of(http: aiohttp.ClientSession, url: str) -> dict[str, list[dict[str, Any]]]:
    """Three users' sockets through a script, one step at a time (each waits for what it answers to the one who
    sent it): hellos, a DM, a room message, a ping, a frame of no known type, a send to a conversation nobody
    registered; then each user's frames in order (closing with a pong each), the message ids numbered from 1."""
    socks = {u: await http.ws_connect(url) for u in "abc"}
    got: dict[str, list[dict[str, Any]]] = {u: [] for u in socks}

    async def read(user: str) -> None:
        async for m in socks[user]:
            got[user].append(orjson.loads(m.data))

    readers = [asyncio.create_task(read(u)) for u in socks]
    script = [("a", {"type": "hello", "token": "a"}, "synced"), ("b", {"type": "hello", "token": "b"}, "synced"),
              ("c", {"type": "hello", "token": "c"}, "synced"),
              ("a", {"type": "send", "cid": "1", "conv": "dm", "body": "x"}, "ack"),
              ("b", {"type": "send", "cid": "2", "conv": "room", "body": "y"}, "ack"), ("c", {"type": "ping"}, "pong"),
              ("c", {"type": "what"}, None), ("c", {"type": "send", "cid": "3", "conv": "none", "body": "z"}, "ack")]
    for user, frame, answer in script + [(u, {"type": "ping"}, "pong") for u in socks]:
        before = [f["type"] for f in got[user]].count(answer)
        await socks[user].send_str(orjson.dumps(frame).decode())
        if answer is not None:
            await eventually(lambda: [f["type"] for f in got[user]].count(answer) > before,  # noqa: B023
                             what=f"{user}'s {answer}")
    for ws in socks.values():
        await ws.close()
    await asyncio.gather(*readers)
    first = min(f["id"] for fs in got.values() for f in fs if "id" in f)
    return {u: [{**f, "id": f["id"] - first + 1} if "id" in f else f for f in fs] for u, fs in got.items()}


async def test_it_answers_every_frame_as_the_aiohttp_relay_does() -> None:
    runner = web.AppRunner(app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = await serve(0)
    rooms = {"dm": ["a", "b"], "room": ["a", "b", "c"]}
    try:
        async with aiohttp.ClientSession() as http:
            aio, pico = runner.addresses[0][1], server.sockets[0].getsockname()[1]
            async with http.post(f"http://127.0.0.1:{aio}/rooms", data=orjson.dumps(rooms)) as r:
                assert r.status == 200
            async with http.get(f"http://127.0.0.1:{pico}{register_path(rooms)}") as r:
                assert r.status == 200
            expected = await frames_of(http, f"ws://127.0.0.1:{aio}/ws")
            assert await frames_of(http, f"ws://127.0.0.1:{pico}/ws") == expected
    finally:
        server.close()
        await server.wait_closed()
        await runner.cleanup()
    assert expected["b"][2:] == [{"type": "msg", "id": 1, "conv": "dm", "from": "a", "body": "x"},  # what it compares
                                 {"type": "ack", "cid": "2", "id": 2, "conv": "room"}, {"type": "pong"}]
