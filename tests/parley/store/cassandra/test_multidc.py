"""The Cassandra store across two datacenters, on a real two-DC Cassandra (``cassandra_dcs``).

dc1 and dc2 hold one replica each (NetworkTopologyStrategy {dc1: 1, dc2: 1}); a store "in" a DC talks
only to that DC's node (DC-aware routing, no remote hosts), reads at LOCAL_QUORUM and makes the writes
sync trusts at EACH_QUORUM. The outage test freezes dc2's node (SIGSTOP: a datacenter cut off) and
thaws it again.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from parley.tools import cli
from parley.tools.cassandra_replication import change_replication
from parley.tools.cluster import free_port
from parley.tools.natsserver import start as start_nats
from parley.workers.archiver import archive

from parley import bus
from parley.errors import Conflict, ParleyError, Unavailable
from parley.ids import ConversationId, DeviceId, UserId
from parley.messages import encode_payload
from parley.metrics import ArchiverMetrics
from parley.settings import Settings
from parley.shards import message_subject, pack
from parley.store import StoredMessage
from parley.store.cassandra import CassandraStore
from parley.store.cassandra.cql import new_cluster
from parley.store.cassandra.replication import normalized, refuse_mismatch, stored_replication
from parley.store.cassandra.schema import create_keyspace
from parley.store.records import Conversation, User
from tests.conftest import CassandraDCs, new_keyspace
from tests.poll import eventually

ALICE = UserId("alice")


async def opened(settings: Settings) -> CassandraStore:
    store = CassandraStore(settings)
    await store.migrate()
    return store


@pytest.fixture(scope="module")
async def pair(cassandra_dcs: CassandraDCs) -> AsyncIterator[tuple[CassandraStore, CassandraStore]]:
    """One fresh keyspace through dc1 (where the archiver writes) and through dc2 (a reader). Shared by
    the module (each schema change waits for both nodes to agree: a migration takes 20-90 s here), so
    every test uses conversations and names of its own."""
    keyspace = new_keyspace("dcs")
    dc1 = await opened(cassandra_dcs.settings(keyspace, "dc1"))
    dc2 = await opened(cassandra_dcs.settings(keyspace, "dc2"))
    try:
        yield dc1, dc2
    finally:
        await dc1.close()
        await dc2.close()


async def new_dm(store: CassandraStore) -> tuple[ConversationId, UserId]:
    """A conversation between alice and a new user, opened through ``store``."""
    other = UserId(f"u{secrets.token_hex(4)}")
    conv = ConversationId(f"dm.{ALICE}.{other}")
    await store.open_conversation(Conversation(conv, "dm", (ALICE, other), 1))
    return conv, other


def message(conv: ConversationId, i: int) -> StoredMessage:
    """Message ``i`` of ``conv`` in shard 0 (ids are packed: parley.shards)."""
    return StoredMessage(pack(0, i), conv, pack(0, i - 1) if i > 1 else 0, ALICE, DeviceId("d1"), f"c{i}",
                         f"hello {i}", 1_700_000_000_000 + i)


async def bodies(store: CassandraStore, conv: ConversationId) -> list[str]:
    """The conversation's history, oldest first, as a reader through ``store`` gets it."""
    return [m.body for m in await store.history(conv, before=None, after=None, limit=10_000, newest_first=False)]


def stored(settings: Settings) -> dict[str, str]:
    cluster = new_cluster(settings)
    try:
        found = stored_replication(cluster.connect(), settings.cassandra_keyspace)
        assert found is not None
        return normalized(found)
    finally:
        cluster.shutdown()


def create_bare_keyspace(settings: Settings) -> None:
    cluster = new_cluster(settings)
    try:
        cluster.connect().execute(create_keyspace(settings.cassandra_keyspace, settings.cassandra_replication),
                                  timeout=60)
    finally:
        cluster.shutdown()


def starts(settings: Settings) -> None:
    """What a process checks of the keyspace before it migrates (a migration costs a minute here)."""
    cluster = new_cluster(settings)
    try:
        refuse_mismatch(cluster.connect(), settings.cassandra_keyspace, settings.cassandra_replication)
    finally:
        cluster.shutdown()


