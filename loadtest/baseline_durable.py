"""The durable floor: the bare relay (``loadtest.baseline``: the same frames, so the same generator drives it)
with JetStream durability under it and no Parley logic — what a DM's durable path costs by itself
(``loadtest.efficiency --systems durable``, docs/adr/0068).

- ``relay``: each ``send`` is published to one shard's message stream, configured exactly as Parley's
  (``parley.bus.stream.stream_config``: ``MSG_0`` capturing ``msg.0.>``, file storage, limits, the duplicate
  window, RePublish to ``dlv.>``), the way the node publishes (``publish_chained``: ``Nats-Msg-Id`` and
  ``Nats-Expected-Last-Subject-Sequence``, the payload naming ``prev``, the PubAck read raw); the sender's
  ``ack`` is written only after the PubAck. Every ``msg`` — the receiver's and the sender's echo — comes from
  the republished copy: per connected user the node's two DM subscriptions (``dlv.dm.<user>.*``,
  ``dlv.dm.*.<user>``, ``BusClient.subscribe_headed``: dispatched inline, the id read from the header block),
  a room's one subscription (``dlv.g.<room>``) made when it is registered. Frames are written to the socket's
  transport as the node does (a prebuilt text-frame header, ``transport.writelines``).
- ``archive``: Parley's archiver consumer on the stream (``ensure_archiver_consumer``: durable, explicit acks);
  every ``LINGER_S`` one pull request takes what is pending (up to ``BATCH``), written into SQLite in one
  transaction (WAL, ``synchronous=FULL``, the ``messages`` table's columns and index), then acked one ack per
  message, all in one write (``BusClient.publish_bare``), as workers/archiver.py does.

No cursors, presence, receipts, rate limits or auth. ``hello``'s token is the user id; conversations are
registered before the load with ``POST /rooms`` ``{conv: [user, ...]}`` (two members: a DM).

    python -m parley.loadtest.baseline_durable relay --port 8765 --nats nats://127.0.0.1:4222
    python -m parley.loadtest.baseline_durable archive --nats nats://127.0.0.1:4222 --db /tmp/floor.db
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import uvloop
from aiohttp import WSMsgType, web
from nats.js.errors import APIError
from parley.node.wsframes import HEADERS, text_header
from parley.tools import natsserver
from parley.tools.cluster import die_with_parent, free_port

from parley.bus.ensure import ensure_stream
from parley.bus.ordered import BusClient, stream_position
from parley.bus.pull import ACK, status_of, stream_sequence
from parley.bus.stream import ensure_archiver_consumer, parse_wrong_last_sequence, publish_chained, stream_config
from parley.settings import Settings
from parley.shards import pack

SETTINGS = Settings(shards=1)  # one shard: stream MSG_0, the archiver's durable on it
STREAM = stream_config(SETTINGS, 0)
ATTEMPTS = 16  # a wrong last sequence is retried with the one the refusal names, as node/publisher.py does
BATCH, LINGER_S = 5000, 0.1  # Settings.archiver_batch, archiver_linger_s
PULL_WAIT_S = 2.0
SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, conv TEXT NOT NULL, prev INTEGER NOT NULL,
    sender TEXT NOT NULL, device TEXT NOT NULL, cid TEXT NOT NULL, body TEXT NOT NULL, ts INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS messages_by_conv ON messages(conv, id);
"""


async def bus(url: str) -> BusClient:
    nc = BusClient()
    await nc.connect(url, max_reconnect_attempts=-1)
    await ensure_stream(nc.jetstream(), STREAM)
    return nc


# ---- the relay ----------------------------------------------------------------------------------------


