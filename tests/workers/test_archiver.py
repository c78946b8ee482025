"""The archiver against a real nats-server and a real SQLite store: everything archived once, nothing
acked while the store refuses the write (retried with backoff), and a stop while the store is down gives
the messages back at once (nak), so another archiver has them long before ack_wait."""

from __future__ import annotations

import asyncio
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
from tests.poll import eventually

COUNT = 1300


class Refusing:
    """The real store behind a switch: while ``down`` every write fails as an unreachable store's does."""

    def __init__(self, store) -> None:
        self.store, self.down, self.refused = store, True, 0

    async def put_messages(self, messages: list[StoredMessage]) -> None:
        if self.down:
            self.refused += 1
            raise Unavailable("store down (test)", code="store_unavailable")
        await self.store.put_messages(messages)


@pytest.fixture
async def settings(nats_url: str, tmp_path: Path) -> Settings:
    return Settings(nats_url=nats_url, sqlite_path=str(tmp_path / "p.db"), archiver_batch=200,
                    archiver_ack_wait_s=600.0)  # only a nak hands a message on within a test's wait


async def publish(nc: bus.BusClient, settings: Settings, count: int) -> None:
    await bus.ensure_stream(nc.jetstream(), settings)
    for i in range(count):
        conv = f"g.c{i % 50}"
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
