"""The scale benchmark's load processes: publishers that send as Parley's publisher does, and one subscriber.

A publisher (``publisher_main``) owns a slice of the conversations and sends to them round-robin, so two
sends in flight never share a conversation (the node serialises a conversation by a lock; round-robin
over thousands of conversations with a few dozen in flight gives the same guarantee without one). Each
send carries ``Nats-Msg-Id`` (dedup) and ``Nats-Expected-Last-Subject-Sequence`` (the conversation's
chain, kept per conversation as ``node/publisher.py`` keeps it; a refusal naming the real last sequence
is retried) and waits for its ack, ``inflight`` sends at a time. The subscriber (``subscriber_main``)
counts what the streams republish on ``dlv.>``, as the edge nodes' subscriptions receive it.

Both run in their own processes (multiprocessing, spawn) and obey phase commands from a pipe: a phase
is a wall-clock window ``[t0, t1)`` after a start time, closed loop (``rate`` None: as fast as acks come
back) or open loop (``rate`` sends/s from this process). Each answers with what happened in the window.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import nats
import orjson

from parley.bus.stream import WRONG_LAST_SEQUENCE

MAX_ATTEMPTS = 16
PUBLISH_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Phase:
    start: float  # wall clock (time.time()): sending starts
    t0: float  # the measured window
    t1: float
    rate: float | None  # sends/s from this process; None: closed loop
    inflight: int


def subject(shards: int, conv: int) -> str:
    """Conversation ``conv``'s subject: its shard is a stable function of its id (here the id mod K)."""
    return f"msg.{conv % shards}.c.{conv}"


def payload(conv: int, prev: int, body_bytes: int) -> bytes:
    head = b'{"conv":"c%d","prev":%d,"from":"u%d","body":"' % (conv, prev, conv)
    return head + b"x" * max(0, body_bytes - len(head) - 2) + b'"}'


class WrongLastSequence(Exception):
    def __init__(self, actual: int | None) -> None:
        super().__init__(actual)
        self.actual = actual


class Acks:
    """JetStream publishes with their acks on one wildcard inbox: the same wire as ``js.publish`` (an
    HPUB with a reply subject, a JSON ack back), with less Python per message so the generator's own
    CPU stays small next to the server's."""

    def __init__(self, nc: Any) -> None:
        self.nc, self.prefix, self.waiting, self.n = nc, nc.new_inbox(), {}, 0

    async def start(self) -> None:
        await self.nc.subscribe(self.prefix + ".*", cb=self._on_ack, pending_msgs_limit=1_000_000)

    async def _on_ack(self, msg: Any) -> None:
        fut = self.waiting.pop(msg.subject[len(self.prefix) + 1:], None)
        if fut is not None and not fut.done():
            fut.set_result(msg.data)

    async def publish(self, subj: str, data: bytes, headers: dict[str, str]) -> int:
        self.n += 1
        token = str(self.n)
        fut = asyncio.get_running_loop().create_future()
        self.waiting[token] = fut
        await self.nc.publish(subj, data, reply=f"{self.prefix}.{token}", headers=headers)
        try:
            ack = orjson.loads(await asyncio.wait_for(fut, PUBLISH_TIMEOUT_S))
        finally:
            self.waiting.pop(token, None)
        if "error" in ack:
            err = ack["error"]
            if err.get("err_code") == WRONG_LAST_SEQUENCE:
                tail = str(err.get("description", "")).rsplit(":", 1)[-1].strip()
                raise WrongLastSequence(int(tail) if tail.isdigit() else None)
            raise RuntimeError(f"publish refused: {err}")
        return int(ack["seq"])


class Sender:
    def __init__(self, js: Acks, shards: int, convs: list[int], body_bytes: int, tag: str) -> None:
        self.js, self.shards, self.convs, self.body_bytes, self.tag = js, shards, convs, body_bytes, tag
        self.last: dict[int, int] = {}
        self.next_conv = self.sent = 0

    async def send_one(self) -> int:
        """One message into the next conversation; the number of retries (a stale chain) it took."""
        conv = self.convs[self.next_conv % len(self.convs)]
        self.next_conv += 1
        self.sent += 1
        msg_id = f"{self.tag}-{self.sent}"
        expected = self.last.get(conv, 0)
        for attempt in range(MAX_ATTEMPTS):
            headers = {"Nats-Msg-Id": msg_id, "Nats-Expected-Last-Subject-Sequence": str(expected)}
            try:
                seq = await self.js.publish(subject(self.shards, conv), payload(conv, expected, self.body_bytes),
                                            headers)
            except WrongLastSequence as err:
                if err.actual is None:
                    raise RuntimeError("a wrong-last-sequence refusal without the sequence") from err
                expected = err.actual
                continue
            self.last[conv] = seq
            return attempt
        raise RuntimeError("conversation chain kept moving")


