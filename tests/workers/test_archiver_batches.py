"""The archiver's batch size against a real nats-server and a real Cassandra (ADR 0058): a backlog is written in
a few large batches (Cassandra's CPU follows partition mutations, and a larger batch holds more messages per
conversation), each message once, and history reads them all back."""

from __future__ import annotations

import asyncio
from collections import Counter

from parley.workers.archiver import archive

from parley import bus
from parley.ids import ConversationId
from parley.metrics import ArchiverMetrics
from parley.store import StoredMessage, open_store
from parley.store.columns import MessageRow
from tests.conftest import cassandra_settings, new_keyspace
from tests.poll import eventually
from tests.workers.test_archiver import publish

BACKLOG = 3000
CONVERSATIONS = 30


class Counting:
    """The real store, counting its writes and the messages each carried."""

    def __init__(self, store) -> None:
        self.store, self.writes, self.put = store, 0, Counter()

    async def put_rows(self, messages: list[MessageRow]) -> None:
        self.writes += 1
        self.put.update(m[0] for m in messages)  # each row's id
        await self.store.put_rows(messages)

    async def apply_actions(self, entries: list[StoredMessage]) -> list[StoredMessage]:
        return await self.store.apply_actions(entries)


async def test_a_backlog_goes_into_cassandra_in_a_few_large_batches_each_message_once(cassandra, nats_url):
    settings = cassandra_settings(cassandra, new_keyspace("arcbatch"), nats_url=nats_url)
    nc = await bus.connect(settings, "test")
    store = open_store(settings)
    await store.migrate()
    await publish(nc, settings, BACKLOG, CONVERSATIONS)
    counting, stop = Counting(store), asyncio.Event()
    task = asyncio.get_running_loop().create_task(archive(settings, counting, nc, stop, ArchiverMetrics()))
    try:
        async def all_acked() -> bool:
            return sum([await bus.archived_through(nc, settings, s) for s in range(settings.shards)]) == BACKLOG

        await eventually(all_acked, what="the backlog archived and acked", timeout=60)
        assert len(counting.put) == BACKLOG and max(counting.put.values()) == 1
        assert counting.writes <= 3, f"{counting.writes} writes for a backlog of {BACKLOG}"
        page = await store.history(ConversationId("g.c7"), before=None, after=None, limit=500, newest_first=True)
        assert len(page) == BACKLOG // CONVERSATIONS
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await bus.close_quietly(nc)
        await store.close()
