"""Presence partition leases against a real nats-server: workers split the partitions, a dead one's are
taken once its leases expire, a renewal that finds its lease taken gives the partition up, and a worker
that stops hands its partitions over at once."""

from __future__ import annotations

import asyncio
import time

from nats.aio.client import Client
from nats.js.errors import BucketNotFoundError
from parley.workers.presence_leases import LEASE_BUCKET, PartitionLeases, open_lease_bucket, snapshot

from parley.settings import Settings
from tests.poll import eventually

PARTITIONS = 8


class Worker:
    """A worker's leases, with what it was told to adopt and drop."""

    def __init__(self, leases: PartitionLeases) -> None:
        self.leases, self.held = leases, set[int]()
        self.dropped: list[int] = []

    @classmethod
    async def of(cls, nc: Client, name: str, lease_s: float = 1.5) -> Worker:
        settings = Settings(presence_partitions=PARTITIONS, presence_lease_s=lease_s)
        worker = cls.__new__(cls)
        kv = await open_lease_bucket(nc.jetstream(), settings)
        worker.__init__(PartitionLeases(kv, name, settings, adopt=worker.adopt, drop=worker.drop))
        return worker

    async def adopt(self, partitions: list[int]) -> None:
        assert not self.held & set(partitions)
        self.held |= set(partitions)

    async def drop(self, partitions: list[int]) -> None:
        self.held -= set(partitions)
        self.dropped += partitions


async def rounds(*workers: Worker) -> None:
    for w in workers:
        await w.leases.round()


async def test_two_workers_split_the_partitions_evenly_and_never_both_hold_one(nc):
    a, b = await Worker.of(nc, "a"), await Worker.of(nc, "b")
    await rounds(a)
    assert a.held == set(range(PARTITIONS))

    async def split() -> bool:
        await rounds(a, b)
        assert not a.held & b.held
        return len(a.held) == len(b.held) == PARTITIONS // 2

    await eventually(split, what="an even split", timeout=10)
    await rounds(a, b)  # the workers' keys are fresh when read (a loaded box can outlast their TTL between rounds)
    owners, workers = await snapshot(a.leases._kv)
    assert workers == {"a", "b"}
    assert {p for p, w in owners.items() if w == "a"} == a.held == set(a.leases.book.owned())


async def test_a_dead_workers_partitions_are_taken_after_its_leases_expire_and_it_cannot_renew_them(nc):
    a, b = await Worker.of(nc, "a"), await Worker.of(nc, "b")
    async def split() -> bool:
        await rounds(a, b)
        return len(a.held) == len(b.held) == PARTITIONS // 2

    await eventually(split, what="an even split", timeout=10)
    theirs = set(b.held)
    died = time.monotonic()  # b stops renewing, as if killed

    async def all_on_a() -> bool:
        await rounds(a)
        return a.held == set(range(PARTITIONS))

    await eventually(all_on_a, what="a took b's partitions", timeout=10)
    assert time.monotonic() - died >= 1.0  # not before b's leases could have expired
    await rounds(b)  # b comes back: its leases were taken, so it gives them up
    assert not b.held & theirs and set(b.dropped) >= theirs


async def test_a_renewal_that_finds_its_lease_taken_gives_the_partition_up(nc):
    a = await Worker.of(nc, "a", lease_s=60.0)
    await rounds(a)
    kv = a.leases._kv
    entry = await kv.get("p.3")
    await kv.update("p.3", b"intruder", last=entry.revision)  # someone else holds it now
    await a.leases.round()
    assert 3 not in a.held and 3 in a.dropped and 3 not in a.leases.book.owned()


async def test_a_worker_that_stops_hands_its_partitions_over_at_once(nc):
    a, b = await Worker.of(nc, "a", lease_s=60.0), await Worker.of(nc, "b", lease_s=60.0)
    await rounds(a, b)
    assert a.held == set(range(PARTITIONS)) and not b.held  # b found none free
    await a.leases.release_all()
    assert not a.held
    await rounds(b)  # no waiting for a 60 s lease to expire
    assert b.held == set(range(PARTITIONS))


async def test_a_worker_whose_bucket_was_lost_creates_it_again_and_holds_its_partitions_again(nc):
    """A NATS restart loses the memory bucket: every renewal fails until the worker creates it again."""
    settings = Settings(presence_partitions=PARTITIONS, presence_lease_s=1.5)
    worker = Worker.__new__(Worker)
    kv = await open_lease_bucket(nc.jetstream(), settings)
    worker.__init__(PartitionLeases(kv, "a", settings, adopt=worker.adopt, drop=worker.drop,
                                    reopen=lambda: open_lease_bucket(nc.jetstream(), settings)))
    await worker.leases.round()
    assert worker.held == set(range(PARTITIONS))
    await nc.jetstream().delete_key_value(LEASE_BUCKET)
    stop = asyncio.Event()
    running = asyncio.get_running_loop().create_task(worker.leases.run(stop))
    try:
        async def held_in_the_new_bucket() -> bool:
            owners, _ = await snapshot(await nc.jetstream().key_value(LEASE_BUCKET))
            return worker.held == set(range(PARTITIONS)) and owners == dict.fromkeys(range(PARTITIONS), "a")

        await eventually(held_in_the_new_bucket, what="the partitions held in a new bucket", timeout=15,
                         ignoring=(BucketNotFoundError,))
    finally:
        stop.set()
        await running
