"""Prometheus metrics: one registry per process, served at ``/metrics`` beside the health endpoints.

Labels stay low-cardinality on purpose: frame types, error codes, regions, routes, outcomes; never a
user, device, conversation or node-local connection id (those belong in logs).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import TypeVar

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

KNOWN_OUT = {t.encode() for t in ("welcome", "msg", "ack", "synced", "pong", "typing", "receipt", "group",
                                   "presence", "moved", "error", "cursor", "live_joined", "live_msg", "live_sent",
                                   "live_left", "live_dropped", "live_deleted", "live_pinned", "live_meta",
                                   "live_viewers")}
# anything else is counted as "other"
_T = TypeVar("_T", "Tally", "TallyLabels", "TallyHistogram")
LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def add_metrics_route(app: web.Application, registry: CollectorRegistry,
                      before: Callable[[], None] | None = None) -> None:
    async def page(_: web.Request) -> web.Response:
        if before is not None:
            before()
        return web.Response(body=generate_latest(registry), content_type="text/plain", charset="utf-8")

    app.router.add_get("/metrics", page)


class Tally:
    """A counter's increments kept in a plain int on the hot path and put into ``counter`` by ``fold`` (before each
    scrape): the same exposition, without prometheus_client's lock and checks per call (docs/adr/0037)."""

    __slots__ = ("n", "_into")

    def __init__(self, into: Counter) -> None:
        self.n, self._into = 0, into

    def inc(self, amount: int = 1) -> None:
        self.n += amount

    def fold(self) -> None:
        n, self.n = self.n, 0
        if n:
            self._into.inc(n)


class TallyLabels:
    """A labelled counter's children as ``Tally``s (``labels`` returns the same one for the same values)."""

    def __init__(self, into: Counter) -> None:
        self._into = into
        self._children: dict[tuple[str, ...], Tally] = {}

    def labels(self, *values: str) -> Tally:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = Tally(self._into.labels(*values))
        return child

    def fold(self) -> None:
        for child in list(self._children.values()):
            child.fold()


class TallyHistogram:
    """A histogram's observations kept as plain counts per bucket, put into ``histogram``'s own bucket values by
    ``fold``: reads prometheus_client's ``_upper_bounds``, ``_buckets`` and ``_sum`` (tests/parley/test_metrics.py
    checks the exposition against ``observe``'s, so an upgrade that moves them fails there)."""

    __slots__ = ("_into", "_bounds", "_counts", "_sum")

    def __init__(self, into: Histogram) -> None:
        self._into = into
        self._bounds: tuple[float, ...] = tuple(into._upper_bounds)
        self._counts, self._sum = [0] * len(self._bounds), 0.0

    def observe(self, amount: float) -> None:
        self._counts[bisect_left(self._bounds, amount)] += 1  # the first bucket with amount <= bound, as observe
        self._sum += amount

    def fold(self) -> None:
        counts, total = self._counts, self._sum
        if not any(counts):
            return
        self._counts, self._sum = [0] * len(self._bounds), 0.0
        self._into._sum.inc(total)
        for bucket, n in zip(self._into._buckets, counts, strict=True):
            if n:
                bucket.inc(n)


class NodeMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        # the per-message counts (every frame in, send and delivery) are tallies, folded in before a scrape reads
        self._tallies: list[Tally | TallyLabels | TallyHistogram] = []
        r.register(_Tallied(self._fold))  # first: the registry is read in the order collectors were registered
        self.connections = Gauge("parley_node_connections", "Device connections on this node", registry=r)
        self.users = Gauge("parley_node_users", "Users with a device on this node", registry=r)
        self.frames_in = self._tally(TallyLabels(Counter("parley_node_frames_in", "Client frames received", ["type"],
                                                         registry=r)))
        self.errors = Counter("parley_node_errors", "Error frames sent, by code", ["code"], registry=r)
        self.refusals = Counter("parley_node_limit_refusals", "Frames refused for being over their budget "
                                "(rate_limited), by budget: send, sync, presence, read, typing, cheap", ["kind"],
                                registry=r)
        for kind in ("send", "sync", "presence", "read", "typing", "cheap"):
            self.refusals.labels(kind)  # listed at 0 from the start
        self.published = self._tally(Tally(Counter("parley_node_messages_published", "Messages stored on the bus "
                                                   "(SENT)", registry=r)))
        self.publish_seconds = self._tally(TallyHistogram(Histogram(
            "parley_node_publish_seconds", "JetStream publish until PubAck", buckets=LATENCY, registry=r)))
        self.send_wait_seconds = self._tally(TallyHistogram(Histogram(
            "parley_node_send_wait_seconds", "A send from being read to its publish: its turn in the connection's "
            "lane for the conversation and the checks before the publish (loop clock, ms; ADR 0045)",
            buckets=LATENCY, registry=r)))
        self.delivered = self._tally(Tally(Counter("parley_node_messages_delivered", "Messages handed to devices",
                                                   registry=r)))
        self.e2e_seconds = self._tally(TallyHistogram(Histogram(
            "parley_node_delivery_seconds", "From the sending node's clock to delivery here (live messages, once each)",
            buckets=LATENCY, registry=r)))
        r.register(_Tallied(self._tally_frames_out))  # before the counter: a scrape reads the tally into it first
        self.frames_out = Counter("parley_node_frames_out", "Server frames written to devices", ["type"], registry=r)
        self.draining = Gauge("parley_node_draining", "1 while the node drains (moving its clients away)",
                              registry=r)
        self.loop_lag = Histogram("parley_node_loop_lag_seconds", "How late the event loop ran a 0.1 s timer: "
                                  "every device waits that long too (parley.loopwatch)", buckets=LATENCY, registry=r)
        self.gc_seconds = Histogram("parley_node_gc_seconds", "Cyclic garbage collections, by generation, and how "
                                    "long each stopped the node", ["generation"], buckets=LATENCY, registry=r)
        self.stream_requests = Counter(
            "parley_node_stream_requests", "JetStream API requests this node made, by kind (bounds, floor: the "
            "shard watch; last: a conversation's last id; read: a stream read for a sync)", ["kind"], registry=r)
        # live rooms (ADR 0018): no room label (rooms are unbounded); per-room figures are issue 16 item 7
        self.live_viewers = Gauge("parley_node_live_viewers", "Live-room viewers on this node (a device in two "
                                  "rooms counts twice)", registry=r)
        self.live_rooms = Gauge("parley_node_live_rooms", "Live rooms this node is subscribed to", registry=r)
        self.live_in = Counter("parley_node_live_messages_in", "Live messages accepted from this node's devices",
                               registry=r)
        self.live_out = Counter("parley_node_live_messages_out", "Live messages handed to viewers here", registry=r)
        self.live_rejected = Counter("parley_node_live_rejected", "Live sends refused, by error code", ["code"],
                                     registry=r)
        self.live_dropped = Counter("parley_node_live_dropped_viewers",
                                    "Viewers dropped from a live room for reading too slowly", registry=r)
        self._out_by_type: dict[bytes, Counter] = {}
        self._frames_out: dict[bytes, int] = {}  # by the frame's type, since the last scrape
        self._last_out: tuple[bytes, bytes] = (b"", b"")  # the last frame counted and its type

    def _tally(self, tally: _T) -> _T:
        self._tallies.append(tally)
        return tally

    def _fold(self) -> None:
        for tally in self._tallies:
            tally.fold()

    def frames_sent(self, frames: Iterable[bytes]) -> None:
        """Count the frames of one write to a device (one call per write, not per frame: ADR 0053); a frame's type
        is read from the encoded JSON (every frame starts with it). Every frame to every device passes here: a
        plain count, put into the counter when scraped (a counter's lock per frame was ~2% of a node's CPU in
        fan-out, docs/adr/0027)."""
        last, kind = self._last_out
        counts = self._frames_out
        for frame in frames:
            if frame is not last:  # one message's frame goes to every device of its conversation in a row
                kind = frame[9:frame.find(b'"', 9)] if frame.startswith(b'{"type":"') else b"other"
                last = frame
            counts[kind] = counts.get(kind, 0) + 1
        self._last_out = (last, kind)

    def _tally_frames_out(self) -> None:
        counts, self._frames_out = self._frames_out, {}
        for kind, n in counts.items():
            child = self._out_by_type.get(kind)
            if child is None:
                label = kind.decode() if kind in KNOWN_OUT else "other"
                child = self._out_by_type[kind] = self.frames_out.labels(label)
            child.inc(n)


