"""Servers shared by the whole test session.

``cassandra``: one real Cassandra 5.0 (jars from Maven Central through ops/cassandra/pom.xml, Java 17),
started once on 127.0.0.1 free ports in a temp dir and stopped at the end. It is never skipped: a
machine without Java or Maven fails these tests with the runner's message. For quicker local runs,
``PARLEY_TEST_CASSANDRA_DIR`` names the directory of an instance already started with
``parley cassandra up --dir ...``; it is used (and restarted by the outage test) but not stopped.

``nats_cluster``: a bare 3-server JetStream cluster (``parley.tools.natscluster``) on 127.0.0.1 free
ports, started once, for tests of stream and bucket configuration; each test uses streams of its own
and deletes them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from parley.tools import cassandra_runner
from parley.tools.cluster import free_port
from parley.tools.natscluster import NatsServers

from parley.settings import Settings


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

    def start(self) -> None:
        cassandra_runner.start(self.dir, cql_port=self.port, storage_port=self.storage_port, heap=HEAP,
                               jmx_port=None, tie_to_parent=self.ours)


HEAP = "768M"


def new_keyspace(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


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
