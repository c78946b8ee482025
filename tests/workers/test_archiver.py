"""The archiver against a real nats-server and a real SQLite store: everything archived once, nothing
acked while the store refuses the write (retried with backoff), and a stop while the store is down gives
the messages back at once (nak), so another archiver has them long before ack_wait."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from pathlib import Path

import pytest
from parley.workers.archiver import archive, decode_messages, decode_rows

from parley import bus
from parley.errors import Unavailable
from parley.ids import ConversationId, DeviceId, UserId
from parley.messages import decode_payload, encode_payload
from parley.metrics import ArchiverMetrics
from parley.settings import Settings
from parley.shards import home_for, message_subject, pack
from parley.store import AttachmentRef, StoredMessage, open_store
from parley.store.columns import MessageRow, row_of
from tests.poll import eventually

COUNT = 1300


class Refusing:
    """The real store behind a switch: while ``down`` every write fails as an unreachable store's does."""

    def __init__(self, store) -> None:
        self.store, self.down, self.refused = store, True, 0

    async def put_rows(self, messages: list[MessageRow]) -> None:
        if self.down:
            self.refused += 1
            raise Unavailable("store down (test)", code="store_unavailable")
        await self.store.put_rows(messages)


@pytest.fixture
async def settings(nats_url: str, tmp_path: Path) -> Settings:
    return Settings(nats_url=nats_url, sqlite_path=str(tmp_path / "p.db"), archiver_batch=200,
                    archiver_ack_wait_s=600.0)  # only a nak hands a message on within a test's wait


async def publish(nc: bus.BusClient, settings: Settings, count: int, conversations: int = 50) -> None:
    await bus.ensure_stream(nc.jetstream(), settings)
    for i in range(count):
        conv = f"g.c{i % conversations}"
        await nc.publish(message_subject(home_for(conv, settings.shards), conv),
                         encode_payload(sender=UserId("u"), device=DeviceId("d"), cid=str(i), body=f"m{i}", ts=i,
                                        prev=0))
    await nc.flush()


async def floor(nc: bus.BusClient, settings: Settings) -> int:
    return sum([await bus.archived_through(nc, settings, s) for s in range(settings.shards)])


async def rows(store) -> int:
    return await store._db.run(lambda db: db.execute("SELECT count(*) FROM messages").fetchone()[0])


async def test_nothing_is_acked_while_the_store_is_down_and_everything_is_archived_once_after(settings):
    nc = await bus.connect(settings, "test")
    store = open_store(settings)
    await store.migrate()
    refusing, stop, metrics = Refusing(store), asyncio.Event(), ArchiverMetrics()
    task = asyncio.get_running_loop().create_task(archive(settings, refusing, nc, stop, metrics))
    try:
        await publish(nc, settings, COUNT)
        await eventually(lambda: refusing.refused >= 3, what="writes retried while the store is down")
        assert await floor(nc, settings) == 0
        refusing.down = False

        async def all_archived() -> bool:
            return await floor(nc, settings) == COUNT

        await eventually(all_archived, what="everything archived", timeout=30)
        assert await rows(store) == COUNT
        assert metrics.registry.get_sample_value("parley_archiver_messages_total") >= COUNT
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await bus.close_quietly(nc)
        await store.close()


async def test_a_stop_while_the_store_is_down_gives_the_messages_back_at_once(settings):
    nc = await bus.connect(settings, "test")
    store = open_store(settings)
    await store.migrate()
    refusing, stop = Refusing(store), asyncio.Event()
    first = asyncio.get_running_loop().create_task(archive(settings, refusing, nc, stop, ArchiverMetrics()))
    await publish(nc, settings, COUNT)
    await eventually(lambda: refusing.refused >= 2, what="writes retried while the store is down")
    stop.set()
    await asyncio.wait_for(first, 10)  # returns: gave back what it held

    stop2 = asyncio.Event()
    second = asyncio.get_running_loop().create_task(archive(settings, store, nc, stop2, ArchiverMetrics()))
    try:
        async def all_archived() -> bool:
            return await floor(nc, settings) == COUNT

        await eventually(all_archived, what="another archiver got them before ack_wait", timeout=30)
        assert await rows(store) == COUNT
    finally:
        stop2.set()
        await asyncio.wait_for(second, 10)
        await bus.close_quietly(nc)
        await store.close()


class Slow:
    """The real store, each write held until ``hold_s`` after the first began (a big batch on a slow store)."""

    def __init__(self, store, hold_s: float) -> None:
        self.store, self.hold_s, self.began, self.put = store, hold_s, None, Counter()

    async def put_rows(self, messages: list[MessageRow]) -> None:
        self.began = self.began or time.monotonic()
        for m in messages:
            self.put[m[0]] += 1  # the row's id
        await eventually(lambda: time.monotonic() - self.began > self.hold_s, what="the slow write's end", every=0.05)
        await self.store.put_rows(messages)

    async def apply_actions(self, entries: list[StoredMessage]) -> list[StoredMessage]:
        return await self.store.apply_actions(entries)


