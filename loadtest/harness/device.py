"""The WebSocket clients of the benchmarks, in one place: what they read from the frames they get.

``LoadDevice`` (bench, groups_bench) is the reference client's ``Device`` made for load: it keeps no
frame, judges every message on its conversation's ``prev`` chain (``harness.chains``: re-sent after a
reconnect, duplicate, past a gap — counted; ids are never compared across conversations), acks each
cursor the node offers (protocol v2: opaque strings; a cursor frame covers every frame before it, all
processed by then) and reports every frame to a ``FrameSink``. ``LeanDevice`` (raw) parses only
``msg``, ``cursor`` and ``synced`` frames and counts the rest by prefix, so the generator's own CPU
stays out of the way of the figures; it keeps the newest cursor offered (to reconnect with) and does
not ack. Both send through ``harness.wire``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from array import array
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import orjson
from parley.loadtest.harness import wire
from parley.loadtest.harness.chains import Chains
from parley.tools.client import Device

HELLO_TIMEOUT_S = 10.0
OWN_FRAMES = ("welcome", "pong", "moved")  # the base class keeps these


class FrameSink(Protocol):
    acking: bool  # devices ack the cursors offered (as clients do): a node then announces delivered receipts

    def on_frame(self, dev: LoadDevice, kind: str, f: dict[str, Any], now: int) -> None:
        """One frame at ``now`` (perf_counter_ns). ``kind`` is its type, except for a message: "msg" when
        new (or new past a gap), "resent" when re-sent after a reconnect (dropped, as the protocol says),
        "duplicate" when sent twice; and "before-welcome" (reported first, then as its type) for what
        overtook welcome."""


class LoadDevice(Device):
    def __init__(self, http: aiohttp.ClientSession, url: str, token: str, sink: FrameSink, tag: Any = None,
                 chains: Chains | None = None) -> None:
        super().__init__(http, url, token)
        self.sink, self.tag = sink, tag  # tag: what the benchmark knows this device as
        self.auto_ack = False  # this device acks cursors itself, when the sink says so
        self.chains = chains or Chains()  # pass the previous connection's to reconnect the same device
        self.received = self.gaps = self.resent = 0

    async def connect(self, cursor: str | None = None, **hello: Any) -> dict[str, Any]:
        """hello (with ``cursor``: one this device was offered on an earlier connection) → welcome. The
        protocol puts welcome first, but a friend's presence change can overtake it: such frames are
        kept, reported, and handled after it."""
        self.chains.reconnected(with_cursor=cursor is not None)
        self.ws = await self.http.ws_connect(self.url, max_msg_size=0)
        await self.ws.send_str(wire.hello(self.token, cursor, **hello))
        early = []
        while True:
            msg = await self.ws.receive(timeout=HELLO_TIMEOUT_S)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"closed during hello: {self.ws.close_code} {msg.extra}")
            data: dict[str, Any] = orjson.loads(msg.data)
            if data.get("type") == "welcome":
                break
            if data.get("type") == "error":
                raise ConnectionError(f"hello refused: {data}")
            early.append(data)
        self.welcome = data
        self.cursor = data.get("cursor") or cursor
        for f in early:
            self.sink.on_frame(self, "before-welcome", f, time.perf_counter_ns())
            self._on_frame(f)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return data

    def _on_frame(self, f: dict[str, Any]) -> None:
        now = time.perf_counter_ns()
        kind = str(f.get("type"))
        if kind == "msg":
            kind = self._arrived(f)
        elif kind == "error":
            self.errors.append(f)
            if f.get("code") == "bad_cursor" and not self.synced.is_set():
                self.chains.cursor_refused()  # the node syncs this device from the beginning
        elif kind in ("cursor", "synced"):
            self._cursor_offered(f)
        elif kind in OWN_FRAMES:
            super()._on_frame(f)
        self.sink.on_frame(self, kind, f, now)

    def _arrived(self, f: dict[str, Any]) -> str:
        verdict = self.chains.judge(f["conv"], f["id"], f.get("prev", 0))
        if verdict == "resent":  # after a reconnect, what followed the cursor comes again: dropped
            self.resent += 1
            return "resent"
        if verdict == "duplicate":
            self.duplicates += 1
            return "duplicate"
        self.gaps += verdict == "gap"
        self.received += 1
        return "msg"

    def _cursor_offered(self, f: dict[str, Any]) -> None:
        """Every frame before it was handled (this reader is the only one, in order): ack it."""
        self.chains.offered()
        if f["type"] == "synced":
            super()._on_frame(f)  # sets ``synced`` and ``cursor``
        else:
            self.cursor = f["cursor"]
        if self.sink.acking:
            asyncio.get_running_loop().create_task(self._send_quietly(wire.ack(f["cursor"])))

    async def send_message(self, cid: str, conv: str, body: str) -> None:
        assert self.ws is not None
        await self.ws.send_str(wire.send(cid, conv, body))

    async def _send_quietly(self, frame: str) -> None:
        try:
            await self.send_frame(frame)
        except (ConnectionError, RuntimeError):
            pass


@dataclass
class LeanDevice:
    """One device's WebSocket for the raw generator: counts, and a latency sample per message from
    someone else whose body starts with its send time (perf_counter_ns, one clock)."""

    ws: aiohttp.ClientWebSocketResponse
    user: str
    delivered: int = 0
    total_delivered: int = 0  # since connecting: a backlog from an overloaded step must clear before the next
    acks: int = 0
    pongs: int = 0
    cursor: str | None = None  # the newest cursor offered (opaque): reconnect with it
    latencies: array[int] = field(default_factory=lambda: array("q"))
    reader: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, http: aiohttp.ClientSession, url: str, user: str, token: str,
                      cursor: str | None = None) -> LeanDevice:
        """hello → welcome, any missed messages → synced; then a reader in the background."""
        ws = await http.ws_connect(url, max_msg_size=0)
        await ws.send_str(wire.hello(token, cursor))
        dev = cls(ws, user)
        while True:
            msg = await ws.receive(timeout=30)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"closed during hello: {ws.close_code}")
            f = orjson.loads(msg.data)
            if f.get("type") in ("welcome", "cursor"):
                dev.cursor = f["cursor"]
            if f.get("type") == "synced":
                dev.cursor = f["cursor"]
                break
            if f.get("type") == "error" and f.get("code") not in ("bad_cursor",):
                raise ConnectionError(f"refused: {f}")
        dev.reader = asyncio.get_running_loop().create_task(dev._read())
        return dev

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = msg.data
            if data.startswith(wire.MSG_PREFIX):
                f = orjson.loads(data)
                if f["from"] != self.user:
                    self.delivered += 1
                    self.total_delivered += 1
                    self.latencies.append(time.perf_counter_ns() - int(f["body"].split(" ", 1)[0]))
            elif data.startswith(wire.CURSOR_PREFIX) or data.startswith(wire.SYNCED_PREFIX):
                self.cursor = orjson.loads(data)["cursor"]
            elif data.startswith(wire.ACK_PREFIX):
                self.acks += 1
            elif data.startswith(wire.PONG_PREFIX):
                self.pongs += 1

    async def send_message(self, cid: str, conv: str, body: str) -> None:
        await self.ws.send_str(wire.send(cid, conv, body))

    async def ping(self) -> None:
        await self.ws.send_str(wire.ping())


async def close_all(devices: list[LeanDevice]) -> None:
    await asyncio.gather(*(d.ws.close() for d in devices), return_exceptions=True)
    await asyncio.gather(*(d.reader for d in devices if d.reader), return_exceptions=True)


def latencies_of(devices: list[LeanDevice]) -> array[int]:
    return array("q", itertools.chain.from_iterable(d.latencies for d in devices))
