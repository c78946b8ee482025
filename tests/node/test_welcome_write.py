"""A connection's welcome needs no write of its own (node/welcome.py, ADR 0063): against a real nats-server, a real
SQLite store and an edge node in this process, an idle device's welcome and ``synced`` leave the node in one write;
when the first sync waits (its shard reading held back, as an unreachable shard holds it), the welcome is still
written within the node's cursor round, long before that sync ends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from functools import partial

import aiohttp
import orjson
import pytest

from tests.node.test_first_arrival import A, edge, frames_until, hello  # noqa: F401 — the fixture

HELD_S = 3.0  # the first sync's reading held back this long


def record_writes(edge_node: object) -> list[list[str]]:
    """Each write to a device as the frame types it carried (the links' ``on_sent``: one call per write)."""
    writes: list[list[str]] = []

    def sent(frames: Iterable[bytes]) -> None:
        writes.append([orjson.loads(f)["type"] for f in frames])

    node = edge_node
    node._new_link = partial(node._new_link, on_sent=sent)  # type: ignore[attr-defined]
    return writes


# a long cursor round: the node's round may begin at any tick, and one beginning before the sync ends writes the
# welcome alone (its bound); a round of 5 s keeps that out of this test on a slow machine
@pytest.mark.parametrize("edge", [{"cursor_every_s": 5.0}], indirect=True)
async def test_an_idle_devices_welcome_and_synced_leave_in_one_write(edge):  # noqa: F811
    writes = record_writes(edge.node)
    _, token = await edge.session(A)
    async with aiohttp.ClientSession() as http:
        ws = await hello(http, edge, token)
        frames = await frames_until(ws, lambda f: f["type"] == "synced")
        assert [f["type"] for f in frames] == ["welcome", "synced"]
        assert writes[0] == ["welcome", "synced"], writes  # before: ["welcome"], then ["synced"]
        await ws.close()


async def test_a_welcome_is_written_within_a_cursor_round_while_the_first_sync_waits(edge):  # noqa: F811
    writes = record_writes(edge.node)
    reads = edge.node.watch._reads
    bounds = reads.bounds

    async def held(shard: int) -> tuple[int, int]:  # the shard answers, late (a cut-off region's, a busy server)
        await asyncio.sleep(HELD_S)
        return await bounds(shard)

    _, token = await edge.session(A)
    async with aiohttp.ClientSession() as http:
        await asyncio.sleep(2 * edge.settings.bounds_refresh_s)  # the watch's first readings are done
        reads.bounds = held
        t0 = time.monotonic()
        ws = await hello(http, edge, token)
        first = await frames_until(ws, lambda f: True)
        took = time.monotonic() - t0
        assert [f["type"] for f in first] == ["welcome"]
        assert took < HELD_S / 2, took  # a cursor round (0.25 s) and the set-up, not the held reading
        rest = await frames_until(ws, lambda f: f["type"] == "synced")
        assert rest[-1]["type"] == "synced" and time.monotonic() - t0 >= HELD_S
        assert writes[:2] == [["welcome"], ["synced"]], writes
        await ws.close()
