"""Several archivers, pushers and presence workers sharing the work, on a real cluster of their own.

Two of each (plus one node, the API, discovery and nats-server), with short timings: a message an
archiver took and did not ack goes to the other after 3 s, presence leases expire after 4 s, pushes
are due 1 s after a message. The other tests run one of each; these show the work splits, nothing is
lost or doubled, and a killed worker's share is taken over.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator

import aiohttp
import nats
import pytest
from parley.tools.fcm_stub import FcmStub, service_account_file
from parley.workers.presence_leases import LEASE_BUCKET

from parley.presence_partitions import partition_key, partition_of
from tests.integration.cluster import Cluster
from tests.integration.conftest import Person, World
from tests.integration.test_metrics import value
from tests.integration.test_presence import changes
from tests.integration.test_push import register
from tests.poll import eventually

pytestmark = pytest.mark.integration
PARTITIONS = 8


@pytest.fixture(scope="module")
def workers_cluster(tmp_path_factory: pytest.TempPathFactory, fcm: FcmStub) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("workers-cluster")
    key = service_account_file(root, fcm.token_uri)
    c = Cluster(root, nodes=1, fcm_credentials=str(key), fcm_endpoint=fcm.url, push_grace_s=1.0,
                archiver_ack_wait_s=3.0, presence_lease_s=4.0, presence_partitions=PARTITIONS,
                archiver_batch=100)
    try:
        c.start(pusher=True, archivers=2, pushers=2, presence_workers=2)
        yield c
    finally:
        c.shutdown()


@pytest.fixture
async def wworld(workers_cluster: Cluster, http: aiohttp.ClientSession) -> AsyncIterator[World]:
    w = World(workers_cluster, http)
    yield w
    await w.close()


async def metric(world: World, name: str, sample: str, **labels: str) -> float:
    """A sample of worker ``name``'s metrics; 0 for a labelled counter not counted yet."""
    port = world.cluster.worker_port(name)
    async with world.http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        page = await resp.text()
    try:
        return value(page, sample, **labels)
    except AssertionError:
        if not labels:
            raise
        return 0.0


async def chatter(world: World, pairs: int) -> tuple[list, list[int]]:
    """``pairs`` senders with a friend each (device, conversation), and an empty list for acked ids."""
    senders = []
    for _ in range(pairs):
        a, b = await world.person("talker"), await world.person("listener")
        senders.append((await a.device(node=0), await a.befriend(b)))
    return senders, []


async def send_all(senders: list, each: int, acked: list[int], tag: str) -> None:
    async def one(device, conv: str) -> None:
        for i in range(each):
            acked.append(int((await device.send(conv, f"{tag} {i}"))["id"]))

    await asyncio.gather(*(one(d, c) for d, c in senders))


def stored(cluster: Cluster, ids: list[int]) -> dict[int, int]:
    """How many rows the store holds for each of ``ids``."""
    with sqlite3.connect(f"file:{cluster.settings.sqlite_path}?mode=ro", uri=True, timeout=10) as db:
        rows = db.execute(f"SELECT id, COUNT(*) FROM messages WHERE id IN ({','.join(map(str, ids))}) "
                          "GROUP BY id").fetchall()
    return dict(rows)


async def all_stored(cluster: Cluster, ids: list[int]) -> None:
    def check() -> bool:
        found = stored(cluster, ids)
        assert len(found) == len(set(ids)), f"{len(found)} of {len(set(ids))} stored"
        return all(n == 1 for n in found.values())

    await eventually(check, what="every acked message in the store once", timeout=30)


async def test_two_archivers_each_write_a_substantial_share_and_the_store_holds_each_message_once(wworld):
    before = [await metric(wworld, n, "parley_archiver_messages_total") for n in ("archiver", "archiver2")]
    senders, acked = await chatter(wworld, pairs=4)
    await send_all(senders, 100, acked, "shared")
    await all_stored(wworld.cluster, acked)
    after = [await metric(wworld, n, "parley_archiver_messages_total") for n in ("archiver", "archiver2")]
    shares = [a - b for a, b in zip(after, before, strict=True)]
    assert sum(shares) >= len(acked)  # each message written at least once (a redelivery may rewrite one)
    assert min(shares) >= 0.2 * len(acked), shares  # both took a real part, not one doing it all


