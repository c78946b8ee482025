"""The bare baseline relay (loadtest/baseline.py), on a real aiohttp server on a free port: the lean
load device connects to it as to a node, a DM reaches its pair and a room message every other member,
once, and the sender gets its ack."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp import web
from parley.loadtest.baseline import app
from parley.loadtest.harness.device import LeanDevice, close_all

from tests.poll import eventually


@pytest.fixture
async def relay() -> AsyncIterator[tuple[aiohttp.ClientSession, int]]:
    runner = web.AppRunner(app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as http:
        yield http, port
    await runner.cleanup()


async def test_a_dm_and_a_room_message_reach_the_other_members_once(relay: tuple[aiohttp.ClientSession, int]) -> None:
    http, port = relay
    rooms = {"dm": ["a", "b"], "room": ["a", "b", "c"]}
    async with http.post(f"http://127.0.0.1:{port}/rooms", data=orjson.dumps(rooms)) as r:
        assert r.status == 200
    devs = {u: await LeanDevice.connect(http, f"ws://127.0.0.1:{port}/ws", u, u) for u in "abc"}
    await devs["a"].send_message("c1", "dm", "1 x")
    await devs["a"].send_message("c2", "room", "2 y")
    await eventually(lambda: devs["a"].acks == 2 and devs["b"].delivered == 2 and devs["c"].delivered == 1,
                     what="the DM at b, the room message at b and c, two acks at a")
    await devs["b"].ping()
    await eventually(lambda: devs["b"].pongs == 1, what="a pong")  # after both messages: nothing else is coming
    assert (devs["a"].delivered, devs["b"].delivered, devs["c"].delivered) == (0, 2, 1)  # no echo, nothing twice
    await close_all(list(devs.values()))
