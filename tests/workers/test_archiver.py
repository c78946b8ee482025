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
from parley.workers.archiver import archive

from parley import bus
from parley.errors import Unavailable
from parley.ids import DeviceId, UserId
from parley.messages import encode_payload
from parley.metrics import ArchiverMetrics
from parley.settings import Settings
from parley.shards import home_for, message_subject
from parley.store import StoredMessage, open_store
from parley.store.columns import MessageRow
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
            self.put[m.id] += 1
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