async def test_replication_changes_only_by_command_and_a_mismatch_refuses_to_start(
        cassandra_dcs: CassandraDCs, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    keyspace = new_keyspace("repl")
    one_dc = cassandra_dcs.settings(keyspace, "dc1", cassandra_replication="NetworkTopologyStrategy:dc1=1",
                                    cassandra_write_consistency="")
    create_bare_keyspace(one_dc)
    both = cassandra_dcs.settings(keyspace, "dc1")
    with pytest.raises(ParleyError, match=r"parley cassandra replication.*nodetool repair") as refused:
        await opened(both)  # the whole start-up path: refused before any schema change
    assert refused.value.code == "bad_setting"
    assert stored(both) == {"class": "NetworkTopologyStrategy", "dc1": "1"}  # nothing changed silently

    for name, value in both.as_env().items():
        monkeypatch.setenv(name, value)
    assert cli.main(["cassandra", "replication", "--check"]) == 1
    assert cli.main(["cassandra", "replication"]) == 0
    printed = capsys.readouterr().out
    assert "-> {'class': 'NetworkTopologyStrategy', 'dc1': '1', 'dc2': '1'}" in printed
    assert f"nodetool repair -full {keyspace}" in printed
    assert stored(both) == {"class": "NetworkTopologyStrategy", "dc1": "1", "dc2": "1"}
    assert change_replication(both) == (0, [f"keyspace {keyspace} already replicates as "
                                            "{'class': 'NetworkTopologyStrategy', 'dc1': '1', 'dc2': '1'}"])
    starts(cassandra_dcs.settings(keyspace, "dc2"))  # now it starts, in either datacenter
    with pytest.raises(ParleyError, match="replicates as"):
        starts(one_dc)  # and the old setting is the one refused


async def test_what_the_archiver_writes_through_dc1_a_reader_in_dc2_finds(
        pair: tuple[CassandraStore, CassandraStore]):
    dc1, dc2 = pair
    conv, other = await new_dm(dc1)
    for first in range(1, 201, 50):
        await dc1.put_messages([message(conv, i) for i in range(first, first + 50)])
    assert await bodies(dc2, conv) == [f"hello {i}" for i in range(1, 201)]
    synced = await dc2.messages_for_user(other, shard=0, after=0, upto=pack(0, 10**9), limit=1000)
    assert [m.id for m in synced] == [pack(0, i) for i in range(1, 201)]


async def test_one_username_claimed_through_both_datacenters_at_once_goes_to_exactly_one(
        pair: tuple[CassandraStore, CassandraStore]):
    dc1, dc2 = pair
    names = [f"n{secrets.token_hex(4)}" for _ in range(10)]

    async def claim(store: CassandraStore, name: str, dc: str) -> UserId | None:
        """A sign-up, retried as a client would while the outcome is unknown (Paxos contention)."""
        user = UserId(f"{dc}-{name}")

        async def once() -> tuple[UserId | None]:
            try:
                await store.create_user(User(user, name, name, 1), "hash")
                return (user,)
            except Conflict:
                return (None,)

        return (await eventually(once, what=f"{dc} claims {name}", ignoring=(Unavailable,), timeout=30))[0]

    for name in names:
        results = await asyncio.gather(claim(dc1, name, "dc1"), claim(dc2, name, "dc2"))
        winners = [u for u in results if u is not None]
        assert len(winners) == 1, f"{name}: {results}"
        for store in (dc1, dc2):
            found = await store.user_by_name(name)
            assert found is not None and found[0].id == winners[0]


async def bus_client(url: str) -> bus.BusClient:
    """The archiver's own kind of client (its pull loop needs ``BusClient``), not reconnecting."""
    nc = bus.BusClient()
    await nc.connect(url, allow_reconnect=False)
    return nc


async def test_with_dc2_cut_off_the_archiver_acks_nothing_and_catches_up_when_it_returns(
        cassandra_dcs: CassandraDCs, pair: tuple[CassandraStore, CassandraStore], tmp_path: Path):
    dc1, dc2 = pair
    conv, _ = await new_dm(dc1)
    port = free_port()
    server = start_nats(port, tmp_path / "nats")
    settings = cassandra_dcs.settings("unused", "dc1", nats_url=f"nats://127.0.0.1:{port}", shards=1)
    nc = await eventually(lambda: bus_client(settings.nats_url), what="nats up",
                          ignoring=(OSError, nats.errors.NoServersError))
    await bus.ensure_stream(nc.jetstream(), settings)
    stop, metrics = asyncio.Event(), ArchiverMetrics()
    archiver = asyncio.get_running_loop().create_task(archive(settings, dc1, nc, stop, metrics))
    try:
        async def send(i: int) -> None:
            data = encode_payload(sender=ALICE, device=DeviceId("d1"), cid=f"c{i}", body=f"m{i}", ts=1000 + i,
                                  prev=pack(0, i - 1) if i > 1 else 0)
            await nc.jetstream().publish(message_subject(0, conv), data)

        async def archived(n: int) -> bool:
            return await bus.archived_through(nc, settings, 0) >= n

        await send(1)
        await eventually(lambda: archived(1), what="message 1 archived", timeout=30)

        cassandra_dcs.pause("dc2")
        with pytest.raises(Unavailable) as down:
            await dc1.put_messages([message(conv, 99)])
        assert down.value.code == "store_unavailable"
        for i in (2, 3, 4):
            await send(i)
        await eventually(lambda: (metrics.registry.get_sample_value("parley_archiver_store_errors_total") or 0) >= 2,
                         what="archiver retrying", timeout=30)
        assert await bus.archived_through(nc, settings, 0) == 1  # retried, never acked

        cassandra_dcs.pause("dc2", paused=False)
        await eventually(lambda: archived(4), what="archived after dc2 returned", timeout=60)
        assert await eventually(lambda: bodies(dc2, conv), what="dc2 read", ignoring=(Unavailable,),
                                timeout=30) == ["m1", "m2", "m3", "m4"]
    finally:
        cassandra_dcs.pause("dc2", paused=False)  # SIGCONT to a running node is harmless
        stop.set()
        await asyncio.gather(archiver, return_exceptions=True)
        await nc.close()
        server.terminate()
        server.wait()
