"""Heartbeats: a device that stops pinging is closed with 4008; one that pings stays."""

from __future__ import annotations

import asyncio

import pytest
from parley.tools.client import Device

pytestmark = pytest.mark.integration


async def test_silent_devices_are_closed_and_pinging_ones_stay(world, cluster):
    url = cluster.start_extra_node("node-idle", region="test-idle", idle_timeout_s=1.5, heartbeat_s=0.5)
    try:
        alice = await world.person("alice")
        login = await alice.login()
        silent, chatty = Device(world.http, url, login["token"]), Device(world.http, url, login["token"])
        await silent.connect()
        await chatty.connect()
        assert silent.welcome["limits"]["idle_timeout_s"] == 1.5
        for _ in range(8):  # 3.2 s of pings, well past the idle timeout
            await chatty.send_frame({"type": "ping"})
            await asyncio.sleep(0.4)  # the scenario, not a wait: a client pinging every 0.4 s, within the 1.5 s
        code, _ = await asyncio.wait_for(silent.closed, 5)
        assert code == 4008
        await chatty.wait_for(lambda: len(chatty.pongs) == 8)
        assert not chatty.closed.done() and len(chatty.pongs) == 8
        await chatty.close()
    finally:
        cluster.stop("node-idle")
