"""The capacity model: measured per-node figures + the traffic model → how big a 50M-DAU deployment is.

    .venv/bin/python -m parley.loadtest.model        # newest capacity.jsonl + store.jsonl + scale.jsonl
    .venv/bin/python -m parley.loadtest.model --dau 10000000 --markdown

Three inputs, each in one place: the traffic at the peak (``loadtest.traffic.TrafficModel``), what one
process costs per operation as measured on this code (``figures.Measured``, read from the results
files that ``make bench``, ``make bench-store`` and ``make bench-scale`` write), and the deployment's
assumptions (``Deployment``: machine sizes, utilisation targets, replication, retention, and the few
costs nothing measures yet, marked NOT MEASURED). ``plan`` is pure arithmetic on the three, every count
rounded up, so docs/capacity.md can show each step and the unit tests can check it.

Every role is counted: edge nodes, stream shards (one ordering domain each: its serial path has a
ceiling no number of servers raises), NATS servers (CPU per message x R, heartbeats, connects),
NATS during a reconnect storm, archivers, pushers, presence workers, Cassandra (writes, reads, disk).
A Python process (edge node, worker) is one core: a machine with 8 vCPUs runs about 8 of them.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from parley.loadtest.figures import Measured, NoFigures, measured_from
from parley.loadtest.traffic import MODEL, TrafficModel, fmt

RESULTS = Path(__file__).resolve().parent / "results"


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
    shard_headroom: float = 0.5  # a shard runs at most this share of its measured ceiling at the peak
    shard_spare_share: float = 0.25  # shards for growth and hot conversations (changing K needs a migration)
    worker_cpu_target: float = 0.6  # archiver, pusher and presence worker: one Python process, one core each
    # used only while no push_cost run is recorded (Measured's pusher figures are None)
    pusher_cpu_ms_per_message: float = 0.3  # ASSUMED: like the archiver's (a consumer, store reads)
    pusher_cpu_ms_per_push: float = 0.5  # ASSUMED: a KV claim + an FCM call per push
    pusher_reads_per_message: float = 3.0  # store reads the pusher makes per message (tokens, prefs, receipts)
    cassandra_cores: int = 16
    cassandra_cpu_target: float = 0.5
    replication_factor: int = 3  # NetworkTopologyStrategy dc=3, LOCAL_QUORUM
    read_replicas: int = 2  # LOCAL_QUORUM at RF 3 reads two replicas
    point_read_cost: float = 1.0  # a pusher's key read relative to a message write (not measured apart)
    cassandra_disk_tb: float = 4.0  # usable data disk per node
    cassandra_disk_fill: float = 0.5  # room for compaction and repair
    retention_days: float = 365.0  # history kept in Cassandra
    bytes_per_message_on_disk: float = 300.0  # one row, one replica: body, ids, keys, overhead (uncompressed)
    cursor_flush_s: float = 1.0  # PARLEY_CURSOR_FLUSH_S: a moved device cursor is written this often
    cursor_write_cost: float = 1.0  # a cursor write's cost relative to a message write (not measured apart)
    # a connect sync on today's single stream (issue 14, hand-measured: a temporary filtered consumer each)
    connect_nats_cpu_ms_single_stream: float = 6.6  # R3; 3.5 on one server
    storm_share: float = 1 / 3  # a reconnect storm: one zone's clients (or a NATS reconnect of a third of nodes)
    storm_window_s: float = 60.0  # ... reconnecting within this long (clients back off with jitter)


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


def shard_ceiling(m: Measured) -> float:
    """One shard's msg/s if all of its server work ran serially on one core (conservative: nats-server
    spreads a message's work over goroutines, so the real leader path is shorter)."""
    return 1000 / m.shard_cpu_ms_per_message


def shards(model: TrafficModel, m: Measured, d: Deployment) -> tuple[int, list[str], str]:
    per_shard = shard_ceiling(m) * d.shard_headroom
    needed = math.ceil(model.messages_per_s_peak() / per_shard)
    total = math.ceil(needed * (1 + d.shard_spare_share))
    return total, [
        f"ceiling per shard: 1000 / {m.shard_cpu_ms_per_message} ms (K=1, R{m.stream_replicas_measured}, all "
        f"servers' CPU per message as if serial) = {fmt(shard_ceiling(m))} msg/s; x {d.shard_headroom} "
        f"headroom = {fmt(per_shard)} msg/s",
        f"shards = {fmt(model.messages_per_s_peak())} msg/s / {fmt(per_shard)} = {needed}; x "
        f"{1 + d.shard_spare_share:g} for growth and hot conversations = {total}",
    ], "one stream's serial path (ordering domain)"


