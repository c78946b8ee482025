"""Archived means durable, on a real Cassandra (the session's one, not a new one per test):

- a hole in the store below the archiver's floor is filled from the stream by history and by sync, and the
  archiver writes it back (the rows are deleted behind Parley's back: a store that lost acked writes);
- SIGSTOP of Cassandra under sends: every send is answered (ack or ``store_unavailable``) within the
  protocol's bound (protocol.md §13: ``PARLEY_STORE_DEADLINE_S`` + 2 s), and so is history (503);
- kill -9 of Cassandra under sends, then a restart: every acked message is in history and in a new
  device's sync, read from the store itself (nothing had to be filled from the stream: commitlog_sync
  group, docs/adr/0011).

The kill -9 test runs last: the Cassandra comes back, but slowly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from cassandra.cluster import Cluster as CqlCluster
from parley.tools.client import ApiError, Device

from tests.conftest import CassandraServer, new_keyspace
from tests.integration.cluster import Cluster
from tests.integration.conftest import World
from tests.integration.test_cassandra import api_ready_is, history_pages, wait_archived
from tests.poll import eventually

pytestmark = pytest.mark.integration

DEADLINE_S = 3.0  # PARLEY_STORE_DEADLINE_S, the default
BOUND_S = DEADLINE_S + 2.0  # protocol.md §13: a send is answered within this while the store hangs


@pytest.fixture(scope="module")
def dcluster(tmp_path_factory: pytest.TempPathFactory, cassandra: CassandraServer) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("durable"), **cassandra.settings(new_keyspace("dur"),
                                                                         store_deadline_s=DEADLINE_S))
    try:
        c.start()
        yield c
    finally:
        c.shutdown()


@pytest.fixture
async def dworld(dcluster: Cluster, http: aiohttp.ClientSession) -> AsyncIterator[World]:
    w = World(dcluster, http)
    yield w
    await w.close()


def cql_rows(cluster: Cluster, query: str, *params: object) -> list[tuple[object, ...]]:
    s = cluster.settings
    cql = CqlCluster(["127.0.0.1"], port=s.cassandra_port)
    try:
        return [tuple(r) for r in cql.connect(s.cassandra_keyspace).execute(query, params)]
    finally:
        cql.shutdown()


def stored_ids(cluster: Cluster, conv: str) -> dict[int, int]:
    """id → bucket of every message row of ``conv`` in Cassandra."""
    buckets = [b for (b,) in cql_rows(cluster, "SELECT bucket FROM conversation_buckets WHERE conv = %s", conv)]
    return {int(i): int(b) for b in buckets  # type: ignore[call-overload]
            for (i,) in cql_rows(cluster, "SELECT id FROM messages WHERE conv = %s AND bucket = %s", conv, b)}


async def test_a_hole_in_the_store_is_filled_from_the_stream_and_written_back(dworld, dcluster):
    alice, bob = await dworld.person("alice"), await dworld.person("bob")
    conv = await alice.befriend(bob)
    sender = await alice.device(node=0)
    ids = [(await sender.send(conv, f"m{i}"))["id"] for i in range(12)]
    await wait_archived(dcluster, ids[-1])
    lost = [ids[4], ids[5], ids[9]]

    async def lose() -> None:  # what a store that lost acked writes looks like
        rows = stored_ids(dcluster, conv)
        for id in lost:
            cql_rows(dcluster, "DELETE FROM messages WHERE conv = %s AND bucket = %s AND id = %s", conv, rows[id], id)
        assert not set(lost) & set(stored_ids(dcluster, conv))

    async def written_back() -> None:
        await eventually(lambda: set(lost) <= set(stored_ids(dcluster, conv)), timeout=20, every=0.3,
                         what="the archiver wrote the holes back")

    await lose()
    fresh = await bob.device(node=1)  # a new device: everything from the store, the holes from the stream
    await fresh.synced.wait()
    assert fresh.order == ids and fresh.duplicates == 0
    assert "filled from the stream" in dcluster.log_text("node2")
    await written_back()
    lost += [ids[-2], ids[-1]]  # the newest too: no later message names them, the stream's last does
    await lose()
    assert await history_pages(dworld, bob.token, conv, "desc", 5) == ids[::-1]
    assert await history_pages(dworld, bob.token, conv, "asc", 200) == ids
    assert "filled from the stream" in dcluster.log_text("api")
    await written_back()
    await fresh.close()


async def timed_send(device: Device, conv: str, body: str) -> tuple[str, float]:
    """('ack' or the error code, seconds until the answer)."""
    began = time.monotonic()
    try:
        await device.send(conv, body)
        outcome = "ack"
    except ApiError as err:
        outcome = str(err.body.get("code"))
    except TimeoutError:  # the client's own limit (10 s): the bound below then fails with the figures
        outcome = "no answer"
    return outcome, time.monotonic() - began


async def test_a_hung_store_every_send_is_answered_within_the_bound(dworld, dcluster, cassandra):
    alice, bob, carol = await dworld.person("alice"), await dworld.person("bob"), await dworld.person("carol")
    warm, cold = await alice.befriend(bob), await alice.befriend(carol)  # cold: the node never saw it
    sender = await alice.device(node=0)
    acked = [(await sender.send(warm, "warm-up"))["id"]]
    cassandra.pause()
    try:
        answers: list[tuple[str, str, float]] = []
        began = time.monotonic()
        n = 0
        while time.monotonic() - began < 10:  # ~10 s of a hung store, sends in both conversations
            for conv in (warm, cold):
                outcome, took = await timed_send(sender, conv, f"hung {n}")
                answers.append((conv, outcome, took))
            n += 1
        burst = [await sender.send(cold, f"burst {i}", wait=False) for i in range(5)]  # one lane, queued
        sent_at = time.monotonic()
        await sender.wait_for(lambda: all(b["cid"] in sender.acks or any(e.get("ref") == b["cid"]
                                                                          for e in sender.errors) for b in burst),
                              timeout=BOUND_S + 5)
        burst_took = time.monotonic() - sent_at
        seen = len(sender.errors)
        read_began = time.monotonic()  # a read mark is saved before it is announced: it needs the store
        await sender.send_frame({"type": "read", "conv": warm, "upto": acked[0]})
        await sender.wait_for(lambda: any(e.get("code") == "store_unavailable" and "ref" not in e
                                          for e in sender.errors[seen:]), timeout=BOUND_S + 5)
        read_took = time.monotonic() - read_began
        history_began = time.monotonic()
        with pytest.raises(ApiError) as down:
            await dworld.api.call("GET", f"/v1/conversations/{warm}/messages?limit=5", bob.token)
        history_took = time.monotonic() - history_began
    finally:
        cassandra.pause(False)
    slowest = max(took for _, _, took in answers)
    assert slowest <= BOUND_S, f"a send waited {slowest:.1f} s for its answer: {answers}"
    assert burst_took <= BOUND_S, f"queued sends answered after {burst_took:.1f} s"
    assert read_took <= BOUND_S, f"a read frame answered after {read_took:.1f} s"
    assert {outcome for conv, outcome, _ in answers if conv == warm} == {"ack"}  # no store needed
    assert {outcome for conv, outcome, _ in answers if conv == cold} <= {"ack", "store_unavailable"}
    assert "store_unavailable" in {outcome for conv, outcome, _ in answers if conv == cold}
    assert (down.value.status, down.value.code) == (503, "store_unavailable") and history_took <= BOUND_S
    acked += [a["id"] for a in sender.acks.values() if a["conv"] == warm]
    await eventually(lambda: api_ready_is(dworld, dcluster, 200), timeout=30, every=0.3, what="the API ready again")
    after = await sender.send(cold, "after")  # the store answers again: the cold conversation works
    await wait_archived(dcluster, max(after["id"], *acked), timeout=60)
    assert set(acked) <= set(await history_pages(dworld, bob.token, warm, "asc", 200))


async def send_until(device: Device, conv: str, acked: list[int], stop: asyncio.Event, most: int) -> None:
    """Steady sends, each awaited like a client does, until ``stop`` or ``most`` of them; acked ids kept."""
    n = 0
    while not stop.is_set() and n < most:
        try:
            acked.append((await device.send(conv, f"load {n}"))["id"])
        except ApiError as err:  # retryable answers are fine under a crash; the client resends later
            assert err.body.get("retryable"), err.body
        n += 1


async def test_kill_9_of_cassandra_under_sends_loses_no_acked_message(dworld, dcluster, cassandra):
    pairs = []
    for _ in range(2):
        a, b = await dworld.person("sender"), await dworld.person("reader")
        conv = await a.befriend(b)
        da = await a.device(node=0)
        pairs.append((b, conv, da, [(await da.send(conv, "warm-up"))["id"]]))
    logged = {name: len(dcluster.log_text(name)) for name in ("node1", "node2", "api", "archiver")}
    stop = asyncio.Event()
    load = [asyncio.get_running_loop().create_task(send_until(da, conv, acked, stop, most=2000))
            for _, conv, da, acked in pairs]
    try:
        await eventually(lambda: all(len(acked) > 100 for *_, acked in pairs), timeout=60, every=0.05,
                         what="sends under way")
        cassandra.kill()  # mid-write: the archiver has batches in flight
        marks = [len(acked) for *_, acked in pairs]
        await eventually(lambda: all(len(acked) > m + 50 for m, (*_, acked) in zip(marks, pairs, strict=True)),
                         timeout=30, every=0.05, what="sends acked while Cassandra is down")
    finally:
        stop.set()
        await asyncio.gather(*load)
        cassandra.start()
    await wait_archived(dcluster, max(max(acked) for *_, acked in pairs), timeout=90)
    await eventually(lambda: api_ready_is(dworld, dcluster, 200), timeout=30, every=0.3, what="the API ready again")
    for b, conv, _, acked in pairs:
        assert await history_pages(dworld, b.token, conv, "asc", 200) == acked
        fresh = await b.device(node=1)
        await fresh.synced.wait()
        assert [i for i in fresh.order if fresh.messages[i]["conv"] == conv] == acked
        await fresh.close()
    assert "store unavailable" in dcluster.log_text("archiver")[logged["archiver"]:]  # it wrote through the crash
    for name, mark in logged.items():  # it was the store that had them all, not the stream's repair
        assert "missing from the store" not in dcluster.log_text(name)[mark:]
