"""The whole cluster on a real Cassandra: history paging, sync across partition buckets, live rooms, an outage.

The cluster here uses one-second buckets, so every test's messages spread over several partitions.
The outage test stops Cassandra for ~30 s under traffic and runs last in this module.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import nats
import pytest
from cassandra.cluster import Cluster as CqlCluster
from parley.tools.client import ApiError, Device

from parley import bus
from parley.shards import pos_of_id, shard_of_id
from tests.conftest import CassandraServer, new_keyspace
from tests.integration.cluster import Cluster
from tests.integration.conftest import PASSWORD, World
from tests.integration.test_live import all_history, join, live_send, new_room
from tests.poll import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cass_cluster(tmp_path_factory: pytest.TempPathFactory, cassandra: CassandraServer) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("cass-cluster"), **cassandra.settings(new_keyspace("it"), cassandra_bucket_s=1))
    try:
        c.start()
        yield c
    finally:
        c.shutdown()


@pytest.fixture
async def cworld(cass_cluster: Cluster, http: aiohttp.ClientSession) -> AsyncIterator[World]:
    w = World(cass_cluster, http)
    yield w
    await w.close()


async def archived_through(cluster: Cluster, shard: int) -> int:
    nc = await nats.connect(**cluster.admin_connect_options())
    try:
        return await bus.archived_through(nc, cluster.settings, shard)
    finally:
        await nc.close()


async def wait_archived(cluster: Cluster, last: int, timeout: float = 60) -> None:
    """Message ``last`` (an id: its shard and sequence) and everything before it in its shard is archived."""
    async def through_last() -> bool:
        floor = await archived_through(cluster, shard_of_id(last))
        assert floor >= pos_of_id(last), f"archiver at {floor}"
        return True

    await eventually(through_last, timeout=timeout, every=0.2, what=f"message {last} archived")


def buckets_in_cassandra(cluster: Cluster, conv: str) -> list[tuple[int, int, int]]:
    """(bucket, first_id, last_id) rows, read with the driver straight from Cassandra."""
    s = cluster.settings
    cql = CqlCluster(["127.0.0.1"], port=s.cassandra_port)
    try:
        rows = cql.connect(s.cassandra_keyspace).execute(
            "SELECT bucket, first_id, last_id FROM conversation_buckets WHERE conv = %s", (conv,))
        return sorted((r.bucket, r.first_id, r.last_id) for r in rows)
    finally:
        cql.shutdown()


async def status_of(world: World, url: str) -> int:
    async with world.http.get(url) as resp:
        return resp.status


async def api_ready_is(world: World, cluster: Cluster, status: int) -> bool:
    got = await status_of(world, f"{cluster.api_url}/readyz")
    assert got == status, f"the API's /readyz says {got}"
    return True


async def send_in_bursts(device: Device, conv: str, bursts: int, per_burst: int) -> list[int]:
    """Messages spread over ``bursts`` one-second buckets."""
    ids = []
    for b in range(bursts):
        ids += [(await device.send(conv, f"b{b} m{i}"))["id"] for i in range(per_burst)]
        await asyncio.sleep(1.1)  # the data's shape, not a wait: the next burst goes in the next 1 s bucket
    return ids


async def history_pages(world: World, token: str, conv: str, order: str, limit: int) -> list[int]:
    ids: list[int] = []
    key = "before" if order == "desc" else "after"
    query = f"limit={limit}&order={order}"
    while True:
        page = await world.api.call("GET", f"/v1/conversations/{conv}/messages?{query}", token)
        ids += [m["id"] for m in page["messages"]]
        if not page["more"]:
            return ids
        query = f"limit={limit}&order={order}&{key}={ids[-1]}"


async def test_history_pages_from_cassandra_across_buckets(cworld, cass_cluster):
    alice, bob, eve = await cworld.person("alice"), await cworld.person("bob"), await cworld.person("eve")
    conv = await alice.befriend(bob)
    sender = await alice.device(node=0)
    ids = await send_in_bursts(sender, conv, bursts=3, per_burst=40)
    await wait_archived(cass_cluster, ids[-1])
    buckets = buckets_in_cassandra(cass_cluster, conv)
    assert len(buckets) >= 3 and min(b[1] for b in buckets) == ids[0] and max(b[2] for b in buckets) == ids[-1]
    assert await history_pages(cworld, bob.token, conv, "desc", 25) == ids[::-1]
    assert await history_pages(cworld, alice.token, conv, "asc", 17) == ids
    page = await cworld.api.call("GET", f"/v1/conversations/{conv}/messages?after={ids[10]}&before={ids[50]}"
                                        "&limit=200&order=asc", bob.token)
    assert [m["id"] for m in page["messages"]] == ids[11:50] and page["more"] is False
    with pytest.raises(ApiError) as denied:
        await cworld.api.call("GET", f"/v1/conversations/{conv}/messages", eve.token)
    assert (denied.value.status, denied.value.code) == (403, "not_member")
    listed = await cworld.api.call("GET", "/v1/conversations", bob.token)
    assert listed["conversations"][0]["last_message"]["id"] == ids[-1]


async def test_device_syncs_from_cassandra_across_a_bucket_boundary(cworld, cass_cluster):
    alice, bob = await cworld.person("alice"), await cworld.person("bob")
    conv = await alice.befriend(bob)
    sender = await alice.device(node=0)
    b = await bob.device(node=1)
    first = await sender.send(conv, "before")
    cursor = await b.cursor_after(first["id"])
    login = b.login
    await b.close()
    ids = await send_in_bursts(sender, conv, bursts=3, per_burst=30)
    await wait_archived(cass_cluster, ids[-1])  # so the sync reads Cassandra, not the stream's tail
    assert len({bucket for bucket, first_id, last_id in buckets_in_cassandra(cass_cluster, conv)
                if last_id > first["id"]}) >= 3
    again = Device(cworld.http, cass_cluster.node_url(0), login["token"])
    await again.connect(cursor=cursor)
    await again.synced.wait()
    assert again.order == ids and again.duplicates == 0
    assert again.bodies() == [f"b{k} m{i}" for k in range(3) for i in range(30)]
    assert "syncing from the stream" not in cass_cluster.log_text("node1")  # it was Cassandra that answered
    await again.close()


async def test_block_and_account_deletion_on_cassandra(cworld, cass_cluster):
    """docs/adr/0015 on the Cassandra store: a block refuses a connected sender's DM sends; a deleted account
    cannot log in, keeps its name taken and its messages, and reads as a placeholder."""
    api = cworld.api
    alice, bob = await cworld.person("alice"), await cworld.person("bob")
    conv = await alice.befriend(bob)
    a, b = await alice.device(node=0), await bob.device(node=1)
    kept = await a.send(conv, "kept")
    await api.call("PUT", f"/v1/blocks/{alice.id}", bob.token)

    async def refused() -> bool:
        try:
            await a.send(conv, "still?")
        except ApiError as err:
            return bool(err.body["code"] == "blocked")
        return False

    await eventually(refused, timeout=5, every=0.1, what="alice's send refused with blocked")
    await api.call("DELETE", "/v1/account", alice.token, {"password": PASSWORD})
    assert (await a.closed)[0] == 4003
    with pytest.raises(ApiError) as login:
        await api.login(alice.name, PASSWORD)
    assert login.value.code == "bad_credentials"
    with pytest.raises(ApiError) as taken:
        await api.signup(alice.name, PASSWORD)
    assert taken.value.code == "username_taken"
    assert (await api.call("GET", "/v1/blocks", bob.token))["blocks"] == []
    assert (await api.call("GET", f"/v1/users/{alice.id}", bob.token))["user"]["deleted"] is True
    page = await api.call("GET", f"/v1/conversations/{conv}/messages?order=asc", bob.token)
    assert (page["messages"][0]["id"], page["messages"][0]["from"]) == (kept["id"], alice.id)
    await b.close()


async def test_a_live_room_on_cassandra_stores_every_message_and_keeps_a_tombstone(cworld, cass_cluster):
    owner, viewer = await cworld.person("own"), await cworld.person("viewer")
    room = await new_room(owner)
    v = await viewer.device(node=1)
    await join(v, room)
    sent = [(await live_send(v, room, f"live {i}"))["id"] for i in range(12)]

    async def stored() -> list[dict[str, object]]:
        rows = await all_history(cworld, owner, room)  # pages of 7: across pages and partitions
        assert [r["id"] for r in rows] == sent[::-1], "history still behind"
        return rows

    await eventually(stored, what="every live message in Cassandra", timeout=30)
    await cworld.api.call("DELETE", f"/v1/live/{room}/messages/{sent[3]}", owner.token)
    rows = {r["id"]: r for r in await stored()}
    assert (rows[sent[3]]["deleted"], rows[sent[3]]["body"]) == (True, "")
    joined = await join(await owner.device(node=0), room)
    assert [m["id"] for m in joined["messages"]] == sent and joined["messages"][3]["deleted"]


async def test_edits_reactions_and_a_delete_are_applied_in_cassandra_across_buckets(cworld, cass_cluster):
    """ADR 0025: the archiver folds actions into the stored target, found in its own (older) bucket."""
    alice, bob = await cworld.person("alice"), await cworld.person("bob")
    conv = await alice.befriend(bob)
    a, b = await alice.device(node=0), await bob.device(node=1)
    kept, gone = (await a.send(conv, "kept"))["id"], (await a.send(conv, "gone, secret"))["id"]
    await a.send(conv, "gone, still secret", kind="edit", target=gone)
    await wait_archived(cass_cluster, gone)
    await asyncio.sleep(1.1)  # the data's shape, not a wait: the actions go in a later 1 s bucket than targets
    await a.send(conv, "kept!", kind="edit", target=kept)
    await b.send(conv, "", kind="react", target=kept, emoji="👍")
    reply = (await b.send(conv, "what?", reply_to=gone))["id"]
    last = (await a.send(conv, "", kind="delete", target=gone))["id"]
    await wait_archived(cass_cluster, last)  # the store itself, not the API's unarchived tail, has them
    rows = {m["id"]: m for m in (await cworld.api.call(
        "GET", f"/v1/conversations/{conv}/messages?order=asc&limit=50", bob.token))["messages"]}
    assert (rows[kept]["body"], rows[kept]["edited"]) == ("kept!", True)
    assert rows[kept]["reactions"] == {"👍": {"count": 1, "users": [bob.id]}}
    assert (rows[gone]["body"], rows[gone]["deleted"], rows[reply]["quote"]["body"]) == ("", True, "")
    assert "secret" not in str(rows)
    fresh = await bob.device(node=0, cursor="")  # a sync from the store shows the same
    await fresh.wait_for(lambda: last in fresh.messages)
    assert fresh.messages[gone]["deleted"] is True and fresh.messages[kept]["body"] == "kept!"


async def test_cassandra_outage_every_send_is_acked_and_lands_in_history_once(cworld, cass_cluster, cassandra):
    pairs = []
    for i in range(3):
        a, b = await cworld.person("sender"), await cworld.person("reader")
        conv = await a.befriend(b)
        da, db = await a.device(node=i % 2), await b.device(node=(i + 1) % 2)
        await da.send(conv, "warm-up")  # the node now knows the conversation and needs no store to send
        pairs.append((a, b, conv, da, db))
    cassandra.stop()
    try:
        # the store probe notices within seconds
        await eventually(lambda: api_ready_is(cworld, cass_cluster, 503), timeout=15, every=0.3,
                         what="the API unready without its store")
        with pytest.raises(ApiError) as down:
            await cworld.api.call("GET", f"/v1/conversations/{pairs[0][2]}/messages?limit=5", pairs[0][0].token)
        assert (down.value.status, down.value.code) == (503, "store_unavailable")
        sent: dict[str, list[int]] = {conv: [] for _, _, conv, _, _ in pairs}
        began = time.monotonic()
        n = 0
        while time.monotonic() - began < 30:  # ~30 s without Cassandra, sends keep being acked
            for _, _, conv, da, _ in pairs:
                ack = await da.send(conv, f"during outage {n}")
                sent[conv].append(ack["id"])
            n += 1
            await asyncio.sleep(0.1)  # the scenario, not a wait: steady traffic through the outage
        for _, _, conv, _, db in pairs:  # delivered live meanwhile: delivery does not wait for the store
            await db.wait_for(lambda db=db, conv=conv: set(sent[conv]) <= set(db.messages), timeout=20)
    finally:
        cassandra.start()
    assert "store unavailable" in cass_cluster.log_text("archiver")
    await eventually(lambda: api_ready_is(cworld, cass_cluster, 200), timeout=30, every=0.3,
                     what="the API ready again")
    last = max(max(ids) for ids in sent.values())
    await wait_archived(cass_cluster, last, timeout=90)
    assert cass_cluster.alive()["archiver"]

    async def history_answers() -> bool:  # every process reconnects by itself
        try:
            await cworld.api.call("GET", f"/v1/conversations/{pairs[0][2]}/messages?limit=1", pairs[0][0].token)
        except ApiError as err:  # until it has, reads say 503 retryable, as a client sees
            if (err.status, err.body.get("retryable")) != (503, True):
                raise
            return False
        return True

    await eventually(history_answers, timeout=30, every=0.5, what="history read again after the outage")
    for _, b, conv, _, _ in pairs:
        history = await history_pages(cworld, b.token, conv, "asc", 200)
        assert history[1:] == sent[conv]  # [0] is the warm-up
        assert len(history) == len(set(history)) == n + 1
