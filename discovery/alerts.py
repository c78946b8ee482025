"""Alert state for the cluster page, from Prometheus' HTTP API (``GET <PARLEY_PROMETHEUS_URL>/api/v1/alerts``):
the alerts of ``ops/alerts.yml`` that are firing or pending now. Pure: the JSON body comes in, the panel's
model comes out; the request is discovery/probes.py's.

Prometheus answers ``{"status": "success", "data": {"alerts": [{"labels": {"alertname": …, "severity": …},
"annotations": {"summary": …}, "state": "firing" | "pending", "activeAt": "2026-…Z", "value": "…"}]}}``.
The panel's state: ``off`` (no Prometheus configured), ``waiting`` (not asked yet), ``ok`` (none firing),
``firing``, or ``unreachable`` (no answer, or an answer that is not that shape).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

SEVERITY_ORDER = ("critical", "page", "warning", "info")


@dataclass(frozen=True, slots=True)
class Alert:
    name: str
    state: str  # firing or pending
    severity: str
    summary: str
    description: str
    since: float | None  # unix seconds
    labels: dict[str, str]  # the rest: instance, region, job…


def _since(active_at: object) -> float | None:
    try:
        return datetime.fromisoformat(str(active_at).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def parse_alerts(body: Mapping[str, Any]) -> list[Alert]:
    """The alerts in an ``/api/v1/alerts`` answer, firing first, then by severity and name; ValueError when
    the body is not a successful answer of that API."""
    if body.get("status") != "success" or not isinstance(body.get("data"), Mapping):
        raise ValueError(f"not a Prometheus alerts answer: status {body.get('status')!r}")
    out = []
    for raw in body["data"].get("alerts") or []:
        labels = {str(k): str(v) for k, v in (raw.get("labels") or {}).items()}
        notes = raw.get("annotations") or {}
        name = labels.pop("alertname", "?")
        severity = labels.pop("severity", "")
        out.append(Alert(name, str(raw.get("state", "")), severity, str(notes.get("summary") or ""),
                         str(notes.get("description") or ""), _since(raw.get("activeAt")), labels))
    rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    return sorted(out, key=lambda a: (a.state != "firing", rank.get(a.severity, len(rank)), a.name))


def alerts_view(url: str, body: Mapping[str, Any] | None, error: str | None = None) -> dict[str, object]:
    """The alert panel's model: ``url`` is the configured Prometheus ('' for none), ``body`` its last answer."""
    if not url:
        return {"state": "off", "url": None, "error": None, "alerts": []}
    if body is None:
        return {"state": "unreachable" if error else "waiting", "url": url, "error": error, "alerts": []}
    try:
        alerts = parse_alerts(body)
    except (ValueError, AttributeError, TypeError) as err:
        return {"state": "unreachable", "url": url, "error": str(err), "alerts": []}
    firing = any(a.state == "firing" for a in alerts)
    return {"state": "firing" if firing else "ok", "url": url, "error": None, "alerts": [asdict(a) for a in alerts]}
