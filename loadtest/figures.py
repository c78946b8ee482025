"""The measured figures the capacity model needs, read from the newest usable records in loadtest/results/.

    capacity.jsonl  make bench        edge node CPU per send/delivery/ping/connect, RSS per connection,
                                      nats-server CPU per reconnect (today's empty sync)
    store.jsonl     make bench-store  Cassandra CPU per write, per history page, per sync page; archiver CPU
    scale.jsonl     make bench-scale  nats-server CPU per message for K shards x R1/R3; the presence
                                      worker's and nats-server's CPU per heartbeat entry; the pusher's
                                      CPU per message and per push (optional: assumed when absent)

Each reader takes the newest line that has what it needs, so an older or partial run never breaks it;
``Measured.source`` names the dates used.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class NoFigures(Exception):
    """The results files lack a figure the model needs (run ``make bench`` / ``bench-store`` / ``bench-scale``)."""


@dataclass(frozen=True)
class Measured:
    node_cpu_ms_per_send: float  # publish + SENT ack + echo to the sender's device, on the sender's node
    node_cpu_ms_per_delivery: float  # one msg frame to one device, on the recipient's node
    node_cpu_ms_per_heartbeat: float  # a ping answered
    node_cpu_ms_per_connect: float  # hello → welcome → sync → subscriptions, an empty sync
    rss_per_connection_kb: float
    node_base_rss_mb: float  # a node's RSS with no connections
    stream_cpu_ms_per_message: float  # nats-server, all replicas summed: a shard's store + replication + republish
    shard_cpu_ms_per_message: float  # the same for one shard alone at its maximum (K=1): its serial ceiling
    nats_cpu_ms_per_connect: float  # nats-server per reconnect of today's empty sync (2 API infos + subscriptions)
    nats_cpu_ms_per_heartbeat_entry: float  # nats-server: heartbeat batches, per device entry
    presence_cpu_ms_per_entry: float  # presence worker, per device entry (steady state: the user stays online)
    archiver_cpu_ms_per_message: float  # archiver process, into Cassandra
    cassandra_cpu_ms_per_write: float  # one message written by the archiver, one replica (RF 1)
    cassandra_cpu_ms_per_history_page: float  # newest 50 of a conversation, one replica
    cassandra_cpu_ms_per_sync_page: float  # 200 messages after a cursor for a user in 50 conversations, one replica
    stream_replicas_measured: int = 3  # the R of stream_cpu_ms_per_message
    pusher_cpu_ms_per_message: float | None = None  # pusher process, a message with no push (None: not measured)
    pusher_cpu_ms_per_push: float | None = None  # pusher process, each push (KV claim, firebase-admin send)
    source: str = ""


def last_record(path: Path, want: Any) -> dict[str, Any]:
    """The newest JSON line of ``path`` for which ``want(record)`` is true."""
    if not path.exists():
        raise NoFigures(f"{path} does not exist")
    for line in reversed(path.read_text().splitlines()):
        if line.strip():
            rec = json.loads(line)
            if want(rec):
                return dict(rec)
    raise NoFigures(f"no usable record in {path}")


def dig(d: Any, *path: str) -> Any:
    for p in path:
        d = d.get(p) if isinstance(d, dict) else None
    return d


def is_shard_run(rec: dict[str, Any]) -> bool:
    rows = rec.get("summary")
    return rec.get("kind") != "presence" and isinstance(rows, list) and any(
        r.get("replicas") == 3 and r.get("shards") == 1 for r in rows)


def is_push_run(rec: dict[str, Any]) -> bool:
    return rec.get("kind") == "push" and isinstance(rec.get("summary"), dict)


def push_costs(scale: Path) -> tuple[float | None, float | None, str]:
    """The pusher's measured CPU per message and per push, or Nones when no run has measured it yet."""
    try:
        rec = last_record(scale, is_push_run)
    except NoFigures:
        return None, None, ""
    s = rec["summary"]
    # a message's own cost cannot be below zero; a noisy pair of series can make the difference say so
    return max(0.0, s["pusher_cpu_ms_per_message"]), s["pusher_cpu_ms_per_push"], f", {rec.get('date')} (push)"


def is_presence_run(rec: dict[str, Any]) -> bool:
    return rec.get("kind") == "presence" and bool(rec.get("summary"))


def stream_costs(rows: list[dict[str, Any]], replicas: int = 3) -> tuple[float, float]:
    """(nats CPU ms per message at 80% of the maximum, median over K; the same for K=1 at its maximum)."""
    at_r = [r for r in rows if r["replicas"] == replicas]
    steady = [v for r in at_r if (v := dig(r, "80%", "nats_cpu_ms_per_msg")) is not None]
    single = next(r for r in at_r if r["shards"] == 1)["max"]["nats_cpu_ms_per_msg"]
    if not steady or single is None:
        raise NoFigures(f"scale.jsonl has no R{replicas} CPU per message")
    return round(statistics.median(steady), 4), float(single)


def measured_from(capacity: Path, store: Path, scale: Path) -> Measured:
    cap = last_record(capacity, lambda r: dig(r, "results", "raw", "throughput", "at_max") is not None)
    raw = cap["results"]["raw"]
    st = last_record(store, lambda r: dig(r, "results", "cassandra", "reads", "sync_page", "cpu_ms_per_read"))
    cass = st["results"]["cassandra"]
    shard_run = last_record(scale, is_shard_run)
    presence = max(last_record(scale, is_presence_run)["summary"], key=lambda r: r["rate"])
    at_max = raw["throughput"]["at_max"]
    stream, single = stream_costs(shard_run["summary"])
    push_message, push_each, push_date = push_costs(scale)
    return Measured(
        node_cpu_ms_per_send=at_max["node_cpu_ms_per_send"],
        node_cpu_ms_per_delivery=at_max["node_cpu_ms_per_delivery"],
        node_cpu_ms_per_heartbeat=raw["idle"]["heartbeats"]["cpu_ms_per_ping"],
        node_cpu_ms_per_connect=raw["reconnects"]["cpu_ms_per_reconnect"]["node1"],
        rss_per_connection_kb=raw["idle"]["rss_per_connection_kb"],
        node_base_rss_mb=raw["idle"]["rss_before_mb"],
        stream_cpu_ms_per_message=stream,
        shard_cpu_ms_per_message=single,
        nats_cpu_ms_per_connect=raw["reconnects"]["cpu_ms_per_reconnect"]["nats-server"],
        nats_cpu_ms_per_heartbeat_entry=presence["nats_cpu_ms_per_entry"],
        presence_cpu_ms_per_entry=presence["presence_cpu_ms_per_entry"],
        # CPU seconds per 1,000 messages = CPU milliseconds per message
        archiver_cpu_ms_per_message=cass["archiver"]["cpu_s_per_1k"]["archiver"],
        cassandra_cpu_ms_per_write=cass["archiver"]["cpu_s_per_1k"]["cassandra"],
        cassandra_cpu_ms_per_history_page=cass["reads"]["history_newest"]["cpu_ms_per_read"]["cassandra"],
        cassandra_cpu_ms_per_sync_page=cass["reads"]["sync_page"]["cpu_ms_per_read"]["cassandra"],
        stream_replicas_measured=3,
        pusher_cpu_ms_per_message=push_message,
        pusher_cpu_ms_per_push=push_each,
        source=f"{capacity.name} {cap.get('date')}, {store.name} {st.get('date')}, {scale.name} "
               f"{shard_run.get('date')} (shards), {last_record(scale, is_presence_run).get('date')} (presence)"
               + push_date,
    )
