"""What ``parley up`` started, written to ``<run dir>/run.json`` so other commands find the cluster.

``parley up`` writes the file once everything answers and again whenever a process is restarted (new PID);
it removes it at a clean stop. Readers (``parley status``, ``parley node drain``, the load tests, the FCM
demo) take ``--run-dir`` (default ``.parley``) and read URLs and ports from it instead of assuming the
default ports. The file is replaced atomically (written to a temp file in the same folder, then renamed),
so a reader never sees half of it.

    {"version": 1, "up_pid": 4242, "started": 1764690000.0,
     "urls": {"chat": "http://127.0.0.1:8080/", "api": "http://127.0.0.1:8080",
              "discovery": "http://127.0.0.1:8070", "cluster_page": "http://127.0.0.1:8070/cluster",
              "nats": "nats://127.0.0.1:4222"}, "tls_ca": "",
     "processes": [{"name": "node1", "role": "node", "pid": 4250, "port": 8090,
                    "url": "http://127.0.0.1:8090", "restarts": 0}, ...],
     "nats_credentials": "/home/me/parley/.parley/nats-auth/ops.json"}
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from parley.errors import ParleyError

FILE_NAME = "run.json"
VERSION = 1


@dataclass(frozen=True)
class Process:
    name: str  # node1, archiver, archiver-2, nats-1, …
    role: str  # node, api, discovery, archiver, presence, pusher, nats, cassandra
    pid: int
    port: int  # the port it serves (a worker's health/metrics port; NATS: its client port)
    url: str  # its HTTP base (``http://host:port``) or, for NATS, its ``nats://`` URL
    restarts: int = 0


@dataclass(frozen=True)
class RunInfo:
    up_pid: int
    started: float
    urls: dict[str, str]  # chat, api, discovery, cluster_page, nats (a comma list with several servers)
    processes: list[Process] = field(default_factory=list)
    version: int = VERSION
    tls_ca: str = ""  # ``parley up --tls``: the CA that signed its certificates (clients trust it)
    nats_credentials: str = ""  # the ``ops`` user's file (parley.tools.busauth): what operators' commands use

    def url(self, key: str) -> str:
        try:
            return self.urls[key]
        except KeyError:
            raise ParleyError(f"run.json names no {key} URL", code="bad_run_file") from None

    def of_role(self, role: str) -> list[Process]:
        return [p for p in self.processes if p.role == role]


def path_in(run_dir: Path | str) -> Path:
    return Path(run_dir) / FILE_NAME


def encode(info: RunInfo) -> str:
    return json.dumps(asdict(info), indent=2, sort_keys=True) + "\n"


def decode(text: str) -> RunInfo:
    try:
        raw = json.loads(text)
        if raw.get("version") != VERSION:
            raise ValueError(f"version {raw.get('version')!r}, expected {VERSION}")
        return RunInfo(up_pid=int(raw["up_pid"]), started=float(raw["started"]),
                       urls={str(k): str(v) for k, v in raw["urls"].items()},
                       processes=[Process(**p) for p in raw.get("processes", [])], tls_ca=str(raw.get("tls_ca", "")),
                       nats_credentials=str(raw.get("nats_credentials", "")))
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ParleyError(f"run.json is not readable: {err}", code="bad_run_file") from None


def write(run_dir: Path | str, info: RunInfo) -> Path:
    """Atomically replace ``<run_dir>/run.json`` (mode 0600: it names PIDs and ports, nothing secret, but it
    is the operator's file)."""
    target = path_in(run_dir)
    fd, tmp = tempfile.mkstemp(prefix=".run.", suffix=".json", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(encode(info))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def read(run_dir: Path | str) -> RunInfo | None:
    """The cluster ``parley up`` runs from this run dir; None when there is no file (nothing started here)
    or when the ``parley up`` that wrote it is gone (a stale file after a kill -9)."""
    target = path_in(run_dir)
    try:
        info = decode(target.read_text())
    except FileNotFoundError:
        return None
    return info if _alive(info.up_pid) else None


def remove(run_dir: Path | str) -> None:
    path_in(run_dir).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