async def test_a_write_that_outlasts_ack_wait_keeps_its_messages_and_writes_each_once(settings):
    """A batch still being written after ack_wait is not handed out again: the archiver tells JetStream it is
    working on it (progress) every third of ack_wait, so no message is redelivered and written twice."""
    settings = dataclasses.replace(settings, archiver_ack_wait_s=1.0)
    nc = await bus.connect(settings, "test")
    store = open_store(settings)
    await store.migrate()
    slow, stop = Slow(store, hold_s=3.5), asyncio.Event()
    task = asyncio.get_running_loop().create_task(archive(settings, slow, nc, stop, ArchiverMetrics()))
    try:
        await publish(nc, settings, 300)

        async def all_archived() -> bool:
            return await floor(nc, settings) == 300

        await eventually(all_archived, what="everything archived", timeout=30)
        assert await rows(store) == 300
        assert len(slow.put) == 300 and max(slow.put.values()) == 1, "messages redelivered and written again"
        js = nc.jetstream()
        assert [(await js.consumer_info(s, bus.ARCHIVER)).num_redelivered for s in bus.message_streams(settings)] \
            == [0] * len(bus.message_streams(settings))
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await bus.close_quietly(nc)
        await store.close()


def delivered(conv: str, seq: int, data: bytes, shards: int = 4) -> tuple[str, str, bytes]:
    shard = home_for(conv, shards)
    return message_subject(shard, conv), f"$JS.ACK.MSG_{shard}.archiver.1.{seq}.{seq}.1.0", data


def payload(cid: str, **entry) -> bytes:
    return encode_payload(sender=UserId("u"), device=DeviceId("d"), cid=cid, body=f"body {cid}", ts=1000, prev=0,
                          **entry)


def test_a_batch_decodes_to_its_rows_and_the_actions_and_replies_among_them_in_id_order():
    """ADR 0069: every decodable message becomes its row (a plain one without a ``StoredMessage``: the same row),
    the entries to fold come apart, in id order; an undecodable message is left out as before."""
    conv = "g.rows"
    batch = [delivered(conv, 5, payload("plain")), delivered(conv, 7, payload("re", reply_to=pack(0, 5))),
             delivered(conv, 6, payload("edit", kind="edit", target=pack(0, 5), target_ts=1000)),
             delivered(conv, 8, b'{"from": "u"}'), delivered(conv, 9, b"not json")]
    rows, entries = decode_rows(batch)
    shard = home_for(conv, 4)
    assert [r[0] for r in rows] == [pack(shard, 5), pack(shard, 7), pack(shard, 6)]
    assert all(type(r) is tuple for r in rows)  # exact: sqlite3 binds it fastest
    assert rows == [row_of(m) for m in decode_messages(batch)]
    assert [(e.cid, e.id) for e in entries] == [("edit", pack(shard, 6)), ("re", pack(shard, 7))]


class Recording:
    """The real store, keeping every row the archiver wrote."""

    def __init__(self, store) -> None:
        self.store, self.rows = store, []

    async def put_rows(self, rows: list[MessageRow]) -> None:
        self.rows.extend(rows)
        await self.store.put_rows(rows)

    async def apply_actions(self, entries: list[StoredMessage]) -> list[StoredMessage]:
        return await self.store.apply_actions(entries)


async def test_plain_messages_actions_and_replies_are_archived_from_their_rows_and_folded(settings):
    """Through the row path (``put_rows``): what is stored is what was sent, the edit and the reply folded into
    their target, the reply's quote kept, the attachment's text column written."""
    nc = await bus.connect(settings, "test")
    store = open_store(settings)
    await store.migrate()
    await bus.ensure_stream(nc.jetstream(), settings)
    conv = ConversationId("g.fold")
    subject, shard = message_subject(home_for(conv, settings.shards), conv), home_for(conv, settings.shards)
    first = pack(shard, 1)
    sent = [payload("a"), payload("b", kind="edit", target=first, target_ts=1000),
            payload("c", reply_to=first, quote_from="u", quote="body a"),
            encode_payload(sender=UserId("u"), device=DeviceId("d"), cid="d", body="file", ts=1000, prev=0,
                           attachments=(AttachmentRef("f1", "image/png", "cat.png", 12, 1, 2, True),))]
    for data in sent:
        await nc.publish(subject, data)
    await nc.flush()
    recording, stop = Recording(store), asyncio.Event()
    task = asyncio.get_running_loop().create_task(archive(settings, recording, nc, stop, ArchiverMetrics()))
    try:
        async def all_archived() -> bool:
            return await floor(nc, settings) == len(sent)

        await eventually(all_archived, what="everything archived", timeout=30)
        page = await store.history(conv, before=None, after=None, limit=10, newest_first=False)
        assert [m.cid for m in page] == ["a", "b", "c", "d"]
        assert page[0].body == "body b" and page[0].state.edit_id == pack(shard, 2)
        assert page[0].state.quoted_by == ((pack(shard, 3), 1000),)
        assert (page[2].reply_to, page[2].quote) == (first, "body a")
        assert page[3].attachments[0].id == "f1"
        assert sorted(recording.rows) == sorted(row_of(decode_payload(pack(shard, i + 1), conv, data))
                                                for i, data in enumerate(sent))
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await bus.close_quietly(nc)
        await store.close()