def connect_nats_ms(m: Measured, d: Deployment, single_stream: bool) -> float:
    """NATS CPU per connect: today's temporary consumer per sync, or the sharded design's steady state
    (zero JetStream API calls; today's empty-sync figure, which still has two, is the upper bound)."""
    return d.connect_nats_cpu_ms_single_stream if single_stream else m.nats_cpu_ms_per_connect


def nats_cores(model: TrafficModel, m: Measured, d: Deployment, connects_per_s: float,
               single_stream: bool = False) -> float:
    return (model.messages_per_s_peak() * m.stream_cpu_ms_per_message * d.stream_replicas / m.stream_replicas_measured
            + model.heartbeat_entries_per_s_peak() * m.nats_cpu_ms_per_heartbeat_entry
            + connects_per_s * connect_nats_ms(m, d, single_stream)) / 1000


def nats_servers(model: TrafficModel, m: Measured, d: Deployment) -> tuple[int, list[str], str]:
    per_replica = m.stream_cpu_ms_per_message / m.stream_replicas_measured
    cores = nats_cores(model, m, d, model.connects_per_s_peak())
    today = nats_cores(model, m, d, model.connects_per_s_peak(), single_stream=True)
    by_cpu = math.ceil(cores / (d.nats_cores * d.nats_cpu_target))
    today_servers = math.ceil(today / (d.nats_cores * d.nats_cpu_target))
    total = max(d.nats_min_servers, by_cpu)
    driver = "CPU" if by_cpu > d.nats_min_servers else "minimum (R3 quorum)"
    return total, [
        f"messages: {fmt(model.messages_per_s_peak())} msg/s x {per_replica:.4f} ms per replica x R{d.stream_replicas} "
        f"= {fmt(model.messages_per_s_peak() * per_replica * d.stream_replicas / 1000)} cores",
        f"heartbeats: {fmt(model.heartbeat_entries_per_s_peak())} entries/s x {m.nats_cpu_ms_per_heartbeat_entry} ms "
        f"= {fmt(model.heartbeat_entries_per_s_peak() * m.nats_cpu_ms_per_heartbeat_entry / 1000)} cores",
        f"connects (sharded, zero JetStream calls): {fmt(model.connects_per_s_peak())}/s x "
        f"{m.nats_cpu_ms_per_connect} ms = {fmt(model.connects_per_s_peak() * m.nats_cpu_ms_per_connect / 1000)} "
        f"cores  [today's single stream: x {d.connect_nats_cpu_ms_single_stream} ms = "
        f"{fmt(model.connects_per_s_peak() * d.connect_nats_cpu_ms_single_stream / 1000)} cores -> {today_servers} "
        "servers]",
        f"{fmt(cores)} cores / ({d.nats_cores} x {d.nats_cpu_target}) = {by_cpu}; at least {d.nats_min_servers} "
        f"-> {total}",
    ], driver


def workers(name: str, load: list[tuple[float, float, str]], d: Deployment) -> tuple[int, list[str], str]:
    """One-core worker processes for ``load``: (operations/s, CPU ms each, what) rows."""
    cores = sum(rate * ms for rate, ms, _ in load) / 1000
    count = max(2, math.ceil(cores / d.worker_cpu_target))  # two at least: one may restart
    terms = " + ".join(f"{fmt(rate)} {what}/s x {ms} ms" for rate, ms, what in load)
    return count, [f"{terms} = {fmt(cores)} cores / {d.worker_cpu_target} target = {count} {name}"], "CPU"


def archivers(model: TrafficModel, m: Measured, d: Deployment) -> tuple[int, list[str], str]:
    return workers("archivers", [(model.messages_per_s_peak(), m.archiver_cpu_ms_per_message, "msg")], d)


