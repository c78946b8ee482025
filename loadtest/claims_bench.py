"""Username claims across two datacenters: what SERIAL costs next to LOCAL_SERIAL, and what it buys.

Starts a two-datacenter Cassandra on loopback (one node each in dc1 and dc2, tools/cassandra_cluster.py;
or uses ``--dcs-dir``), then for each serial consistency:
- ``latency``: sequential claims of fresh names (``INSERT ... IF NOT EXISTS`` at that serial level)
  through dc1, p50/p90/p99/max in ms;
- ``races``: a name claimed through dc1 and dc2 at the same moment, ``--races`` times: how many names
  got two winners (a duplicate username), one, or none (an outcome Cassandra could not tell).

Loopback has no WAN: the latency figures show the extra Paxos work and replicas, not the cross-region
round trips SERIAL adds in production (each claim then waits for at least two round trips to the
farthest datacenter holding part of the quorum). Appends one record to ``loadtest/results/claims.jsonl``.

    python -m parley.loadtest.claims_bench [--claims 300] [--races 200] [--dcs-dir DIR] [--no-save]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import DCAwareRoundRobinPolicy
from cassandra.protocol import ErrorMessage
from parley.loadtest.harness import record
from parley.tools import cassandra_cluster

from parley.store.cassandra.cql import DOWN

KEYSPACE = "claims_bench"
LEVELS = {"LOCAL_SERIAL": ConsistencyLevel.LOCAL_SERIAL, "SERIAL": ConsistencyLevel.SERIAL}


def session_in(node: cassandra_cluster.Node, serial: int) -> tuple[Cluster, Session]:
    profile = ExecutionProfile(load_balancing_policy=DCAwareRoundRobinPolicy(local_dc=node.dc),
                               consistency_level=ConsistencyLevel.LOCAL_QUORUM, serial_consistency_level=serial,
                               request_timeout=10)
    cluster = Cluster(["127.0.0.1"], port=node.cql_port, execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    return cluster, cluster.connect()


def prepare_keyspace(node: cassandra_cluster.Node, dcs: list[str]) -> None:
    cluster, session = session_in(node, ConsistencyLevel.SERIAL)
    try:
        replication = ", ".join(f"'{dc}': 1" for dc in dcs)
        session.execute(f"CREATE KEYSPACE IF NOT EXISTS {KEYSPACE} WITH replication = "
                        f"{{'class': 'NetworkTopologyStrategy', {replication}}}", timeout=60)
        session.execute(f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.usernames (username text PRIMARY KEY, "
                        "user_id text)", timeout=60)
    finally:
        cluster.shutdown()


def claim(session: Session, name: str, user: str) -> bool | None:
    """True: applied; False: taken; None: Cassandra could not say (timeout, contention)."""
    try:
        row = session.execute(f"INSERT INTO {KEYSPACE}.usernames (username, user_id) VALUES (%s, %s) "
                              "IF NOT EXISTS", (name, user)).one()
        return bool(row[0]) or row.user_id == user
    except (*DOWN, ErrorMessage):
        return None


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"n": len(ordered), "p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": round(ordered[-1], 2),
            "mean": round(statistics.fmean(ordered), 2)}


def latency(session: Session, claims: int) -> dict[str, Any]:
    times, unknown = [], 0
    for _ in range(claims):
        began = time.perf_counter()
        if claim(session, f"lat-{uuid.uuid4().hex}", "u") is None:
            unknown += 1
        times.append((time.perf_counter() - began) * 1000)
    return {**percentiles(times), "unknown": unknown}


def races(first: Session, second: Session, n: int) -> dict[str, int]:
    """One name claimed through both sessions at once, n times: how many winners each name got."""
    outcome = {"two_winners": 0, "one_winner": 0, "unknown": 0}
    for _ in range(n):
        name, results = f"race-{uuid.uuid4().hex}", [None, None]
        gate = threading.Barrier(2)

        def go(i: int, session: Session, name: str = name, results: list[bool | None] = results,
               gate: threading.Barrier = gate) -> None:
            gate.wait()
            results[i] = claim(session, name, f"user{i}")

        threads = [threading.Thread(target=go, args=(i, s)) for i, s in enumerate((first, second))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if None in results:
            outcome["unknown"] += 1
        else:
            outcome["two_winners" if all(results) else "one_winner"] += 1
    return outcome


def measure(nodes: list[cassandra_cluster.Node], args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, level in LEVELS.items():
        opened = [session_in(node, level) for node in nodes]
        try:
            out[label] = {"latency_ms": latency(opened[0][1], args.claims),
                          "races": races(opened[0][1], opened[1][1], args.races)}
        finally:
            for cluster, _ in opened:
                cluster.shutdown()
        print(f"{label:>12}: claim p50 {out[label]['latency_ms']['p50']} ms, p99 {out[label]['latency_ms']['p99']} "
              f"ms; races {out[label]['races']}")
    return out


@contextmanager
def two_dcs(args: argparse.Namespace) -> Iterator[list[cassandra_cluster.Node]]:
    if args.dcs_dir:
        nodes = cassandra_cluster.plan(Path(args.dcs_dir), ("dc1", "dc2"))
        cassandra_cluster.wait_whole(nodes)
        yield nodes
        return
    root = Path(tempfile.mkdtemp(prefix="parley-claims-bench-"))
    try:
        yield cassandra_cluster.start(root, ("dc1", "dc2"), heap=args.heap, tie_to_parent=True)
    finally:
        cassandra_cluster.stop(root, ("dc1", "dc2"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m parley.loadtest.claims_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--claims", type=int, default=300, help="sequential claims per level (default 300)")
    p.add_argument("--races", type=int, default=200, help="names raced through both DCs per level (default 200)")
    p.add_argument("--dcs-dir", help="use the cluster running in DIR (python -m parley.tools.cassandra_cluster up)")
    p.add_argument("--heap", default="768M", help="heap of each node this run starts")
    record.add_options(p, "claims.jsonl")
    args = p.parse_args(argv)
    recorder = record.recorder(p, args)
    rec = recorder.new_record(args)
    started = time.monotonic()
    with two_dcs(args) as nodes:
        prepare_keyspace(nodes[0], [n.dc for n in nodes])
        rec["topology"] = {"datacenters": [n.dc for n in nodes], "replicas_per_dc": 1, "network": "loopback"}
        rec["results"] = measure(nodes, args)
    rec["duration_s"] = round(time.monotonic() - started, 1)
    print(recorder.append(rec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
