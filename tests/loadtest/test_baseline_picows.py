"""The bare picows relay (loadtest/baseline_picows.py), on a real picows server on a free port: the lean
load device connects to it as to a node, a DM reaches its pair and a room message every other member,
once, and the sender gets its ack; a closed device is forgotten, and the relay answers a close."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
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


async def test_a_dm_and_a_room_message_reach_the_other_members_once(relay: tuple[aiohttp.ClientSession, int]) -> None:
    http, port = relay
    async with http.get(f"http://127.0.0.1:{port}{register_path({'dm': ['a', 'b'], 'room': ['a', 'b', 'c']})}") as r:
        assert r.status == 200
        assert await r.json() == {"rooms": 2}
    devs = {u: await LeanDevice.connect(http, f"ws://127.0.0.1:{port}/ws", u, u) for u in "abc"}
    await devs["a"].send_message("c1", "dm", "1 x")
    await devs["a"].send_message("c2", "room", "2 y")
    await eventually(lambda: devs["a"].acks == 2 and devs["b"].delivered == 2 and devs["c"].delivered == 1,
                     what="the DM at b, the room message at b and c, two acks at a")
    await devs["b"].ping()
    await eventually(lambda: devs["b"].pongs == 1, what="a pong")  # after both messages: nothing else is coming
    assert (devs["a"].delivered, devs["b"].delivered, devs["c"].delivered) == (0, 2, 1)  # no echo, nothing twice
    await close_all([devs["c"]])
    assert devs["c"].ws is not None and devs["c"].ws.close_code == 1000  # the relay answered the close
    await devs["a"].send_message("c3", "room", "3 z")
    await eventually(lambda: devs["a"].acks == 3 and devs["b"].delivered == 3, what="the room message at b")
    assert devs["c"].delivered == 1  # c is gone: nothing was written to its closed socket
    await close_all([devs["a"], devs["b"]])


async def test_anything_else_is_not_found(relay: tuple[aiohttp.ClientSession, int]) -> None:
    http, port = relay
    async with http.get(f"http://127.0.0.1:{port}/nothing") as r:
        assert r.status == 404
