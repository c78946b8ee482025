"""The presence worker against a real nats-server: taking partitions with many users online neither
starves its lease renewals nor announces the restored users online again; a node's devices stay online on its
beats alone, and a change the worker missed is asked for and set right (ADR 0049)."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError
from parley.node.presence_changes import ChangeNumbers
from parley.workers.presence import PresenceWorker, mono_ms, now_ms
from parley.workers.presence_leases import PartitionLeases, open_lease_bucket

from parley import bus, wire
from parley.presence_bus import PRESENCE_PREFIX, ask_subject, heartbeat_subject, open_buckets
from parley.presence_partitions import partition_of
from parley.settings import Settings
from tests.poll import eventually

PARTITIONS, ONLINE = 8, 5000


@pytest.fixture
def settings(nats_url: str) -> Settings:
    return Settings(nats_url=nats_url, presence_partitions=PARTITIONS, presence_lease_s=3.0)


async def test_a_takeover_of_many_online_users_keeps_its_leases_and_announces_none_again(settings):
    nc = await bus.connect(settings, "test")
    online, seen = await open_buckets(nc.jetstream(), settings)
    users = [f"u{i:05d}" for i in range(ONLINE)]
    value = orjson.dumps({"last_active_at": now_ms()})
    for start in range(0, ONLINE, 500):  # online before the worker starts, as a dead worker left them
        await asyncio.gather(*(online.put(u, value) for u in users[start:start + 500]))
    announced: list[str] = []

    async def heard(msg: Msg) -> None:
        announced.append(msg.subject)

    watch = await nc.subscribe(PRESENCE_PREFIX + ">", cb=heard)
    worker = PresenceWorker(settings, nc, online, seen)
    dropped: list[int] = []

    async def drop(partitions: list[int]) -> None:
        dropped.extend(partitions)
        await worker.drop(partitions)

    leases = PartitionLeases(await open_lease_bucket(nc.jetstream(), settings), "w1", settings,
                             adopt=worker.adopt, drop=drop)
    stop = asyncio.Event()
    running = asyncio.create_task(leases.run(stop))
    try:
        await eventually(lambda: len(worker.book.online_users()) == ONLINE, what="every online user restored",
                         timeout=30)
        p = partition_of(users[0], PARTITIONS)
        newcomer = next(f"new{i}" for i in range(1000) if partition_of(f"new{i}", PARTITIONS) == p)
        beats = wire.Heartbeats(((users[0], "d1", now_ms()), (newcomer, "d1", now_ms())))
        await nc.publish(heartbeat_subject(p, "n1"), wire.encode(beats))
        await eventually(lambda: PRESENCE_PREFIX + newcomer in announced, what="the newcomer announced online")
        assert announced == [PRESENCE_PREFIX + newcomer]  # the restored user beat too: known online, no news
        renewed_from = leases.book.held[p].revision
        await eventually(lambda: leases.book.held[p].revision > renewed_from + 2 * PARTITIONS,
                         what="two more lease rounds")
        assert dropped == [] and leases.book.owned() == list(range(PARTITIONS))
    finally:
        stop.set()
        await running
        await worker.close()
        await watch.unsubscribe()
        await bus.close_quietly(nc)


async def test_the_refresh_rewrites_every_online_users_activity_in_the_bucket(settings):
    nc = await bus.connect(settings, "test")
    online, seen = await open_buckets(nc.jetstream(), settings)
    worker = PresenceWorker(settings, nc, online, seen)
    users = [f"r{i:03d}" for i in range(300)]
    for i, user in enumerate(users):
        worker.book.heartbeat(user, "d1", 1_000 + i)
    try:
        await worker.refresh(worker.book.online_users())

        async def written() -> bool:
            entries = await asyncio.gather(*(online.get(u) for u in users))
            return [orjson.loads(e.value)["last_active_at"] for e in entries] == [1_000 + i for i in range(300)]
        await eventually(written, what="every online user's activity in the presence bucket",
                         ignoring=(KeyNotFoundError,))
    finally:
        await bus.close_quietly(nc)


async def test_the_tick_rewrites_the_users_whose_refresh_is_due_and_no_one_else(settings):
    nc = await bus.connect(settings, "test")
    online, seen = await open_buckets(nc.jetstream(), settings)
    worker = PresenceWorker(settings, nc, online, seen)
    beat = now_ms()  # online for the whole test: the tick takes no one offline
    for user in ("due", "fresh"):
        worker.book.heartbeat(user, "d1", beat)
    worker.refreshes.written("due", mono_ms() - worker.refreshes.period_ms)  # written a period ago (ADR 0046)
    worker.refreshes.written("fresh", mono_ms())
    stop = asyncio.Event()
    ticking = asyncio.create_task(worker.tick_forever(stop))
    try:
        async def written() -> bool:
            return orjson.loads((await online.get("due")).value)["last_active_at"] == beat
        await eventually(written, what="the due user's entry rewritten", ignoring=(KeyNotFoundError,))
        with pytest.raises(KeyNotFoundError):  # a period from now: not rewritten at this tick
            await online.get("fresh")
    finally:
        stop.set()
        await ticking
        await bus.close_quietly(nc)


async def test_devices_stay_online_on_beats_alone_and_a_missed_departure_is_asked_for_and_set_right(nats_url):
    settings = Settings(nats_url=nats_url, presence_partitions=PARTITIONS, presence_timeout_s=1.0,
                        presence_beat_s=0.2)
    nc = await bus.connect(settings, "test")
    online, seen = await open_buckets(nc.jetstream(), settings)
    worker = PresenceWorker(settings, nc, online, seen)
    user = "held-user"
    p = partition_of(user, PARTITIONS)
    node = ChangeNumbers("n1", now_ms(), PARTITIONS, every=10**6)  # the node's own numbering; no unasked report
    held: list[tuple[str, str]] = []  # what the node holds
    announced: list[tuple[str, bool]] = []
    asks: list[int] = []
    beats = 0

    async def heard(msg: Msg) -> None:
        change = wire.decode(msg.data)
        assert isinstance(change, wire.PresenceChange)
        announced.append((change.user, change.online))

    async def answer(msg: Msg) -> None:  # the node's side of an ask
        ask = wire.decode(msg.data)
        assert isinstance(ask, wire.ReportAsk)
        asks.append(ask.partition)
        for report in node.report(ask.partition, held, now_ms()):
            await nc.publish(heartbeat_subject(ask.partition, "n1"), wire.encode(report))

    async def beat() -> None:
        nonlocal beats
        while True:
            await nc.publish(heartbeat_subject(p, "n1"), wire.encode(node.beat(now_ms())[p]))
            beats += 1
            await asyncio.sleep(settings.presence_beat_s)  # the node's beat: the scenario, not a wait

    watch = await nc.subscribe(PRESENCE_PREFIX + user, cb=heard)
    asked = await nc.subscribe(ask_subject("n1"), cb=answer)
    await worker.adopt([p])
    stop = asyncio.Event()
    ticking = asyncio.create_task(worker.tick_forever(stop))
    beating = asyncio.create_task(beat())
    try:
        held.append((user, "d1"))
        await nc.publish(heartbeat_subject(p, "n1"), wire.encode(node.change(p, user, "d1", True, now_ms())))
        await eventually(lambda: announced == [(user, True)], what="online at its arrival")
        from_beat = beats
        await eventually(lambda: beats >= from_beat + 20, what="four timeouts of beats", timeout=20)
        assert announced == [(user, True)] and asks == []  # held on beats that list no device; nothing missed
        held.clear()
        node.change(p, user, "d1", False, now_ms())  # the departure, lost on its way
        await eventually(lambda: announced == [(user, True), (user, False)], what="offline after the report")
        assert asks and set(asks) == {p}
    finally:
        stop.set()
        beating.cancel()
        await asyncio.gather(ticking, beating, return_exceptions=True)
        await worker.close()
        await watch.unsubscribe()
        await asked.unsubscribe()
        await bus.close_quietly(nc)
