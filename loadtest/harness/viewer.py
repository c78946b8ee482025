"""The live benchmark's viewers: one bare asyncio ``Protocol`` per WebSocket, so ten thousand of them fit
in one generator process beside the nodes they load.

A viewer does the WebSocket handshake itself (no permessage-deflate offered: the node then writes its
frames as they are), says hello, joins one live room, and from then on only counts: ``live_msg`` frames
are counted with ``bytes.count`` on each chunk the socket hands over (the node writes ``type`` first, and
a frame split across two chunks is caught by keeping the last few bytes), so its cost is per read, not
per frame. A *sampled* viewer also parses every frame (unmasked server frames, RFC 6455 §5.2) and keeps,
per ``live_msg``, its id and the latency from the send time at the start of its body (perf_counter_ns: the
senders run in this process) — the latency and duplicate figures come from the sampled viewers, the
delivery counts and the loss ledger from all of them.

Invariants: a viewer never writes after ``close``; what it got before it joined (welcome, synced, the
join's backlog) is not counted.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
from array import array
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

from parley.loadtest.harness import wire

MSG = b'{"type":"live_msg"'
DROPPED = b'{"type":"live_dropped"'
JOINED = b'{"type":"live_joined"'
SYNCED = b'{"type":"synced"'
PING_EVERY_S = 20.0  # the node closes a connection silent for PARLEY_IDLE_TIMEOUT_S (75 s)
TAIL = len(DROPPED) - 1  # bytes kept from one chunk to the next: a marker split across them is still seen


def client_frame(text: str, opcode: int = 0x1) -> bytes:
    """One masked client frame (RFC 6455 §5.3: a client masks every frame)."""
    data, mask = text.encode(), os.urandom(4)
    n = len(data)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data)) if n < 64 else _mask(data, mask)
    return head + mask + masked


def _mask(data: bytes, mask: bytes) -> bytes:
    n = len(data)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(data, "big") ^ key).to_bytes(n, "big")


def server_frames(buf: bytearray) -> list[tuple[int, bytes]]:
    """Complete unmasked frames at the start of ``buf`` as (opcode, payload); they are removed from it."""
    out, i = [], 0
    while len(buf) - i >= 2:
        op, n = buf[i] & 0x0F, buf[i + 1] & 0x7F
        head = 2
        if n == 126:
            if len(buf) - i < 4:
                break
            n, head = struct.unpack_from("!H", buf, i + 2)[0], 4
        elif n == 127:
            if len(buf) - i < 10:
                break
            n, head = struct.unpack_from("!Q", buf, i + 2)[0], 10
        if len(buf) - i < head + n:
            break
        out.append((op, bytes(buf[i + head:i + head + n])))
        i += head + n
    del buf[:i]
    return out


@dataclass
class Tally:
    """What one viewer saw after joining."""

    messages: int = 0  # live_msg frames
    dropped: int = 0  # live_dropped: the node let go of us as a slow reader
    ids: array[int] = field(default_factory=lambda: array("q"))  # sampled viewers: each live_msg's id
    sent_ns: array[int] = field(default_factory=lambda: array("q"))  # ... its send time
    latency_ns: array[int] = field(default_factory=lambda: array("q"))  # ... arrival - send time


class Viewer(asyncio.Protocol):
    def __init__(self, host: str, path: str, token: str, room: str, sampled: bool) -> None:
        self.host, self.path, self.token, self.room, self.sampled = host, path, token, room, sampled
        self.tally = Tally()
        self.joined = asyncio.get_running_loop().create_future()
        self.node_viewers = 0  # the node's count of the room's viewers when we joined (``live_joined``)
        self.closed = False
        self._transport: asyncio.Transport | None = None
        self._state = "handshake"  # handshake -> hello -> joining -> watching
        self._buf = bytearray()
        self._tail = b""
        self._pinger: asyncio.TimerHandle | None = None
        self.retries = 0  # hellos the node refused as retryable before this connection joined

    # ---- asyncio.Protocol ---------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = tcp = cast(asyncio.Transport, transport)  # uvloop's TCP transport is not a subclass
        key = base64.b64encode(os.urandom(16)).decode()
        tcp.write((f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                        .encode())

    def data_received(self, data: bytes) -> None:
        if self._state == "watching" and not self.sampled:
            self._count(self._tail + data)
            return
        self._buf += data
        if self._state == "handshake":
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self._buf[:end]).split(b"\r\n", 1)[0]
            if b" 101 " not in status:
                self._fail(f"handshake refused: {status.decode(errors='replace')}")
                return
            del self._buf[:end + 4]
            self._state = "hello"
            self.send(wire.hello(self.token))
        for op, payload in server_frames(self._buf):
            self._on_frame(op, payload)
        if self._state == "watching" and not self.sampled and self._buf:  # the start of a frame: counted from here
            chunk, self._buf = bytes(self._buf), bytearray()
            self._count(chunk)

    def _count(self, chunk: bytes) -> None:
        """Markers in ``chunk`` (the kept tail + new bytes), less those wholly in the tail (counted before)."""
        tail, t = self._tail, self.tally
        t.messages += chunk.count(MSG) - tail.count(MSG)
        t.dropped += chunk.count(DROPPED) - tail.count(DROPPED)
        self._tail = chunk[-TAIL:]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.joined.done():
            self.joined.set_exception(ConnectionError(f"closed before joining: {exc}"))

    # ---- frames ---------------------------------------------------------------------------------------
    def _on_frame(self, op: int, payload: bytes) -> None:
        if op == 0x8:
            self._fail(f"closed by the node: {payload[:2].hex()} {payload[2:].decode(errors='replace')}")
        elif op != 0x1:
            return
        elif self._state == "hello" and payload.startswith(SYNCED):
            self._state = "joining"
            self.send(f'{{"type":"live_join","room":"{self.room}"}}')
        elif self._state == "hello" and payload.startswith(b'{"type":"error"'):
            self._fail(f"hello refused: {payload[:300].decode(errors='replace')}")
        elif self._state == "joining" and payload.startswith(JOINED):
            self.node_viewers = int(payload.split(b'"viewers":', 1)[1].split(b",", 1)[0].split(b"}", 1)[0])
            self._state = "watching"
            self._beat()
            if not self.joined.done():
                self.joined.set_result(None)
        elif self._state == "joining" and payload.startswith(b'{"type":"error"'):
            self._fail(f"join refused: {payload[:300].decode(errors='replace')}")
        elif self._state == "watching":
            self._watch(payload)

    def _watch(self, payload: bytes) -> None:
        now = time.perf_counter_ns()
        if payload.startswith(MSG) and not self.sampled:
            self.tally.messages += 1
        elif payload.startswith(MSG):
            t = self.tally
            t.messages += 1
            id_at = payload.index(b'"id":') + 5
            t.ids.append(int(payload[id_at:payload.index(b",", id_at)]))
            body_at = payload.index(b'"body":"') + 8
            sent = int(payload[body_at:payload.index(b" ", body_at)])
            t.sent_ns.append(sent)
            t.latency_ns.append(now - sent)
        elif payload.startswith(DROPPED):
            self.tally.dropped += 1

    def _fail(self, why: str) -> None:
        if not self.joined.done():
            self.joined.set_exception(ConnectionError(why))
        self.close()

    # ---- ours -------------------------------------------------------------------------------------------
    def send(self, text: str) -> None:
        if self._transport is not None and not self.closed:
            self._transport.write(client_frame(text))

    def ping(self) -> None:
        self.send(wire.ping())

    def _beat(self) -> None:
        """A ping now and every ``PING_EVERY_S`` from the join on, so the node's idle timeout never closes a
        viewer that joined long before the run's last one (a room of 16,000 takes a minute to fill)."""
        if not self.closed:
            self.ping()
            self._pinger = asyncio.get_running_loop().call_later(PING_EVERY_S, self._beat)

    def close(self) -> None:
        if self._pinger is not None:
            self._pinger.cancel()
        if self._transport is not None and not self.closed:
            self.closed = True
            self._transport.close()


async def watch(url: str, token: str, room: str, sampled: bool, timeout_s: float = 30.0, tries: int = 5) -> Viewer:
    """A viewer connected to the node at ``url`` (``ws://host:port/path``), in ``room``. A refusal the node
    marks retryable (a store slow to answer on a loaded machine) is tried again, up to ``tries`` times with
    a growing pause; the viewer's ``retries`` says how often."""
    for attempt in range(tries):
        try:
            viewer = await _watch(url, token, room, sampled, timeout_s)
        except ConnectionError as err:
            if '"retryable":true' not in str(err) or attempt == tries - 1:
                raise
            await asyncio.sleep(2**attempt)
            continue
        viewer.retries = attempt
        return viewer
    raise AssertionError("unreachable")


async def _watch(url: str, token: str, room: str, sampled: bool, timeout_s: float) -> Viewer:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    loop = asyncio.get_running_loop()
    _, viewer = await loop.create_connection(
        lambda: Viewer(f"{host}:{port}", parts.path or "/", token, room, sampled), host, port)
    try:
        async with asyncio.timeout(timeout_s):
            await viewer.joined
    except BaseException:
        viewer.close()
        raise
    return viewer