async def test_an_archiver_killed_mid_traffic_loses_nothing(wworld, workers_cluster):
    senders, acked = await chatter(wworld, pairs=3)
    traffic = asyncio.create_task(send_all(senders, 120, acked, "through a kill"))
    await eventually(lambda: len(acked) >= 100, what="traffic under way")
    workers_cluster.kill("archiver")  # holding batches it has not acked: they go to archiver2 after 3 s
    await traffic
    await all_stored(workers_cluster, acked)
    assert len(acked) == 360
    await asyncio.to_thread(workers_cluster.start_archiver, 0)


async def test_two_pushers_send_every_due_push_exactly_once(wworld, fcm):
    alice, bob = await wworld.person("alice"), await wworld.person("bob")
    conv = await alice.befriend(bob)
    tokens = await register(wworld, bob, n=2)
    a = await alice.device(node=0)
    before = [await metric(wworld, n, "parley_pushes_total", outcome="sent") for n in ("pusher", "pusher2")]
    sent = []
    for i in range(30):
        sent.append(str((await a.send(conv, f"push me {i}"))["id"]))
        if i % 10 == 9:
            await asyncio.sleep(0.3)  # the scenario: three bursts, so both pushers are fetching
    await eventually(lambda: all(len(fcm.delivered(t)) >= 30 for t in tokens), what="30 pushes to each device",
                     timeout=30)
    after = [await metric(wworld, n, "parley_pushes_total", outcome="sent") for n in ("pusher", "pusher2")]
    assert all(a > b for a, b in zip(after, before, strict=True)), (before, after)  # both pushed
    for token in tokens:
        ids = [p["message"]["data"]["message_id"] for p in fcm.delivered(token)]
        assert sorted(ids) == sorted(sent)  # every message once per device, none twice


async def owner_of(cluster: Cluster, user: str) -> str:
    """The worker holding ``user``'s presence partition, by its process name in the launcher."""
    nc = await nats.connect(**cluster.admin_connect_options())
    try:
        kv = await nc.jetstream().key_value(LEASE_BUCKET)
        holder = (await kv.get(partition_key(partition_of(user, PARTITIONS)))).value.decode()
    finally:
        await nc.close()
    return next(name for name, c in cluster.roles.items() if c.role == "presence" and f"-{c.pid}-" in holder)


async def someone_of(world: World, worker: str, prefix: str) -> Person:
    while True:  # half the partitions are the worker's: a person or two
        p = await world.person(prefix)
        if await owner_of(world.cluster, p.id) == worker:
            return p


async def partitions_held(world: World) -> list[float]:
    names = [n for n, c in world.cluster.roles.items() if c.role == "presence"]
    return [await metric(world, n, "parley_presence_partitions") for n in names]


async def split_evenly(world: World) -> bool:
    return sorted(await partitions_held(world)) == [PARTITIONS / 2, PARTITIONS / 2]


async def test_a_killed_presence_workers_partitions_are_taken_over_and_friends_still_see_changes(wworld):
    cluster = wworld.cluster
    await eventually(lambda: split_evenly(wworld), what="the two workers split the partitions", timeout=15)
    alice = await wworld.person("alice")
    bob, carol = await someone_of(wworld, "presence", "bob"), await someone_of(wworld, "presence", "carol")
    dave = await someone_of(wworld, "presence", "dave")
    for friend in (bob, carol, dave):
        await alice.befriend(friend)
    a = await alice.device(node=0)
    await bob.device(node=0)
    c = await carol.device(node=0)
    await a.wait_for(lambda: changes(a, bob.id) == [True] and changes(a, carol.id) == [True], timeout=10)
    cluster.kill("presence")  # its leases expire in 4 s; presence2 takes every partition

    async def all_on_presence2() -> bool:
        return await metric(wworld, "presence2", "parley_presence_partitions") == PARTITIONS

    await eventually(all_on_presence2, what="presence2 took the dead worker's partitions", timeout=15)
    d = await dave.device(node=0)
    await a.wait_for(lambda: changes(a, dave.id) == [True], timeout=10)  # online, seen by the new owner
    await c.close()
    await a.wait_for(lambda: changes(a, carol.id) == [True, False], timeout=15)  # offline, from the new owner
    await d.close()  # a witness: by its offline, bob (restored at the takeover) would have gone too
    await a.wait_for(lambda: changes(a, dave.id) == [True, False], timeout=15)
    assert changes(a, bob.id) == [True]  # still beating through the takeover: no flap
    await asyncio.to_thread(cluster.start_presence, 0)  # a joining worker takes a fair share
    await eventually(lambda: split_evenly(wworld), what="the joining worker took half the partitions", timeout=15)
    assert changes(a, bob.id) == [True]
