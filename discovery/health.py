"""The health of the cluster's processes besides the edge nodes (API, archiver, presence, pusher), for the
cluster page. Pure: which processes to watch comes from the settings or ``run.json``; their state, error
rate and a few gauges come from the sampler's ``traffic.History`` of their ``/metrics``.

A process is ``up`` when its last scrape answered, ``down`` when it did not, ``waiting`` before its first
scrape, and ``off`` when it is not expected to run (the pusher without FCM credentials).
"""

from __future__ import annotations

from dataclasses import dataclass

from parley.discovery.traffic import API_5XX, ERRORS, PUSHES_GAVE_UP, History
from parley.tools.runfile import RunInfo

from parley.settings import Settings

WORKER_ROLES = ("api", "archiver", "presence", "pusher")
# the counter whose rate is the process's errors/s
ERROR_COUNTERS = {"node": ERRORS, "api": API_5XX, "archiver": "parley_archiver_store_errors_total",
                  "pusher": PUSHES_GAVE_UP}
# gauges shown beside the state: (label, metric)
GAUGES = {"archiver": (("lag", "parley_archiver_lag"),),
          "presence": (("online", "parley_presence_online"), ("pending", "parley_presence_pending")),
          "pusher": (("lag", "parley_pusher_lag"),)}
STORE_UP = "parley_store_up"


@dataclass(frozen=True, slots=True)
class Watched:
    name: str  # the sampler's target name: the role for the first of each role, then archiver2, …
    role: str
    url: str  # its HTTP base, http://host:port
    expected: bool = True  # False: shown "off" when it does not answer

    @property
    def metrics_url(self) -> str:
        return self.url.rstrip("/") + "/metrics"


def watched(settings: Settings, run: RunInfo | None) -> list[Watched]:
    """The processes to watch: every API and worker ``parley up`` started (``run.json``), else one of each
    role on the settings' ports (extra workers are only known from ``run.json``)."""
    if run is not None:
        listed = [Watched(p.name, p.role, p.url) for p in run.processes if p.role in WORKER_ROLES]
        if listed:
            return sorted(listed, key=lambda w: (WORKER_ROLES.index(w.role), w.name))
    s = settings
    return [Watched("api", "api", f"{s.http_scheme()}://{s.api_host}:{s.api_port}"),
            Watched("archiver", "archiver", f"http://{s.archiver_host}:{s.archiver_port}"),
            Watched("presence", "presence", f"http://{s.presence_host}:{s.presence_port}"),
            Watched("pusher", "pusher", f"http://{s.pusher_host}:{s.pusher_port}", expected=bool(s.fcm_credentials))]


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def process_health(history: History, w: Watched) -> dict[str, object]:
    """One process's row: state, errors/s (when its role counts errors), store state, gauges."""
    ring = history.rings.get(w.name)
    latest = history.latest(w.name)
    if not ring:
        state = "waiting"
    elif latest is None:
        state = "down" if w.expected else "off"
    else:
        state = "up"
    counter = ERROR_COUNTERS.get(w.role)
    store = latest.values.get(STORE_UP) if latest else None
    return {"name": w.name, "role": w.role, "url": w.url, "state": state,
            "errors_per_s": _round(history.rate(w.name, counter)) if counter and latest else None,
            "store": None if store is None else ("up" if store >= 1 else "down"),
            "gauges": {label: latest.values.get(metric) for label, metric in GAUGES.get(w.role, ())
                       if latest and metric in latest.values}}


def processes_summary(rows: list[dict[str, object]]) -> dict[str, int]:
    """How many processes are in each state (for the panel's heading)."""
    out: dict[str, int] = {}
    for row in rows:
        out[str(row["state"])] = out.get(str(row["state"]), 0) + 1
    return out
