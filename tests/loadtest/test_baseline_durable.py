"""The durable floor (loadtest/baseline_durable.py) on a real nats-server and a real SQLite file: a send is acked
only once the stream holds it, delivered once to the receiver (and echoed once to the sender) from the
stream's republished copy, and archived to SQLite, acked to JetStream only after that."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web
from parley.loadtest.baseline_durable import STREAM, archive, bus, relay_app
from parley.loadtest.harness.device import LeanDevice, close_all

from parley.bus.ordered import BusClient
from parley.shards import pos_of_id
from tests.poll import eventually


@pytest.fixture
async def relay(nats_url: str) -> AsyncIterator[tuple[aiohttp.ClientSession, int, BusClient]]:
    nc = await bus(nats_url)
    runner = web.AppRunner(relay_app(nc))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    async with aiohttp.ClientSession() as http:
        yield http, runner.addresses[0][1], nc
    await runner.cleanup()
    await nc.close()


class Frames:
    """Every frame a raw WebSocket gets, decoded."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws, self.frames = ws, []
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for m in self.ws:
            self.frames.append(orjson.loads(m.data))

    def of(self, kind: str) -> list[dict[str, object]]:
        return [f for f in self.frames if f["type"] == kind]


async def connect(http: aiohttp.ClientSession, port: int, user: str) -> Frames:
    ws = await http.ws_connect(f"ws://127.0.0.1:{port}/ws")
    await ws.send_str(orjson.dumps({"type": "hello", "token": user}).decode())
    f = Frames(ws)
    await eventually(lambda: f.of("synced"), what=f"{user}'s welcome and synced")
    return f


async def test_a_send_is_acked_once_stored_and_delivered_once_from_the_republished_copy(
        relay: tuple[aiohttp.ClientSession, int, BusClient]) -> None:
    http, port, nc = relay
    async with http.post(f"http://127.0.0.1:{port}/rooms", data=orjson.dumps({"dm": ["a", "b"]})) as r:
        assert r.status == 200
    a, b = await connect(http, port, "a"), await connect(http, port, "b")
    await a.ws.send_str(orjson.dumps({"type": "send", "cid": "c1", "conv": "dm", "body": "hi"}).decode())
    await eventually(lambda: a.of("ack"), what="the ack")
    ack = a.of("ack")[0]
    stored = await nc.jetstream().get_msg(STREAM.name, pos_of_id(int(ack["id"])))  # type: ignore[arg-type]
    assert stored.subject == "msg.0.dm.a.b" and orjson.loads(stored.data)["body"] == "hi"
    await eventually(lambda: b.of("msg") and a.of("msg"), what="the message at b and its echo at a")
    await b.ws.send_str('{"type":"ping"}')
    await eventually(lambda: b.of("pong"), what="a pong after the message")  # nothing more is coming
    for dev in (a, b):
        assert dev.of("msg") == [{"type": "msg", "id": ack["id"], "conv": "dm", "from": "a", "body": "hi"}]
    # the next send names the first as its predecessor: the chain Parley's payload carries
    await a.ws.send_str(orjson.dumps({"type": "send", "cid": "c2", "conv": "dm", "body": "again"}).decode())
    await eventually(lambda: len(a.of("ack")) == 2, what="the second ack")
    second = await nc.jetstream().get_msg(STREAM.name, pos_of_id(int(a.of("ack")[1]["id"])))  # type: ignore[arg-type]
    assert orjson.loads(second.data)["prev"] == ack["id"]
    # whatever the stream stores reaches the members from its republished copy, whoever published it
    await nc.jetstream().publish("msg.0.dm.a.b", orjson.dumps({"from": "x", "body": "via the stream"}))
    await eventually(lambda: len(b.of("msg")) == 3 and len(a.of("msg")) == 3, what="a message stored by another")
    assert b.of("msg")[2]["body"] == a.of("msg")[2]["body"] == "via the stream"
    for dev in (a, b):
        await dev.ws.close()
        await dev.task


async def test_the_archiver_writes_every_message_to_sqlite_then_acks_it(
        relay: tuple[aiohttp.ClientSession, int, BusClient], nats_url: str, tmp_path: Path) -> None:
    http, port, nc = relay
    rooms = {"dm": ["a", "b"], "room": ["a", "b", "c"]}
    async with http.post(f"http://127.0.0.1:{port}/rooms", data=orjson.dumps(rooms)) as r:
        assert r.status == 200
    stop = asyncio.Event()
    worker = asyncio.get_running_loop().create_task(archive(nats_url, str(tmp_path / "floor.db"), stop))
    devs = {u: await LeanDevice.connect(http, f"ws://127.0.0.1:{port}/ws", u, u) for u in "abc"}
    for i in range(20):
        await devs["a"].send_message(f"c{i}", "dm" if i % 2 else "room", f"{i} x")
    await eventually(lambda: devs["a"].acks == 20 and devs["b"].delivered == 20 and devs["c"].delivered == 10,
                     what="20 acks, the 20 messages at b, the room's 10 at c")

    def rows() -> list[tuple[str, str]]:
        with contextlib.closing(sqlite3.connect(tmp_path / "floor.db")) as db:
            return db.execute("SELECT conv, body FROM messages ORDER BY id").fetchall()

    await eventually(lambda: len(rows()) == 20, what="20 rows in SQLite")
    assert rows() == [("dm.a.b" if i % 2 else "g.room", f"{i} x") for i in range(20)]
    js = nc.jetstream()
    await eventually(lambda: _acked(js), what="every message acked by the archiver")
    stop.set()
    await asyncio.wait_for(worker, 10)
    await close_all(list(devs.values()))


async def _acked(js: object) -> bool:
    info = await js.consumer_info(STREAM.name, "archiver")  # type: ignore[attr-defined]
    return bool(info.ack_floor.stream_seq == 20 and info.num_ack_pending == 0)