def pushers(model: TrafficModel, m: Measured, d: Deployment) -> tuple[int, list[str], str]:
    measured = m.pusher_cpu_ms_per_message is not None and m.pusher_cpu_ms_per_push is not None
    per_message = m.pusher_cpu_ms_per_message if measured else d.pusher_cpu_ms_per_message
    per_push = m.pusher_cpu_ms_per_push if measured else d.pusher_cpu_ms_per_push
    count, lines, _ = workers("pushers", [(model.messages_per_s_peak(), per_message or 0.0, "msg"),
                                          (model.pushes_per_s_peak(), per_push or 0.0, "push")], d)
    return count, lines, "CPU" if measured else "CPU (assumed costs: no push_cost run recorded)"


def presence_workers(model: TrafficModel, m: Measured, d: Deployment) -> tuple[int, list[str], str]:
    return workers("presence workers", [(model.heartbeat_entries_per_s_peak(), m.presence_cpu_ms_per_entry,
                                         "heartbeat entry")], d)


def cursor_writes_per_s(model: TrafficModel, d: Deployment) -> float:
    """Devices whose cursor moved within a flush interval, per second (a device flushes at most once)."""
    per_device = model.deliveries_per_s_peak() / model.connections_peak()
    return model.connections_peak() * (1 - math.exp(-per_device * d.cursor_flush_s)) / d.cursor_flush_s


def cassandra_read_cores(model: TrafficModel, m: Measured, d: Deployment) -> tuple[float, str]:
    history = model.history_pages_per_s_peak() * m.cassandra_cpu_ms_per_history_page
    sync = model.store_sync_pages_per_s_peak() * m.cassandra_cpu_ms_per_sync_page
    pusher_reads = model.messages_per_s_peak() * d.pusher_reads_per_message
    push = pusher_reads * m.cassandra_cpu_ms_per_write * d.point_read_cost
    cores = (history + sync + push) * d.read_replicas / 1000
    return cores, (f"reads: ({fmt(model.history_pages_per_s_peak())} history pages x "
                   f"{m.cassandra_cpu_ms_per_history_page} ms + {fmt(model.store_sync_pages_per_s_peak())} sync pages "
                   f"x {m.cassandra_cpu_ms_per_sync_page} ms + {fmt(pusher_reads)} pusher reads x "
                   f"{m.cassandra_cpu_ms_per_write * d.point_read_cost:.4g} ms) x {d.read_replicas} replicas "
                   f"= {fmt(cores)} cores")


def cassandra_nodes(model: TrafficModel, m: Measured, d: Deployment) -> tuple[int, list[str], str]:
    cursors = cursor_writes_per_s(model, d)
    writes = model.messages_per_s_peak() + cursors * d.cursor_write_cost
    write_cores = writes * d.replication_factor * m.cassandra_cpu_ms_per_write / 1000
    read_cores, read_line = cassandra_read_cores(model, m, d)
    by_cpu = math.ceil((write_cores + read_cores) / (d.cassandra_cores * d.cassandra_cpu_target))
    stored_tb = (model.messages_per_s_average() * 86_400 * d.retention_days * d.bytes_per_message_on_disk
                 * d.replication_factor / 1e12)
    by_disk = math.ceil(stored_tb / (d.cassandra_disk_tb * d.cassandra_disk_fill))
    total = max(d.replication_factor, by_cpu, by_disk)
    driver = "disk (retention)" if by_disk >= max(by_cpu, d.replication_factor) else (
        ("CPU (reads)" if read_cores > write_cores else "CPU (writes)") if by_cpu >= d.replication_factor
        else "replication factor")
    return total, [
        f"writes: {fmt(model.messages_per_s_peak())} messages + {fmt(cursors)} cursor flushes x "
        f"{d.cursor_write_cost:g} = {fmt(writes)}/s x RF{d.replication_factor} x {m.cassandra_cpu_ms_per_write} ms "
        f"= {fmt(write_cores)} cores",
        read_line,
        f"CPU: {fmt(write_cores + read_cores)} cores / ({d.cassandra_cores} x {d.cassandra_cpu_target}) = {by_cpu}",
        f"disk: {fmt(model.messages_per_s_average() * 86_400)} msgs/day x {fmt(d.retention_days)} days x "
        f"{fmt(d.bytes_per_message_on_disk)} B x RF{d.replication_factor} = {fmt(stored_tb)} TB / "
        f"({fmt(d.cassandra_disk_tb)} TB x {d.cassandra_disk_fill}) = {by_disk}",
        f"cassandra nodes = max(RF {d.replication_factor}, {by_cpu}, {by_disk}) = {total}",
    ], driver


