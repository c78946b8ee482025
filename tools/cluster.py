"""The cluster launcher: nats-server and every Parley role as a child process, each with a handle.

``parley up``, the tests' ``cluster`` fixture and every benchmark start clusters through ``Cluster``:
nats-server (from the wheel, JetStream under ``<root>/nats``) first, then discovery, archiver,
presence, [pusher], API and the edge nodes, each ``python -m parley <role>`` with its output in
``<root>/logs/<name>.log``. A role has started when its ``/readyz`` answers 200 (nats-server: when its
port accepts); one that exits first fails the start with a ``ParleyError`` naming its log. Stopping is
SIGINT, then SIGKILL after a timeout, in reverse start order.

Two ways to build one: ``Cluster(root, nodes, **overrides)`` is a scratch cluster (every port free and
chosen here, a fixed secret, test-speed timings, cheap Argon2; ``overrides`` are ``Settings`` fields);
``Cluster.configured(root, settings, node_ports)`` runs settings made elsewhere (``parley up``: its
ports, run dir and secret). ``free_port`` never hands out a port a Parley process listens on by
default, so a scratch cluster cannot collide with a ``parley up`` on the defaults.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from parley.tools import natsserver

from parley.errors import ParleyError
from parley.settings import Secret, Settings

SECRET = "test-secret-0123456789abcdef0123456789abcdef"
HOST = "127.0.0.1"
NATS_DEFAULT_PORT = 4222
DEFAULT_PORTS = frozenset({NATS_DEFAULT_PORT, *(
    int(f.default) for f in dataclasses.fields(Settings) if f.name.endswith("_port") and isinstance(f.default, int))})
# a scratch cluster's ports besides NATS and the nodes: every ``*_port`` setting a role listens on
ROLE_PORTS = tuple(f.name for f in dataclasses.fields(Settings)
                   if f.name.endswith("_port") and f.name not in ("node_port", "cassandra_port"))
# a deadline, not a figure: a role is ready in a second or two, but one that applies the Cassandra schema
# first can take tens of seconds on a loaded machine (20 s was too short for the archiver at load 18 on 2 cores)
READY_TIMEOUT_S = 60.0


def free_port() -> int:
    """A loopback port nothing listens on now, never one of Parley's defaults."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = int(s.getsockname()[1])
        if port not in DEFAULT_PORTS:
            return port
    raise ParleyError("no free loopback port", code="start_failed")