@dataclass
class Tally:
    acked: int = 0
    retries: int = 0
    errors: int = 0
    lat: array[int] | None = None  # ack latency of sends started in the window, ns
    lag: array[int] | None = None  # open loop: how late sends started, ns

    def __post_init__(self) -> None:
        self.lat, self.lag = array("q"), array("q")


async def run_phase(sender: Sender, ph: Phase) -> Tally:
    tally = Tally()
    t0_ns = time.perf_counter_ns() + int((ph.t0 - time.time()) * 1e9)
    t1_ns = t0_ns + int((ph.t1 - ph.t0) * 1e9)
    begin = t0_ns - int((ph.t0 - ph.start) * 1e9)
    k = 0

    async def loop() -> None:
        nonlocal k
        while True:
            now = time.perf_counter_ns()
            if ph.rate is not None:
                due = begin + int(k / ph.rate * 1e9)
                k += 1
                if due > now:
                    await asyncio.sleep((due - now) / 1e9)
                    now = time.perf_counter_ns()
                if t0_ns <= due < t1_ns:
                    tally.lag.append(now - due)  # type: ignore[union-attr]
            if now >= t1_ns:
                return
            try:
                tally.retries += await sender.send_one()
            except (TimeoutError, RuntimeError, nats.errors.Error):
                tally.errors += 1
                continue
            if now >= t0_ns:
                end = time.perf_counter_ns()
                if end < t1_ns:
                    tally.acked += 1
                tally.lat.append(end - now)  # type: ignore[union-attr]

    while time.time() < ph.start:
        await asyncio.sleep(min(0.05, ph.start - time.time()))
    await asyncio.gather(*(loop() for _ in range(ph.inflight)))
    return tally


async def _publisher(urls: list[str], shards: int, convs: list[int], body_bytes: int, tag: str,
                     conn: Connection) -> None:
    nc = await nats.connect(servers=urls, max_reconnect_attempts=-1)
    acks = Acks(nc)
    await acks.start()
    sender = Sender(acks, shards, convs, body_bytes, tag)
    loop = asyncio.get_running_loop()
    conn.send("ready")
    while (cmd := await loop.run_in_executor(None, conn.recv)) is not None:
        t = await run_phase(sender, cmd)
        conn.send({"acked": t.acked, "retries": t.retries, "errors": t.errors,
                   "lat": t.lat.tobytes() if t.lat else b"", "lag": t.lag.tobytes() if t.lag else b""})
    await nc.close()


async def _subscriber(urls: list[str], conn: Connection) -> None:
    counts = {"received": 0, "slow": 0}

    async def on_msg(_msg: Any) -> None:
        counts["received"] += 1

    async def on_error(err: Exception) -> None:
        counts["slow"] += isinstance(err, nats.errors.SlowConsumerError)

    nc = await nats.connect(servers=urls, error_cb=on_error, max_reconnect_attempts=-1)
    await nc.subscribe("dlv.>", cb=on_msg, pending_msgs_limit=2_000_000, pending_bytes_limit=1 << 30)
    await nc.flush()
    loop = asyncio.get_running_loop()
    conn.send("ready")
    while (cmd := await loop.run_in_executor(None, conn.recv)) is not None:
        await asyncio.sleep(max(0.0, cmd.t0 - time.time()))
        first = counts["received"]
        await asyncio.sleep(max(0.0, cmd.t1 - time.time()))
        conn.send({"delivered": counts["received"] - first, "slow_consumer_errors": counts["slow"]})
    await nc.close()


def _run(coro: Any) -> None:
    try:
        import uvloop
        uvloop.run(coro)
    except ImportError:
        asyncio.run(coro)


def publisher_main(urls: list[str], shards: int, convs: list[int], body_bytes: int, tag: str,
                   conn: Connection) -> None:
    _run(_publisher(urls, shards, convs, body_bytes, tag, conn))


def subscriber_main(urls: list[str], conn: Connection) -> None:
    _run(_subscriber(urls, conn))