def reconnect_storm(model: TrafficModel, m: Measured, d: Deployment) -> tuple[int, list[str], str]:
    """NATS servers needed while a storm's connects come on top of the peak (the count the plan needs
    to ride it out without shedding); edge nodes absorb theirs in the spare share or queue them."""
    extra = model.connections_peak() * d.storm_share / d.storm_window_s
    connects = model.connects_per_s_peak() + extra
    cores = nats_cores(model, m, d, connects)
    today = nats_cores(model, m, d, connects, single_stream=True)
    per_server = d.nats_cores * d.nats_cpu_target
    servers, today_servers = math.ceil(cores / per_server), math.ceil(today / per_server)
    node_cores = extra * m.node_cpu_ms_per_connect / 1000
    return max(d.nats_min_servers, servers), [
        f"storm: {fmt(model.connections_peak())} x {d.storm_share:.3g} reconnecting in {fmt(d.storm_window_s)} s = "
        f"{fmt(extra)} connects/s on top of {fmt(model.connects_per_s_peak())}",
        f"NATS, sharded (zero JetStream calls per connect, {m.nats_cpu_ms_per_connect} ms): {fmt(cores)} cores "
        f"-> {servers} servers",
        f"NATS, today's single stream ({d.connect_nats_cpu_ms_single_stream} ms per connect): {fmt(today)} cores "
        f"-> {today_servers} servers",
        f"edge nodes: {fmt(extra)} x {m.node_cpu_ms_per_connect} ms = {fmt(node_cores)} extra cores",
    ], "connects during the storm (sharded design)"


def plan(model: TrafficModel, m: Measured, d: Deployment) -> list[Line]:
    return [Line("edge nodes (1 core each)", *_parts(nodes(model, m, d))),
            Line("stream shards (MSG_i)", *_parts(shards(model, m, d))),
            Line("NATS servers (JetStream)", *_parts(nats_servers(model, m, d))),
            Line("NATS servers in a reconnect storm", *_parts(reconnect_storm(model, m, d))),
            Line("archivers", *_parts(archivers(model, m, d))),
            Line("pushers", *_parts(pushers(model, m, d))),
            Line("presence workers", *_parts(presence_workers(model, m, d))),
            Line("Cassandra nodes", *_parts(cassandra_nodes(model, m, d)))]


def _parts(out: tuple[int, list[str], str]) -> tuple[int, str, str]:
    count, lines, driver = out
    return count, driver, "\n".join(lines)


def table(lines: list[Line], markdown: bool = False) -> list[str]:
    if markdown:
        return ["| component | count at the peak | bound by |", "|---|---|---|"] + [
            f"| {x.component} | {x.count} | {x.driver} |" for x in lines]
    return [f"{x.component:34} {x.count:6d}   ({x.driver})" for x in lines]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m parley.loadtest.model", description=__doc__.split("\n")[0])
    p.add_argument("--results", default=str(RESULTS / "capacity.jsonl"), help="make bench's results file")
    p.add_argument("--store", default=str(RESULTS / "store.jsonl"), help="make bench-store's results file")
    p.add_argument("--scale", default=str(RESULTS / "scale.jsonl"), help="make bench-scale's results file")
    p.add_argument("--dau", type=int, default=MODEL.dau)
    p.add_argument("--retention-days", type=float, default=Deployment.retention_days)
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        m = measured_from(Path(args.results), Path(args.store), Path(args.scale))
    except NoFigures as err:
        print(f"{err}: run `make bench`, `make bench-store` and `make bench-scale` first", file=sys.stderr)
        return 1
    model = TrafficModel(dau=args.dau)
    d = Deployment(retention_days=args.retention_days)
    lines = plan(model, m, d)
    print(f"measured ({m.source}):")
    for k, v in asdict(m).items():
        if k != "source":
            print(f"  {k:36} {v}")
    print(f"\n{model.dau:,} DAU at the peak:")
    print("\n".join(table(lines, args.markdown)))
    print()
    for x in lines:
        print(f"{x.component}:\n  " + x.arithmetic.replace("\n", "\n  "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