class _Tallied(Collector):
    """Exposes nothing itself: when the registry is read, it first runs ``tally`` (counts kept in plain
    Python for the hot paths go into their counters)."""

    def __init__(self, tally: Callable[[], None]) -> None:
        self._tally = tally

    def collect(self) -> Iterable[Metric]:
        self._tally()
        return ()


FLOOD_RULES = ("flooding", "duplicate", "links", "slow_mode", "timed_out", "banned", "moderator")
FLOOD_ACTIONS = ("warning", "timeout", "ban", "refused", "unban", "slow_mode")


class FloodMetrics:
    """Live rooms' flood decisions by rule and action (both closed sets): never a room or a user."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.decisions = Counter("parley_live_flood_decisions", "Flood and moderation decisions by rule (flooding, "
                                 "duplicate, links, slow_mode, timed_out, banned, moderator) and action (warning, "
                                 "timeout, ban, refused, unban, slow_mode)", ["rule", "action"], registry=r)

    def decided(self, rule: str, action: str) -> None:
        self.decisions.labels(rule if rule in FLOOD_RULES else "other",
                              action if action in FLOOD_ACTIONS else "other").inc()


class ApiMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("parley_api_requests", "HTTP requests", ["route", "method", "status"], registry=r)
        self.seconds = Histogram("parley_api_request_seconds", "HTTP request time", ["route"], buckets=LATENCY,
                                 registry=r)
        self.refusals = Counter("parley_api_limit_refusals", "Requests refused with 429 by limit: address, "
                                "presence_account, login_account, auth_address, signup_address", ["limit"],
                                registry=r)
        for limit in ("address", "presence_account", "login_account", "auth_address", "signup_address"):
            self.refusals.labels(limit)


class DiscoveryMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.placements = Counter("parley_discovery_placements", "Placements by asked region and outcome",
                                  ["region", "outcome"], registry=r)
        self.nodes = Gauge("parley_discovery_nodes", "Eligible nodes by region", ["region"], registry=r)


class ArchiverMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.archived = Counter("parley_archiver_messages", "Messages written to the store", registry=r)
        self.write_seconds = Histogram("parley_archiver_write_seconds", "One batch's store write", buckets=LATENCY,
                                       registry=r)
        self.store_errors = Counter("parley_archiver_store_errors", "Failed store writes (retried)", registry=r)
        self.lag = Gauge("parley_archiver_lag", "Messages in the streams not yet handed to any archiver "
                         "(the shared consumers' pending count)", registry=r)
        self.held = Gauge("parley_archiver_in_flight", "Messages this archiver took and has not yet acked",
                          registry=r)


class PresenceMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.online = Gauge("parley_presence_online", "Users online", registry=r)
        self.transitions = Counter("parley_presence_transitions", "Changes announced", ["state"], registry=r)
        self.heartbeats = Counter("parley_presence_heartbeats", "Devices heard of: arrivals, departures, reports' "
                                  "devices (and older nodes' per-device beats)", registry=r)
        self.asks = Counter("parley_presence_asks", "Reports asked of nodes (a change missed, or a node new to "
                            "this worker's partition)", registry=r)
        self.partitions = Gauge("parley_presence_partitions", "Presence partitions this worker holds", registry=r)
        self.takeovers = Counter("parley_presence_partitions_taken", "Partitions taken (at start, from a dead "
                                 "worker, or handed over)", registry=r)
        self.pending = Gauge("parley_presence_pending", "Heartbeat batches received and not yet handled (lag)",
                             registry=r)
