"""Servers shared by the whole test session.

``cassandra``: one real Cassandra 5.0 (jars from Maven Central through ops/cassandra/pom.xml, Java 17),
started once on 127.0.0.1 free ports in a temp dir and stopped at the end. It is never skipped: a
machine without Java or Maven fails these tests with the runner's message. For quicker local runs,
``PARLEY_TEST_CASSANDRA_DIR`` names the directory of an instance already started with
``parley cassandra up --dir ...``; it is used (and restarted by the outage test, paused and killed -9
then restarted by tests/integration/test_store_durability.py: it must run ``commitlog_sync: group``, the
runner's default since ADR 0011) but not stopped.

``nats_cluster``: a bare 3-server JetStream cluster (``parley.tools.natscluster``) on 127.0.0.1 free
ports, started once, for tests of stream and bucket configuration; each test uses streams of its own
and deletes them.
``cassandra_dcs``: a second, two-datacenter Cassandra (one node in ``dc1``, one in ``dc2``, both on
127.0.0.1, 768M heap each; tools/cassandra_cluster.py), started once for the tests of multi-DC
replication, consistency and claims; a test may stop and restart one datacenter's node.
``PARLEY_TEST_CASSANDRA_DCS_DIR`` names one already started with ``python -m parley.tools.cassandra_cluster
up --dir ...`` (used, not stopped).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from parley.tools import cassandra_cluster, cassandra_runner
from parley.tools.cluster import Cluster, free_port
from parley.tools.natscluster import NatsServers

from parley.settings import Settings
from tests import hung


@dataclass
class CassandraServer:
    dir: Path
    port: int
    storage_port: int
    ours: bool = True  # started by this session: tied to it, so a killed run leaves no JVM behind

    def settings(self, keyspace: str, **overrides: object) -> dict[str, object]:
        """Settings fields that point a Parley process at this server, in a keyspace of its own."""
        return dict(store="cassandra", cassandra_hosts="127.0.0.1", cassandra_port=self.port,
                    cassandra_keyspace=keyspace, cassandra_timeout_s=5.0, **overrides)

    def stop(self) -> None:
        cassandra_runner.stop(self.dir)

    def kill(self) -> None:
        """kill -9: what Cassandra acked must survive it (commitlog_sync group)."""
        cassandra_runner.kill(self.dir)

    def pause(self, paused: bool = True) -> None:
        cassandra_runner.pause(self.dir, paused)

    def start(self) -> None:
        cassandra_runner.start(self.dir, cql_port=self.port, storage_port=self.storage_port, heap=HEAP,
                               jmx_port=None, tie_to_parent=self.ours)


HEAP = "768M"


def new_keyspace(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    """A nats-server of the test's own (JetStream in its temp dir, a free loopback port, the bus's users):
    its URL with the ``system`` user in it, so whatever connects to it gets in."""
    cluster = Cluster(tmp_path, nodes=0)
    cluster.start_nats()
    try:
        yield cluster.admin_url()
    finally:
        cluster.shutdown()


@pytest.fixture(scope="session")
def cassandra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CassandraServer]:
    external = os.environ.get("PARLEY_TEST_CASSANDRA_DIR")
    if external:
        inst = cassandra_runner.read_instance(Path(external))
        cassandra_runner.wait_cql(Path(external), inst.cql_port, timeout=120)
        yield CassandraServer(Path(external), inst.cql_port, inst.storage_port, ours=False)
        return
    root = tmp_path_factory.mktemp("cassandra")
    inst = cassandra_runner.start(root, cql_port=0, storage_port=0, heap=HEAP, jmx_port=None, tie_to_parent=True)
    try:
        yield CassandraServer(root, inst.cql_port, inst.storage_port)
    finally:
        cassandra_runner.stop(root)


def cassandra_settings(server: CassandraServer, keyspace: str, **overrides: object) -> Settings:
    return Settings(**server.settings(keyspace, **overrides))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServers]:
    servers = NatsServers(tmp_path_factory.mktemp("nats3"), 3, free_port)
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()
@dataclass
class CassandraDCs:
    """One node per datacenter; ``settings(keyspace, dc)`` points a process at its own DC's node."""

    root: Path
    nodes: dict[str, cassandra_cluster.Node]
    ours: bool = True
    replication: str = "NetworkTopologyStrategy:dc1=1,dc2=1"

    def settings(self, keyspace: str, dc: str, **overrides: object) -> Settings:
        fields: dict[str, object] = dict(
            store="cassandra", cassandra_hosts="127.0.0.1", cassandra_port=self.nodes[dc].cql_port,
            cassandra_local_dc=dc, cassandra_keyspace=keyspace, cassandra_replication=self.replication,
            cassandra_consistency="LOCAL_QUORUM", cassandra_write_consistency="EACH_QUORUM",
            cassandra_timeout_s=5.0)
        return Settings(**{**fields, **overrides})  # type: ignore[arg-type]

    def stop(self, dc: str) -> None:
        cassandra_cluster.stop_node(self.nodes[dc])

    def pause(self, dc: str, paused: bool = True) -> None:
        """Freeze (or thaw) a datacenter's node: cut off, as by the network, and back within a second."""
        cassandra_cluster.pause_node(self.nodes[dc], paused)
        if not paused:
            cassandra_cluster.wait_whole(list(self.nodes.values()))

    def start(self, dc: str) -> None:
        seeds = [n.storage_port for n in self.nodes.values()]
        cassandra_cluster.start_node(self.nodes[dc], seeds, HEAP, tie_to_parent=self.ours)
        cassandra_cluster.wait_whole(list(self.nodes.values()))


@pytest.fixture(scope="session")
def cassandra_dcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CassandraDCs]:
    external = os.environ.get("PARLEY_TEST_CASSANDRA_DCS_DIR")
    if external:
        nodes = cassandra_cluster.plan(Path(external), ("dc1", "dc2"))
        cassandra_cluster.wait_whole(nodes)
        yield CassandraDCs(Path(external), {n.dc: n for n in nodes}, ours=False)
        return
    root = tmp_path_factory.mktemp("cassandra-dcs")
    try:
        nodes = cassandra_cluster.start(root, ("dc1", "dc2"), heap=HEAP, tie_to_parent=True)
        yield CassandraDCs(root, {n.dc: n for n in nodes})
    finally:
        cassandra_cluster.stop(root, ("dc1", "dc2"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and "from pytest-timeout" in str(report.longrepr):
        report.sections.append(("asyncio tasks pending at the timeout", hung.pending_tasks()))
