"""The capacity model: measured per-node figures + the traffic model → how big a 50M-DAU deployment is.

    .venv/bin/python -m parley.loadtest.model                 # latest loadtest/results/capacity.jsonl + store.jsonl
    .venv/bin/python -m parley.loadtest.model --dau 10000000 --markdown

Three inputs, each in one place: the traffic at the peak (``loadtest.traffic.TrafficModel``), what one
process costs per operation as measured on this code (``Measured``, read from the results files that
``make bench`` and ``make bench-store`` write), and the deployment's assumptions (``Deployment``:
machine sizes, utilisation targets, replication, retention). ``plan`` is pure arithmetic on the
three, every count rounded up, so docs/capacity.md can show each step and the unit tests can check it.

An edge node is one Python process, so one core: a machine with 8 vCPUs runs about 8 of them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from parley.loadtest.traffic import MODEL, TrafficModel, fmt

RESULTS = Path(__file__).resolve().parent / "results"


class NoFigures(Exception):
    """The results files lack a figure the model needs (run ``make bench`` / ``make bench-store``)."""


@dataclass(frozen=True)
class Measured:
    node_cpu_ms_per_send: float  # publish + SENT ack + echo to the sender's device, on the sender's node
    node_cpu_ms_per_delivery: float  # one msg frame to one device, on the recipient's node
    node_cpu_ms_per_heartbeat: float  # a ping answered
    node_cpu_ms_per_connect: float  # hello → welcome → sync → subscriptions, an empty sync
    rss_per_connection_kb: float
    node_base_rss_mb: float  # a node's RSS with no connections
    nats_cpu_ms_per_message: float  # nats-server: JetStream store (R1) + republish to the nodes
    cassandra_cpu_ms_per_write: float  # one message written by the archiver, one replica (RF 1)
    source: str = ""


@dataclass(frozen=True)
class Deployment:
    node_cpu_target: float = 0.6  # a node process runs at most this busy at the peak (bursts, GC, drains)
    node_memory_mb: float = 1536.0  # RAM per node process (8 processes on an 8-vCPU, 16 GiB machine)
    node_max_connections: int = 50_000  # PARLEY_MAX_CONNECTIONS
    node_spare_share: float = 0.2  # extra nodes to take a zone's clients, or a drain, at the peak
    nats_cores: int = 16
    nats_cpu_target: float = 0.5
    stream_replicas: int = 3  # JetStream R3
    nats_min_servers: int = 3
    cassandra_cores: int = 16
    cassandra_cpu_target: float = 0.5
    replication_factor: int = 3  # NetworkTopologyStrategy dc=3, LOCAL_QUORUM
    cassandra_disk_tb: float = 4.0  # usable data disk per node
    cassandra_disk_fill: float = 0.5  # room for compaction and repair
    retention_days: float = 365.0  # history kept in Cassandra
    bytes_per_message_on_disk: float = 300.0  # one row, one replica: body, ids, keys, overhead (uncompressed)
    cursor_flush_s: float = 1.0  # PARLEY_CURSOR_FLUSH_S: a moved device cursor is written this often
    cursor_write_cost: float = 1.0  # a cursor write's cost relative to a message write (not measured apart)


@dataclass(frozen=True)
class Line:
    component: str
    count: int
    driver: str
    arithmetic: str


def nodes(model: TrafficModel, m: Measured, d: Deployment) -> tuple[int, list[str], str]:
    cpu_ms = (model.messages_per_s_peak() * m.node_cpu_ms_per_send
              + (model.deliveries_per_s_peak() + model.presence_frames_per_s_peak()) * m.node_cpu_ms_per_delivery
              + model.heartbeats_per_s_peak() * m.node_cpu_ms_per_heartbeat
              + model.connects_per_s_peak() * m.node_cpu_ms_per_connect)
    by_cpu = math.ceil(cpu_ms / 1000 / d.node_cpu_target)
    per_node = connections_per_node(m, d)
    by_conns = math.ceil(model.connections_peak() / per_node)
    total = math.ceil(max(by_cpu, by_conns) * (1 + d.node_spare_share))
    driver = "memory (connections per node)" if by_conns >= by_cpu else "CPU"
    return total, [
        f"CPU: {fmt(model.messages_per_s_peak())} sends x {m.node_cpu_ms_per_send} ms + "
        f"({fmt(model.deliveries_per_s_peak())} deliveries + {fmt(model.presence_frames_per_s_peak())} presence) x "
        f"{m.node_cpu_ms_per_delivery} ms + {fmt(model.heartbeats_per_s_peak())} pings x "
        f"{m.node_cpu_ms_per_heartbeat} ms + {fmt(model.connects_per_s_peak())} connects x "
        f"{m.node_cpu_ms_per_connect} ms = {fmt(cpu_ms / 1000)} cores / {d.node_cpu_target} target = {by_cpu}",
        f"memory: {fmt(model.connections_peak())} connections / {fmt(per_node)} per node = {by_conns}",
        f"nodes = max({by_cpu}, {by_conns}) x {1 + d.node_spare_share:g} spare = {total}",
    ], driver


def connections_per_node(m: Measured, d: Deployment) -> int:
    by_memory = (d.node_memory_mb - m.node_base_rss_mb) * 1024 / m.rss_per_connection_kb
    return int(min(d.node_max_connections, by_memory))


def nats_servers(model: TrafficModel, m: Measured, d: Deployment) -> tuple[int, list[str], str]:
    # the whole per-message cost counted once per replica: conservative (republish is not replicated)
    cores = model.messages_per_s_peak() * m.nats_cpu_ms_per_message * d.stream_replicas / 1000
    by_cpu = math.ceil(cores / (d.nats_cores * d.nats_cpu_target))
    total = max(d.nats_min_servers, by_cpu)
    driver = "CPU" if by_cpu > d.nats_min_servers else "minimum (R3 quorum)"
    return total, [f"{fmt(model.messages_per_s_peak())} msg/s x {m.nats_cpu_ms_per_message} ms x R{d.stream_replicas} "
                   f"= {fmt(cores)} cores / ({d.nats_cores} x {d.nats_cpu_target}) = {by_cpu}; "
                   f"at least {d.nats_min_servers} -> {total}"], driver


def cursor_writes_per_s(model: TrafficModel, d: Deployment) -> float:
    """Devices whose cursor moved within a flush interval, per second (a device flushes at most once)."""
    per_device = model.deliveries_per_s_peak() / model.connections_peak()
    return model.connections_peak() * (1 - math.exp(-per_device * d.cursor_flush_s)) / d.cursor_flush_s


def cassandra_nodes(model: TrafficModel, m: Measured, d: Deployment) -> tuple[int, list[str], str]:
    cursors = cursor_writes_per_s(model, d)
    writes = model.messages_per_s_peak() + cursors * d.cursor_write_cost
    cores = writes * d.replication_factor * m.cassandra_cpu_ms_per_write / 1000
    by_cpu = math.ceil(cores / (d.cassandra_cores * d.cassandra_cpu_target))
    stored_tb = (model.messages_per_s_average() * 86_400 * d.retention_days * d.bytes_per_message_on_disk
                 * d.replication_factor / 1e12)
    by_disk = math.ceil(stored_tb / (d.cassandra_disk_tb * d.cassandra_disk_fill))
    total = max(d.replication_factor, by_cpu, by_disk)
    driver = "disk (retention)" if by_disk >= max(by_cpu, d.replication_factor) else (
        "CPU (writes)" if by_cpu >= d.replication_factor else "replication factor")
    return total, [
        f"writes: {fmt(model.messages_per_s_peak())} messages + {fmt(cursors)} cursor flushes x "
        f"{d.cursor_write_cost:g} = {fmt(writes)}/s",
        f"CPU: {fmt(writes)} x RF{d.replication_factor} x {m.cassandra_cpu_ms_per_write} ms = {fmt(cores)} cores / "
        f"({d.cassandra_cores} x {d.cassandra_cpu_target}) = {by_cpu}",
        f"disk: {fmt(model.messages_per_s_average() * 86_400)} msgs/day x {fmt(d.retention_days)} days x "
        f"{fmt(d.bytes_per_message_on_disk)} B x RF{d.replication_factor} = {fmt(stored_tb)} TB / "
        f"({fmt(d.cassandra_disk_tb)} TB x {d.cassandra_disk_fill}) = {by_disk}",
        f"cassandra nodes = max(RF {d.replication_factor}, {by_cpu}, {by_disk}) = {total}",
    ], driver


def plan(model: TrafficModel, m: Measured, d: Deployment) -> list[Line]:
    return [Line("edge nodes (1 core each)", *_parts(nodes(model, m, d))),
            Line("NATS servers (JetStream)", *_parts(nats_servers(model, m, d))),
            Line("Cassandra nodes", *_parts(cassandra_nodes(model, m, d)))]


def _parts(out: tuple[int, list[str], str]) -> tuple[int, str, str]:
    count, lines, driver = out
    return count, driver, "\n".join(lines)


# ---- reading the measured figures ----------------------------------------------------------------


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


def measured_from(capacity: Path, store: Path) -> Measured:
    cap = last_record(capacity, lambda r: dig(r, "results", "raw", "throughput", "at_max") is not None)
    raw = cap["results"]["raw"]
    st = last_record(store, lambda r: dig(r, "results", "cassandra", "archiver", "cpu_s_per_1k", "cassandra"))
    at_max = raw["throughput"]["at_max"]
    return Measured(
        node_cpu_ms_per_send=at_max["node_cpu_ms_per_send"],
        node_cpu_ms_per_delivery=at_max["node_cpu_ms_per_delivery"],
        node_cpu_ms_per_heartbeat=raw["idle"]["heartbeats"]["cpu_ms_per_ping"],
        node_cpu_ms_per_connect=raw["reconnects"]["cpu_ms_per_reconnect"]["node1"],
        rss_per_connection_kb=raw["idle"]["rss_per_connection_kb"],
        node_base_rss_mb=raw["idle"]["rss_before_mb"],
        nats_cpu_ms_per_message=at_max["nats_cpu_ms_per_message"],
        # CPU seconds per 1,000 messages = CPU milliseconds per message
        cassandra_cpu_ms_per_write=st["results"]["cassandra"]["archiver"]["cpu_s_per_1k"]["cassandra"],
        source=f"{capacity.name} {cap.get('date')}, {store.name} {st.get('date')}",
    )


def table(lines: list[Line], markdown: bool = False) -> list[str]:
    if markdown:
        return ["| component | count at the peak | bound by |", "|---|---|---|"] + [
            f"| {x.component} | {x.count} | {x.driver} |" for x in lines]
    return [f"{x.component:28} {x.count:6d}   ({x.driver})" for x in lines]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m parley.loadtest.model", description=__doc__.split("\n")[0])
    p.add_argument("--results", default=str(RESULTS / "capacity.jsonl"), help="make bench's results file")
    p.add_argument("--store", default=str(RESULTS / "store.jsonl"), help="make bench-store's results file")
    p.add_argument("--dau", type=int, default=MODEL.dau)
    p.add_argument("--retention-days", type=float, default=Deployment.retention_days)
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        m = measured_from(Path(args.results), Path(args.store))
    except NoFigures as err:
        print(f"{err}: run `make bench` (and `make bench-store` for Cassandra) first", file=sys.stderr)
        return 1
    model = TrafficModel(dau=args.dau)
    d = Deployment(retention_days=args.retention_days)
    lines = plan(model, m, d)
    print(f"measured ({m.source}):")
    for k, v in asdict(m).items():
        if k != "source":
            print(f"  {k:28} {v}")
    print(f"\n{model.dau:,} DAU at the peak:")
    print("\n".join(table(lines, args.markdown)))
    print()
    for x in lines:
        print(f"{x.component}:\n  " + x.arithmetic.replace("\n", "\n  "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