def die_with_parent() -> None:
    """In a child before exec: SIGTERM when the thread that started it exits (Linux PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    role: str = ""  # what ``python -m parley`` ran: started again with the same settings by ``restart``
    settings: Settings | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None


def spawn(name: str, role: str, settings: Settings, logs: Path, tie_to_parent: bool = False) -> Child:
    log = logs / f"{name}.log"
    env = {**os.environ, **settings.as_env()}
    with open(log, "ab") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen([sys.executable, "-m", "parley", role], env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=die_with_parent if tie_to_parent else None)
    return Child(name, proc, log, role, settings)


def _wait(child: Child, ready: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.running():
            raise ParleyError(f"{child.name} exited at start-up; see {child.log}", code="start_failed")
        if ready():
            return
        time.sleep(0.05)
    raise ParleyError(f"{child.name} {what} in {timeout:.0f}s; see {child.log}", code="start_failed")


def wait_port(port: int, child: Child, timeout: float = READY_TIMEOUT_S) -> None:
    def accepts() -> bool:
        with socket.socket() as s:
            return s.connect_ex((HOST, port)) == 0

    _wait(child, accepts, f"did not open port {port}", timeout)


def wait_ready(url: str, child: Child, timeout: float = READY_TIMEOUT_S) -> None:
    def ready() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    _wait(child, ready, f"not ready at {url}", timeout)


def stop_all(children: list[Child], timeout: float = 10) -> None:
    """Stop now, in reverse order: SIGINT (a node closes its connections with 1001 rather than draining
    them to the others, which are about to stop too), SIGKILL after ``timeout``."""
    for child in reversed(children):
        if child.running():
            child.proc.send_signal(signal.SIGINT)
            try:
                child.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()


def scratch_settings(root: Path, nats_port: int, **overrides: object) -> Settings:
    ports = {name: free_port() for name in ROLE_PORTS}
    defaults: dict[str, object] = dict(
        secret=Secret(SECRET),
        run_dir=str(root),
        nats_url=f"nats://{HOST}:{nats_port}",
        sqlite_path=str(root / "parley.db"),
        **ports,
        discovery_url=f"http://{HOST}:{ports['discovery_port']}",
        presence_beat_s=0.5,
        presence_timeout_s=3.0,
        node_ttl_s=3.0,
        node_beat_s=0.5,
        rate_per_s=200.0,
        rate_burst=600,
        hello_timeout_s=2.0,
        # the same Argon2id code path at a lower cost: tests and benchmarks make hundreds of accounts
        argon2_time_cost=1,
        argon2_memory_kib=8192,
    )
    return Settings(**(defaults | overrides))  # type: ignore[arg-type]


class Cluster:
    def __init__(self, root: Path, nodes: int = 2, tie_to_parent: bool = False, **overrides: object) -> None:
        """A scratch cluster in ``root``; ``tie_to_parent``: its processes get SIGTERM when the thread that
        started them dies (benchmarks: no cluster outlives a killed run)."""
        nats_port = free_port()
        self._adopt(root, scratch_settings(root, nats_port, **overrides), [free_port() for _ in range(nodes)],
                    tie_to_parent)

    @classmethod
    def configured(cls, root: Path, settings: Settings, node_ports: list[int]) -> Cluster:
        cluster = cls.__new__(cls)
        cluster._adopt(root, settings, node_ports, tie_to_parent=False)
        return cluster

    def _adopt(self, root: Path, settings: Settings, node_ports: list[int], tie_to_parent: bool) -> None:
        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.nats_port = int(settings.nats_url.rsplit(":", 1)[1])
        self.node_ports = node_ports
        self.tie_to_parent = tie_to_parent
        self.ready_timeout_s = READY_TIMEOUT_S
        self.nats: Child | None = None
        self.roles: dict[str, Child] = {}

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.settings.api_port}"

    @property
    def discovery_url(self) -> str:
        return self.settings.discovery_url

    @property
    def nats_url(self) -> str:
        return self.settings.nats_url

    def node_url(self, i: int) -> str:
        return f"ws://{HOST}:{self.node_ports[i]}/ws"

    def start(self, pusher: bool = False) -> None:
        self.start_nats()
        self._start_role("discovery", "discovery", self.settings, self.settings.discovery_port)
        self.start_archiver()
        self.start_presence()
        if pusher:
            self.start_pusher()
        self._start_role("api", "api", self.settings, self.settings.api_port)
        for i in range(len(self.node_ports)):
            self.start_node(i)

    def start_archiver(self) -> None:
        self._start_role("archiver", "archiver", self.settings, self.settings.archiver_port)

    def start_pusher(self) -> None:
        self._start_role("pusher", "pusher", self.settings, self.settings.pusher_port)

    def start_presence(self) -> None:
        self._start_role("presence", "presence", self.settings, self.settings.presence_port)

    def start_nats(self) -> None:
        log = self.logs / "nats.log"
        proc = natsserver.start(self.nats_port, self.root / "nats", log,
                                preexec_fn=die_with_parent if self.tie_to_parent else None)
        self.nats = Child("nats", proc, log)
        wait_port(self.nats_port, self.nats, self.ready_timeout_s)

    def stop_nats(self) -> None:
        assert self.nats is not None
        stop_all([self.nats])

    def node_settings(self, i: int) -> Settings:
        return self.settings.replace(node_id=f"node{i + 1}", node_port=self.node_ports[i])

    def start_node(self, i: int) -> None:
        self._start_role(f"node{i + 1}", "node", self.node_settings(i), self.node_ports[i])

    def start_extra_node(self, name: str, **overrides: object) -> str:
        """Another node with its own settings (e.g. short timeouts); returns its WebSocket URL."""
        port = free_port()
        settings = self.settings.replace(node_id=name, node_port=port, **overrides)
        self._start_role(name, "node", settings, port)
        return f"ws://{HOST}:{port}/ws"

    def restart(self, name: str) -> None:
        """Start a role that exited again, with the settings it had (``parley up`` after a drain)."""
        child = self.roles.pop(name)
        assert child.settings is not None
        self._start_role(name, child.role, child.settings, getattr(child.settings, f"{child.role}_port"))

    def kill(self, name: str) -> None:
        """SIGKILL: no goodbye, no registry cleanup, no cursor flush."""
        child = self.roles.pop(name)
        child.proc.send_signal(signal.SIGKILL)
        child.proc.wait()

    def terminate(self, name: str) -> None:
        """SIGTERM: a node drains (moves its clients, then exits); other roles stop."""
        self.roles[name].proc.send_signal(signal.SIGTERM)

    def wait_exit(self, name: str, timeout: float) -> int:
        """Wait for a role to exit by itself (e.g. after a drain); its exit status. One that does not stays
        in ``roles``, so the caller's cleanup (or ``shutdown``) still stops it."""
        code = self.roles[name].proc.wait(timeout)
        del self.roles[name]
        return code

    def stop(self, name: str) -> None:
        stop_all([self.roles.pop(name)])

    def _start_role(self, name: str, role: str, settings: Settings, port: int | None) -> None:
        child = spawn(name, role, settings, self.logs, self.tie_to_parent)
        self.roles[name] = child
        if port is not None:
            wait_ready(f"http://{HOST}:{port}/readyz", child, self.ready_timeout_s)

    def alive(self) -> dict[str, bool]:
        return {name: c.running() for name, c in self.roles.items()}

    def exited(self) -> list[Child]:
        """The processes that were started and have exited since (nats-server included)."""
        return [c for c in self.children() if not c.running()]

    def children(self) -> list[Child]:
        """Every process of the cluster, nats-server first, in start order."""
        return [c for c in [self.nats] if c] + list(self.roles.values())

    def pids(self) -> dict[str, int]:
        """Process ids by name, nats-server as ``nats-server``: what a CPU meter samples."""
        return {("nats-server" if c is self.nats else c.name): c.pid for c in self.children() if c.running()}

    def shutdown(self) -> None:
        stop_all(self.children())
        self.roles.clear()

    def log_text(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def errors_in_logs(self) -> list[str]:
        bad = []
        for path in self.logs.glob("*.log"):
            if path.name == "nats.log":
                continue
            for line in path.read_text(errors="replace").splitlines():
                if " ERROR " in line or line.startswith("Traceback"):
                    bad.append(f"{path.name}: {line}")
        return bad
