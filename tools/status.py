"""``parley status``: the cluster at a glance, from discovery and the processes' own /metrics pages.

    region local
      node1  ws://127.0.0.1:8090/ws   conns 12   load 0.02%   sent 1,204   delivered 2,410   errors 3
      node2  ws://127.0.0.1:8091/ws   conns 9    load 0.02%   sent 870     delivered 1,650   errors 0   DRAINING
    archiver  lag 0 messages   archived 2,074   store errors 0
    presence  online 18

Reads only: a process that does not answer is shown as such, and the exit code is 1 then. Where the
cluster is comes from ``parley.tools.locate`` (``--run-dir``'s run.json, flags, ``PARLEY_*``, defaults).
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlparse

from parley.tools.locate import Where
from prometheus_client.parser import text_string_to_metric_families


@dataclass
class Sample:
    values: dict[str, float] = field(default_factory=dict)  # metric name → summed value
    reachable: bool = True


def fetch(url: str, timeout: float = 2.0, context: ssl.SSLContext | None = None) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as resp:
            return bytes(resp.read())
    except OSError:
        return None


def scrape(url: str, context: ssl.SSLContext | None = None) -> Sample:
    """Every sample of a /metrics page, summed over labels (counters' ``_total`` names kept)."""
    raw = fetch(url, context=context)
    if raw is None:
        return Sample(reachable=False)
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(raw.decode()):
        for s in family.samples:
            out[s.name] = out.get(s.name, 0.0) + s.value
    return Sample(out)


def metrics_url(ws_url: str) -> str:
    """A node's WebSocket URL → its /metrics on the same host and port."""
    u = urlparse(ws_url)
    return f"{'https' if u.scheme == 'wss' else 'http'}://{u.netloc}/metrics"


def render(nodes: list[dict[str, object]], node_metrics: dict[str, Sample], archiver: Sample,
           presence: Sample) -> list[str]:
    lines = []
    for region in sorted({str(n["region"]) for n in nodes}):
        lines.append(f"region {region}")
        for n in sorted((n for n in nodes if n["region"] == region), key=lambda n: str(n["id"])):
            m = node_metrics.get(str(n["id"]), Sample(reachable=False))
            stats = (f"sent {m.values.get('parley_node_messages_published_total', 0):,.0f}   "
                     f"delivered {m.values.get('parley_node_messages_delivered_total', 0):,.0f}   "
                     f"errors {m.values.get('parley_node_errors_total', 0):,.0f}") if m.reachable else "no /metrics"
            flags = ("   DRAINING" if n.get("draining") else "") + ("" if n.get("eligible") else "   NOT ELIGIBLE")
            lines.append(f"  {n['id']}  {n['url']}   conns {n['connections']}   load {float(str(n['load'])):.2%}   "
                         f"{stats}{flags}")
    if not nodes:
        lines.append("no nodes registered")
    lines.append("archiver  " + (f"lag {archiver.values.get('parley_archiver_lag', 0):,.0f} messages   "
                                 f"archived {archiver.values.get('parley_archiver_messages_total', 0):,.0f}   "
                                 f"store errors {archiver.values.get('parley_archiver_store_errors_total', 0):,.0f}"
                                 if archiver.reachable else "not answering"))
    lines.append("presence  " + (f"online {presence.values.get('parley_presence_online', 0):,.0f}"
                                 if presence.reachable else "not answering"))
    return lines


def status(where: Where) -> tuple[list[str], bool]:
    """The report, and whether every process answered (over TLS: checked against ``where.ca``)."""
    context = ssl.create_default_context(cafile=where.ca) if where.ca else None
    raw = fetch(f"{where.discovery}/v1/nodes", context=context)
    if raw is None:
        return [where.not_answering("discovery", "--discovery-url")], False
    nodes = json.loads(raw)["nodes"]
    node_metrics = {str(n["id"]): scrape(metrics_url(str(n["url"])), context) for n in nodes}
    archiver = scrape(where.metrics(where.archiver))
    presence = scrape(where.metrics(where.presence))
    ok = archiver.reachable and presence.reachable and all(m.reachable for m in node_metrics.values())
    return render(nodes, node_metrics, archiver, presence), ok
