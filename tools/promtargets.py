"""Prometheus targets for the cluster ``parley up`` runs: one file_sd file per job under ``<run dir>/prometheus/``.

``ops/prometheus.yml`` reads ``.parley/prometheus/<job>.json`` (``file_sd_configs``; Prometheus re-reads a
file when it changes), so the config fits whatever ports ``parley up`` was given: ``parley up`` writes the
files from what it started (``targets`` is the pure part, from a ``RunInfo``). A job with nothing started
(the pusher without FCM) gets an empty list, so no target of it shows as down.

    [{"targets": ["127.0.0.1:8090", "127.0.0.1:8091"], "labels": {}}]      # .parley/prometheus/parley-node.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from parley.tools.runfile import RunInfo

FOLDER = "prometheus"
JOBS = {"node": "parley-node", "api": "parley-api", "discovery": "parley-discovery", "archiver": "parley-archiver",
        "presence": "parley-presence", "pusher": "parley-pusher"}  # role -> job (the rules and dashboard use these)


def targets(info: RunInfo) -> dict[str, list[dict[str, Any]]]:
    """Job name -> its file_sd target groups: every process of the role, as host:port of its /metrics."""
    out: dict[str, list[dict[str, Any]]] = {}
    for role, job in JOBS.items():
        hosts = [urlparse(p.url).netloc for p in info.of_role(role)]
        out[job] = [{"targets": hosts, "labels": {}}] if hosts else []
    return out


def file_of(run_dir: Path | str, job: str) -> Path:
    return Path(run_dir) / FOLDER / f"{job}.json"


def write(run_dir: Path | str, info: RunInfo) -> list[Path]:
    """Each job's file, replaced whole (Prometheus may read it at any time)."""
    written = []
    for job, groups in targets(info).items():
        path = file_of(run_dir, job)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups, indent=2) + "\n")
        tmp.replace(path)
        written.append(path)
    return written
