"""A multi-datacenter Cassandra on loopback: one node per datacenter, all on 127.0.0.1.

Job: start N ``cassandra_runner`` instances that form one cluster (Cassandra 4+ tells nodes apart by
address *and* storage port, so they can share 127.0.0.1), each in a datacenter of its own through the
GossipingPropertyFileSnitch, and wait until every node sees every other up, so a write at ``ALL``
(or ``EACH_QUORUM``) succeeds. For tests of multi-DC behaviour (replication, consistency levels,
serial claims across DCs) and for trying a two-DC setup by hand:

    python -m parley.tools.cassandra_cluster up --dir .parley/cassandra-2dc --dcs dc1,dc2 --heap 768M
    python -m parley.tools.cassandra_cluster down --dir .parley/cassandra-2dc

Invariants:
- Node ``i`` lives in ``<dir>/<dc>`` (one runner instance directory each); ports are picked free
  unless given; every node is a seed, so all start at once and none bootstraps (they are empty).
- ``stop_node``/``start_node`` act on one datacenter's node with the same ports, and ``pause_node``
  freezes one (SIGSTOP/SIGCONT), so a test can take a DC away and bring it back.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
from cassandra.policies import WhiteListRoundRobinPolicy
from parley.tools import cassandra_runner
from parley.tools.cassandra_runner import HOST, CassandraError, Instance
from parley.tools.cluster import free_port

from parley.errors import ParleyError

PROBE_KEYSPACE = "parley_ring_probe"


@dataclass(frozen=True)
class Node:
    dc: str
    dir: Path
    cql_port: int
    storage_port: int


def plan(root: Path, dcs: Sequence[str]) -> list[Node]:
    """One node per datacenter under ``root``, on free ports (or the ports a previous start recorded)."""
    nodes = []
    for dc in dcs:
        dir = (root / dc).resolve()
        try:
            known = cassandra_runner.read_instance(dir)
            nodes.append(Node(dc, dir, known.cql_port, known.storage_port))
        except (OSError, ValueError, TypeError):
            nodes.append(Node(dc, dir, free_port(), free_port()))
    return nodes


def start_node(node: Node, seeds: Sequence[int], heap: str, tie_to_parent: bool = False,
               wait: bool = True, timeout: float = 180) -> Instance:
    return cassandra_runner.start(node.dir, cql_port=node.cql_port, storage_port=node.storage_port, heap=heap,
                                  jmx_port=None, wait=wait, timeout=timeout, tie_to_parent=tie_to_parent,
                                  dc=node.dc, seeds=seeds)


def stop_node(node: Node, timeout: float = 60) -> bool:
    return cassandra_runner.stop(node.dir, timeout)


def pause_node(node: Node, paused: bool = True) -> None:
    """SIGSTOP (or SIGCONT) one node: to its peers and clients it is a datacenter cut off by the
    network, and it comes back in a second instead of a JVM start's half minute."""
    pid = cassandra_runner.running_pid(node.dir)
    if pid is None:
        raise CassandraError(f"the {node.dc} node is not running", code="cassandra_not_running")
    os.kill(pid, signal.SIGSTOP if paused else signal.SIGCONT)


def start(root: Path, dcs: Sequence[str] = ("dc1", "dc2"), heap: str = "768M", tie_to_parent: bool = False,
          timeout: float = 240) -> list[Node]:
    """Start every node at once, wait for each CQL port, then for the ring to be whole."""
    nodes = plan(root, dcs)
    seeds = [n.storage_port for n in nodes]
    for node in nodes:
        start_node(node, seeds, heap, tie_to_parent, wait=False)
    for node in nodes:
        cassandra_runner.wait_cql(node.dir, node.cql_port, timeout)
    wait_whole(nodes, timeout)
    return nodes


def stop(root: Path, dcs: Sequence[str] = ("dc1", "dc2")) -> None:
    """Stop every node at once (each drains and announces its shutdown: seconds apiece)."""
    nodes = plan(root, dcs)
    with ThreadPoolExecutor(max_workers=len(nodes) or 1) as pool:
        list(pool.map(stop_node, nodes))


def wait_whole(nodes: Sequence[Node], timeout: float = 120) -> None:
    """Until a write at ALL through each node succeeds: every node is up in every other's eyes."""
    replication = ", ".join(f"'{n.dc}': 1" for n in nodes)
    deadline = time.monotonic() + timeout
    for node in nodes:
        while not _write_all(node, replication):
            if time.monotonic() > deadline:
                raise CassandraError(f"the {len(nodes)} nodes did not see each other up in {timeout:.0f}s",
                                     code="cassandra_start_failed")
            time.sleep(0.5)


def _write_all(node: Node, replication: str) -> bool:
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([HOST]),
                               consistency_level=ConsistencyLevel.ALL, request_timeout=20)
    cluster = Cluster([HOST], port=node.cql_port, execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                      connect_timeout=5)
    try:
        session = cluster.connect()
        session.execute(f"CREATE KEYSPACE IF NOT EXISTS {PROBE_KEYSPACE} WITH replication = "
                        f"{{'class': 'NetworkTopologyStrategy', {replication}}}", timeout=30)
        session.execute(f"CREATE TABLE IF NOT EXISTS {PROBE_KEYSPACE}.t (k text PRIMARY KEY)", timeout=30)
        session.execute(f"INSERT INTO {PROBE_KEYSPACE}.t (k) VALUES (%s)", (node.dc,))
        return True
    except Exception:  # not yet: unavailable, timed out, schema not agreed, connection refused
        return False
    finally:
        cluster.shutdown()


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Run a one-node-per-DC Cassandra cluster on loopback.")
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--dir", type=Path, default=Path(".parley/cassandra-dcs"), help="cluster directory")
    parser.add_argument("--dcs", default="dc1,dc2", help="datacenter names, one node each (default dc1,dc2)")
    parser.add_argument("--heap", default="768M", help="-Xms/-Xmx of each node")
    parser.add_argument("--timeout", type=float, default=240)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "python -m parley.tools.cassandra_cluster") -> int:
    args = _parser(prog).parse_args(argv)
    dcs = [d.strip() for d in args.dcs.split(",") if d.strip()]
    try:
        if args.command == "down":
            stop(args.dir, dcs)
        elif args.command == "status":
            print(json.dumps([cassandra_runner.status(n.dir) for n in plan(args.dir, dcs)], indent=2))
        else:
            for node in start(args.dir, dcs, args.heap, timeout=args.timeout):
                print(f"{node.dc}: cql {HOST}:{node.cql_port}, storage {node.storage_port}, dir {node.dir}")
        return 0
    except (ParleyError, NoHostAvailable) as err:
        print(f"cassandra_cluster: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
