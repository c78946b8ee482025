"""The body of ``GET /v1/cluster``: everything the cluster page shows, assembled from what discovery keeps
(the node timeline, the sampler's history and its last JetStream and Prometheus answers). Pure: ``now`` and
those come in, JSON-ready dicts come out.
"""

from __future__ import annotations

from parley.discovery.alerts import alerts_view
from parley.discovery.health import Watched, process_health, processes_summary
from parley.discovery.jetstream import bus_health
from parley.discovery.live_rooms import live_rooms
from parley.discovery.probes import AlertsAnswer, BusAnswer
from parley.discovery.timeline import NodeView
from parley.discovery.traffic import History, node_traffic, worker_lag

from parley.settings import Settings


def node_row(v: NodeView, history: History, now: float) -> dict[str, object]:
    n = v.record
    return {**n.public(), "connections": n.connections, "max_connections": n.max_connections,
            "draining": n.draining, "state": v.state, "eligible": v.state == "eligible", "gone": v.gone,
            "since": None if v.since is None else round(v.since, 3),
            "hides_in_s": None if v.hides_at is None else round(max(0.0, v.hides_at - now), 1),
            "age_s": round(now - n.updated_at, 2), "uptime_s": round(n.updated_at - n.started_at, 1) if v.gone
            else round(now - n.started_at, 1), **node_traffic(history, n.id)}


def health(settings: Settings, history: History, processes: list[Watched], bus: BusAnswer,
           alerts: AlertsAnswer) -> dict[str, object]:
    """The health panel: the API and workers, NATS and JetStream, Prometheus' alerts."""
    rows = [process_health(history, w) for w in processes]
    return {"processes": rows, "summary": processes_summary(rows),
            "nats": bus_health(bus.streams, bus.account, bus.server, settings.stream_name, bus.error),
            "alerts": alerts_view(settings.prometheus_url, alerts.body, alerts.error)}


def cluster_body(settings: Settings, views: list[NodeView], history: History, processes: list[Watched],
                 bus: BusAnswer, alerts: AlertsAnswer, *, now: float, interval_s: float,
                 window_s: float) -> dict[str, object]:
    first = {w.role: w.name for w in reversed(processes)}  # the first of each role carries the shared lag
    pusher_expected = any(w.role == "pusher" and w.expected for w in processes)
    lag = {"archiver": worker_lag(history, first.get("archiver", "archiver"), "parley_archiver_lag",
                                  off_when_absent=False),
           "pusher": worker_lag(history, first.get("pusher", "pusher"), "parley_pusher_lag",
                                off_when_absent=not pusher_expected)}
    return {"now": round(now, 3), "interval_s": interval_s, "window_s": window_s,
            "nodes": [node_row(v, history, now) for v in views], "lag": lag,
            "live": live_rooms(history, [v.record.id for v in views if not v.gone]),
            "health": health(settings, history, processes, bus, alerts)}