class Relay:
    def __init__(self, nc: BusClient) -> None:
        self.nc = nc
        self.rooms: dict[str, list[str]] = {}  # conversation -> members
        self.token: dict[str, str] = {}  # conversation -> its subject's tail (dm.<a>.<b> or g.<conv>)
        self.conv: dict[str, str] = {}  # subject tail -> conversation
        self.sockets: dict[str, Any] = {}  # user -> the transport of its connection
        self.last: dict[str, int] = {}  # subject tail -> its last stream sequence (the chain)

    async def register(self, request: web.Request) -> web.Response:
        for conv, members in orjson.loads(await request.read()).items():
            token = f"dm.{members[0]}.{members[1]}" if len(members) == 2 else f"g.{conv}"
            self.rooms[conv], self.token[conv], self.conv[token] = members, token, conv
            if len(members) > 2:  # a group: one subscription for its members here
                await self.nc.subscribe_headed(f"dlv.{token}", partial(self.deliver, members))
        await self.nc.flush()
        return web.json_response({"rooms": len(self.rooms)})

    def deliver(self, users: list[str], subject: str, raw: bytes | None, data: bytes) -> None:
        """A republished message: a ``msg`` frame to each of ``users`` connected here."""
        pos = stream_position(raw) if raw else None
        if pos is None:
            return
        p = orjson.loads(data)
        frame = orjson.dumps({"type": "msg", "id": pack(0, pos[1]), "conv": self.conv[subject[4:]],
                              "from": p["from"], "body": p["body"]})
        header = HEADERS.get(len(frame)) or text_header(len(frame))
        for user in users:
            if (transport := self.sockets.get(user)) is not None and not transport.is_closing():
                transport.writelines([header, frame])

    async def publish(self, user: str, f: dict[str, Any]) -> int:
        """Store the message (chained to its conversation's last, deduplicated by its cid); its id."""
        token = self.token[f["conv"]]
        expected = self.last.get(token, 0)
        for _ in range(ATTEMPTS):
            payload = orjson.dumps({"from": user, "device": user, "cid": f["cid"], "body": f["body"],
                                    "ts": time.time_ns() // 1_000_000, "prev": pack(0, expected) if expected else 0})
            try:
                seq, _ = await publish_chained(self.nc, f"msg.0.{token}", payload, f"{user}:{f['cid']}", expected)
            except APIError as err:
                if (actual := parse_wrong_last_sequence(err)) is None:
                    raise
                expected = actual
                continue
            self.last[token] = max(seq, self.last.get(token, 0))
            return pack(0, seq)
        raise RuntimeError("conversation too busy")

    async def relay(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0, compress=False)
        await ws.prepare(request)
        transport, user, subs = request.transport, "", []
        assert transport is not None

        def write(frame: bytes) -> None:
            transport.writelines([HEADERS.get(len(frame)) or text_header(len(frame)), frame])

        async for m in ws:
            if m.type != WSMsgType.TEXT:
                break
            f = orjson.loads(m.data)
            kind = f.get("type")
            if kind == "send":
                id = await self.publish(user, f)
                write(orjson.dumps({"type": "ack", "cid": f["cid"], "id": id, "conv": f["conv"]}))
            elif kind == "hello":
                user = str(f["token"])
                subs = [await self.nc.subscribe_headed(s, partial(self.deliver, [user]))
                        for s in (f"dlv.dm.{user}.*", f"dlv.dm.*.{user}")]
                await self.nc.flush()  # the server has our interest before the first message
                self.sockets[user] = transport
                write(orjson.dumps({"type": "welcome", "user": user, "cursor": ""}))
                write(b'{"type":"synced","cursor":""}')
            elif kind == "ping":
                write(b'{"type":"pong"}')
        if user and self.sockets.get(user) is transport:
            del self.sockets[user]
        await self.nc.unsubscribe_ordered(*subs)
        return ws


def relay_app(nc: BusClient) -> web.Application:
    r = Relay(nc)
    a = web.Application()
    a.router.add_post("/rooms", r.register)
    a.router.add_get("/ws", r.relay)
    return a


async def serve_relay(port: int, url: str) -> None:
    nc = await bus(url)
    runner = web.AppRunner(relay_app(nc), handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await stop_event().wait()
    await runner.cleanup()
    await nc.close()


# ---- the archiving worker -----------------------------------------------------------------------------


def open_db(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(SCHEMA)
    return db


def write(db: sqlite3.Connection, batch: list[tuple[bytes, bytes, bytes]]) -> None:
    """One transaction: every message of the batch as a row (a redelivered one rewrites nothing)."""
    rows = []
    for subject, reply, data in batch:
        p = orjson.loads(data)
        rows.append((pack(0, stream_sequence(reply.decode())), subject[6:].decode(), p["prev"], p["from"],
                     p["device"], p["cid"], p["body"], p["ts"]))
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany("INSERT OR IGNORE INTO messages VALUES (?,?,?,?,?,?,?,?)", rows)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


async def archive(url: str, path: str, stop: asyncio.Event | None) -> None:
    """Pull, write, ack, until ``stop`` (None: until SIGTERM): a batch is acked only after its transaction committed."""
    stop = stop or stop_event()
    nc = await bus(url)
    await ensure_archiver_consumer(nc.jetstream(), SETTINGS)
    db = open_db(path)
    inbox, got, ended, n = nc.new_inbox(), [], asyncio.Event(), 0

    def on_msg(subject: bytes, reply: bytes, headers: bytes | None, data: bytes) -> None:
        if status_of(headers) is None:
            got.append((subject, reply, data))
            if len(got) >= BATCH:
                ended.set()
        elif subject == f"{inbox}.{n}".encode():  # this request is over (404: nothing more pending; 408)
            ended.set()

    sub = await nc.subscribe_raw(f"{inbox}.*", on_msg)
    while not stop.is_set():
        n += 1
        ended.clear()
        await nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{STREAM.name}.archiver",
                         orjson.dumps({"batch": BATCH, "no_wait": True}), reply=f"{inbox}.{n}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ended.wait(), PULL_WAIT_S)
        batch, got[:] = got[:], []
        if batch:
            await asyncio.to_thread(write, db, batch)
            await nc.publish_bare([reply.decode() for _, reply, _ in batch], ACK)
        if len(batch) < BATCH:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), LINGER_S)
    await nc.unsubscribe_raw(sub)
    await nc.close()
    db.close()


def stop_event() -> asyncio.Event:
    """Set on SIGTERM or SIGINT."""
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    return stop


# ---- the three processes, for the bench ---------------------------------------------------------------


@contextlib.contextmanager
def floor_servers(root: Path) -> Iterator[tuple[int, dict[str, int]]]:
    """nats-server (nats.conf, JetStream under ``root``), the relay and the archiving worker, each a child tied
    to this process: (the relay's port, pids by name: ``relay``, ``nats-server``, ``archiver``)."""
    nats_port, port = free_port(), free_port()
    url = f"nats://127.0.0.1:{nats_port}"
    me = [sys.executable, "-m", "parley.loadtest.baseline_durable"]
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        procs["nats-server"] = natsserver.start(nats_port, root / "nats", root / "nats.log", preexec_fn=die_with_parent)
        wait_port(nats_port, procs["nats-server"])
        procs["relay"] = subprocess.Popen([*me, "relay", "--port", str(port), "--nats", url],
                                          preexec_fn=die_with_parent, stdout=subprocess.DEVNULL)
        wait_port(port, procs["relay"])  # listening: the stream exists
        procs["archiver"] = subprocess.Popen([*me, "archive", "--nats", url, "--db", str(root / "floor.db")],
                                             preexec_fn=die_with_parent, stdout=subprocess.DEVNULL)
        yield port, {name: p.pid for name, p in procs.items()}
    finally:
        for p in reversed(procs.values()):
            p.terminate()
        for p in procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(10)


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on port {port}")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m parley.loadtest.baseline_durable", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="role", required=True)
    r = sub.add_parser("relay")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--nats", required=True)
    a = sub.add_parser("archive")
    a.add_argument("--nats", required=True)
    a.add_argument("--db", required=True)
    args = p.parse_args(argv)
    if args.role == "relay":
        uvloop.run(serve_relay(args.port, args.nats))
    else:
        uvloop.run(archive(args.nats, args.db, None))


if __name__ == "__main__":
    main()
