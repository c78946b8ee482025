"""JetStream publishes sent together and their acks read together: one inbox, no request per message.

nats-py's ``js.publish`` (and the KV bucket's ``put`` and ``delete`` over it) is a ``request`` each: a reply
inbox token, a future, a ``wait_for``, a ``Msg`` and a hop through the inbox subscription's task for the ack,
its JSON decoded into a ``PubAck``; a caller writing many at once adds a task each (``gather``). Here a batch of
publishes (``send``) goes out with reply subjects ``<inbox>.<n>`` of one wildcard subscription of this client,
dispatched inline (``BusClient.subscribe_raw``, as ``parley.bus.pull`` reads its pulls), and one future is
waited for: set when the batch's last ack came, or its timeout passed. Each publish's outcome is its stream
sequence or the exception ``js.publish`` would have raised (``NoStreamResponseError`` when no stream answered,
``APIError`` for the stream's refusal, nats-py's ``TimeoutError`` for no ack in time, the publish's own error
when the connection refused it), so callers keep their error handling (``parley.bus.outage.is_transient``).

Used by the presence worker's bucket writes (``workers/presence_writes.py``, ADR 0061).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import orjson
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import APIError, InvalidKeyError, NoStreamResponseError
from nats.js.kv import KV_DEL, KV_OP, VALID_KEY_RE

from parley.bus.ordered import NO_RESPONDERS, BusClient

PUBLISH_TIMEOUT_S = 5.0
KV_DELETE = {KV_OP: KV_DEL}  # a KV bucket's delete marker (what ``KeyValue.delete`` publishes)


@dataclass(frozen=True)
class Publish:
    subject: str
    payload: bytes = b""
    headers: dict[str, str] | None = None


Outcome = int | BaseException  # a publish's stream sequence, or why it was not stored


def kv_subject(bucket: str, key: str) -> str:
    """The subject a KV bucket's entry is written on; ``InvalidKeyError`` for a key ``KeyValue`` refuses."""
    if not key or key[0] == "." or key[-1] == "." or not VALID_KEY_RE.match(key):
        raise InvalidKeyError(key)
    return f"$KV.{bucket}.{key}"


def pub_ack(status: bytes | None, data: bytes) -> Outcome:
    """A JetStream publish's answer as it came (raw status header block, data): the stored sequence, or the
    exception nats-py's ``js.publish`` raises for it."""
    if status is not None and status.startswith(NO_RESPONDERS):
        return NoStreamResponseError()
    try:
        ack = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        return APIError(description=f"not a publish ack: {err}")
    if "error" in ack:
        try:
            APIError.from_error(ack["error"])  # raises the error's own class (``BadRequestError``, …)
        except APIError as refused:
            return refused
    return int(ack["seq"])


@dataclass
class _Batch:
    outcomes: list[Outcome | None]
    left: int
    done: asyncio.Future[None]
    tokens: list[bytes] = field(default_factory=list)

    def answered(self, i: int, outcome: Outcome) -> None:
        if self.outcomes[i] is None:
            self.outcomes[i] = outcome
            self.left -= 1
            if self.left == 0 and not self.done.done():
                self.done.set_result(None)


class AckedPublishes:
    """``send`` a batch of JetStream publishes; outcomes in the batch's order. Batches may overlap."""

    def __init__(self, nc: BusClient, timeout: float = PUBLISH_TIMEOUT_S) -> None:
        self._nc, self._timeout = nc, timeout
        self._prefix = b""  # <inbox>. once subscribed
        self._lock = asyncio.Lock()
        self._count = 0
        self._waiting: dict[bytes, tuple[_Batch, int]] = {}  # reply token → (its batch, index)

    async def send(self, publishes: list[Publish]) -> list[Outcome]:
        if not publishes:
            return []
        if not self._prefix:
            await self._open()
        loop = asyncio.get_running_loop()
        batch = _Batch([None] * len(publishes), len(publishes), loop.create_future())
        prefix = self._prefix.decode()
        for i, pub in enumerate(publishes):
            self._count += 1
            token = b"%d" % self._count
            batch.tokens.append(token)
            self._waiting[token] = (batch, i)
            try:
                await self._nc.publish(pub.subject, pub.payload, reply=prefix + token.decode(), headers=pub.headers)
            except Exception as err:  # closed, draining, or the reconnect buffer full: not sent
                batch.answered(i, err)
        timer = loop.call_later(self._timeout, _expire, batch)
        try:
            if batch.left:
                await batch.done
        finally:
            timer.cancel()
            for token in batch.tokens:
                self._waiting.pop(token, None)
        return [NatsTimeout() if outcome is None else outcome for outcome in batch.outcomes]

    async def _open(self) -> None:
        async with self._lock:
            if self._prefix:
                return
            inbox = self._nc.new_inbox()
            await self._nc.subscribe_raw(inbox + ".*", self._on_ack)
            self._prefix = inbox.encode() + b"."

    def _on_ack(self, subject: bytes, reply: bytes, headers: bytes | None, data: bytes) -> None:
        waiting = self._waiting.pop(subject[len(self._prefix):], None)
        if waiting is not None:  # else late: its batch timed out
            batch, i = waiting
            batch.answered(i, pub_ack(headers, data))


def _expire(batch: _Batch) -> None:
    if not batch.done.done():
        batch.done.set_result(None)
