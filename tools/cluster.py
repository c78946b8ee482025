"""The cluster launcher: nats-server and every Parley role as a child process, each with a handle.

``parley up``, the tests' ``cluster`` fixture and every benchmark start clusters through ``Cluster``:
nats-server (from the wheel, JetStream under ``<root>/nats``) first, then discovery, archiver,
presence, [pusher], API and the edge nodes, each ``python -m parley <role>`` with its output in
``<root>/logs/<name>.log``. A role has started when its ``/readyz`` answers 200 (nats-server: when its
port accepts); one that exits first fails the start with a ``ParleyError`` naming its log. Stopping is
SIGINT, then SIGKILL after a timeout, in reverse start order.

Two ways to build one: ``Cluster(root, nodes, **overrides)`` is a scratch cluster (every port free and
chosen here, a fixed secret, test-speed timings, cheap Argon2, limits raised; ``overrides`` are ``Settings`` fields);
``Cluster.configured(root, settings, node_ports)`` runs settings made elsewhere (``parley up``: its
ports, run dir and secret). ``free_port`` never hands out a port a Parley process listens on by
default, so a scratch cluster cannot collide with a ``parley up`` on the defaults.

``nats_servers=3`` (a scratch cluster) or a ``NatsServers`` given to ``configured`` (``parley up
--nats-servers 3``): a JetStream cluster (``parley.tools.natscluster``) instead of one nats-server;
every role gets all its URLs, and ``nats_servers`` is the handle to kill, lame-duck or restart members.

The bus is authenticated (``parley.tools.busauth``, ADR 0013): the run dir's users go into every server's
config, each role is spawned with its own role's user (``PARLEY_NATS_USER``/``PASSWORD``) and
``settings`` (what tests and tools connect with, ``admin_connect_options``) carry the ``system`` user.

``regions=("eu", "us")``: a NATS supercluster, one cluster per region joined by gateways (through TCP
proxies, so a test can cut the link; ``gateway_delay_s`` adds that one-way delay on every gateway link),
``PARLEY_REGIONS`` giving each region ``shards`` shards (default 2).
Node ``i`` runs in ``regions[i % len(regions)]``; each region gets its own API (homing the conversations
it opens in its region's shards) and archiver; discovery and presence run in the first region, next to
the KV buckets. Every process is given its own region's NATS URLs.

``tls=True`` (a scratch cluster) or ``tls=`` a ``TlsFiles`` given to ``configured`` (``parley up --tls``):
TLS everywhere the certificate can go (docs/adr/0014-tls.md): nats-server's client port, routes and
gateways (``natstls``), the nodes (wss), the API and discovery (https), every process given the CA
(``PARLEY_NATS_TLS_CA``, ``PARLEY_TLS_CA``). A scratch cluster makes its CA in ``<root>/tls``
(``localca``); ``tls_context`` is the client context that trusts it (tests, tools).
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from parley.tools import busauth, localca, natsserver, natstls
from parley.tools.localca import TlsFiles
from parley.tools.natscluster import NatsServers

from parley.bus.connection import connect_options
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
TLS_ROLES = ("node", "api", "discovery")  # what serves TLS when it is on; workers' health ports stay plain


def _ephemeral_low() -> int:
    """The lowest port the kernel hands to outgoing connections (Linux; 32768 elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_given: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on now, never one of Parley's defaults, never one handed out before
    in this process, and below the kernel's ephemeral range: a port from ``bind(0)`` can be taken by any
    outgoing connection before the role that was given it binds (seen in CI: a node's port taken)."""
    top = min(_ephemeral_low(), 65536) - 16  # room for a launcher's port + i
    for _ in range(500):
        port = random.randrange(20000, top) if top > 20000 else 0
        if port in DEFAULT_PORTS or port in _given:
            continue
        with socket.socket() as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            port = int(s.getsockname()[1])
        _given.add(port)
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


def wait_ready(url: str, child: Child, timeout: float = READY_TIMEOUT_S, context: ssl.SSLContext | None = None) -> None:
    def ready() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1, context=context) as resp:
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


FLOOD_OFF: dict[str, object] = dict(flood_rate_messages=1_000_000, flood_new_rate_messages=1_000_000,
                                    flood_new_account_s=0.0, flood_duplicate_similarity=1.5,
                                    flood_links_per_message=1_000_000, flood_links_per_window=1_000_000)


def flood_defaults() -> dict[str, object]:
    """The settings ``FLOOD_OFF`` changes, at their defaults: for the tests of the flood rules."""
    return {name: getattr(Settings(), name) for name in FLOOD_OFF}


def scratch_settings(root: Path, nats_port: int, **overrides: object) -> Settings:
    ports = {name: free_port() for name in ROLE_PORTS}
    scheme = "https" if overrides.get("tls_cert") else "http"
    defaults: dict[str, object] = dict(
        secret=Secret(SECRET),
        run_dir=str(root),
        nats_url=f"nats://{HOST}:{nats_port}",
        sqlite_path=str(root / "parley.db"),
        **ports,
        discovery_url=f"{scheme}://{HOST}:{ports['discovery_port']}",
        presence_beat_s=0.5,
        presence_timeout_s=3.0,
        node_ttl_s=3.0,
        node_beat_s=0.5,
        rate_per_s=200.0,
        rate_burst=600,
        # frame budgets and HTTP limits out of the way (every test client is 127.0.0.1); the tests of the
        # limits start a node or an API of their own at 1 (``start_extra_node``, ``start_extra_api``)
        limits_scale=10_000.0,
        hash_wait_s=30.0,  # hundreds of logins at once on 2 cores wait for Argon2 rather than get 503
        hello_timeout_s=2.0,
        # the same Argon2id code path at a lower cost: tests and benchmarks make hundreds of accounts
        argon2_time_cost=1,
        argon2_memory_kib=8192,
        # live rooms' flood rules out of the way too (every test account is minutes old and tests send fast);
        # the flood tests start a node of their own at the defaults (tests/integration/test_live_flood.py)
        **FLOOD_OFF,
    )
    return Settings(**(defaults | overrides))  # type: ignore[arg-type]


class Cluster:
    def __init__(self, root: Path, nodes: int = 2, tie_to_parent: bool = False, **overrides: object) -> None:
        """A scratch cluster in ``root``; ``tie_to_parent``: its processes get SIGTERM when the thread that
        started them dies (benchmarks: no cluster outlives a killed run). ``nats_servers`` > 1: a JetStream
        cluster of that many servers, every process given all their URLs, streams and buckets R3."""
        servers, nats_servers = None, overrides.pop("nats_servers", 1)
        regions: tuple[str, ...] = tuple(overrides.pop("regions", ()))  # type: ignore[arg-type]
        gateway_delay_s = overrides.pop("gateway_delay_s", 0.0)
        assert isinstance(nats_servers, int) and isinstance(gateway_delay_s, int | float)
        tls = localca.ensure(root / "tls") if overrides.pop("tls", False) else None
        if tls is not None:
            overrides = {"tls_cert": tls.cert, "tls_key": tls.key, "tls_ca": tls.ca, "nats_tls_ca": tls.ca} | overrides
        if regions:
            servers = NatsServers(root, nats_servers, free_port, regions=list(regions),
                                  preexec_fn=die_with_parent if tie_to_parent else None,
                                  gateway_delay_s=float(gateway_delay_s), tls=tls)
            per_region = overrides.pop("shards", 2)
            overrides = {"regions": ",".join(f"{r}:{per_region}" for r in regions), "region": regions[0],
                         "nats_url": servers.url_list(regions[0]),
                         "stream_replicas": min(3, nats_servers)} | overrides
        elif nats_servers > 1:
            servers = NatsServers(root, nats_servers, free_port,
                                  preexec_fn=die_with_parent if tie_to_parent else None, tls=tls)
            overrides = {"nats_url": servers.url_list(), "stream_replicas": min(3, nats_servers)} | overrides
        nats_port = free_port()
        self._adopt(root, scratch_settings(root, nats_port, **overrides), [free_port() for _ in range(nodes)],
                    tie_to_parent, servers, tls)
        self.scratch = True

    @classmethod
    def configured(cls, root: Path, settings: Settings, node_ports: list[int],
                   nats_servers: NatsServers | None = None, tls: TlsFiles | None = None) -> Cluster:
        cluster = cls.__new__(cls)
        cluster._adopt(root, settings, node_ports, tie_to_parent=False, servers=nats_servers, tls=tls)
        return cluster

    def _adopt(self, root: Path, settings: Settings, node_ports: list[int], tie_to_parent: bool,
               servers: NatsServers | None = None, tls: TlsFiles | None = None) -> None:
        self.root = root
        self.tls = tls  # nats-server's certificate and key, and the CA every process and client trusts
        self.tls_context = ssl.create_default_context(cafile=tls.ca) if tls else None
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.auth = busauth.ensure(root)
        self.settings = settings.replace(**self.auth.settings_for(busauth.ADMIN))
        self.nats_servers = servers  # a JetStream cluster (None: one nats-server, ``nats``)
        self.nats_port = int(settings.nats_servers()[0].rsplit(":", 1)[1])
        self.regions: list[str] = list(settings.layout().names)
        self.node_ports = node_ports
        self.tie_to_parent = tie_to_parent
        self.ready_timeout_s = READY_TIMEOUT_S
        self.nats: Child | None = None
        self.roles: dict[str, Child] = {}
        self.scratch = False

    def scheme(self, role: str = "api") -> str:
        """``https`` for a role that serves TLS in this cluster, else ``http``."""
        return "https" if self.tls is not None and role in TLS_ROLES else "http"

    @property
    def ws_scheme(self) -> str:
        return "wss" if self.tls is not None else "ws"

    @property
    def api_url(self) -> str:
        return f"{self.scheme()}://{HOST}:{self.settings.api_port}"

    @property
    def discovery_url(self) -> str:
        return self.settings.discovery_url

    @property
    def nats_url(self) -> str:
        return self.settings.nats_url

    def admin_connect_options(self) -> dict[str, object]:
        """nats-py ``connect`` arguments for the cluster's NATS as the ``system`` user (tests, benchmarks)."""
        return connect_options(self.settings)

    def admin_url(self) -> str:
        """The first NATS URL with the ``system`` user in it (a test's own server: one string that gets in)."""
        user, password = self.settings.nats_user, self.settings.nats_password.reveal()
        return self.settings.nats_servers()[0].replace("://", f"://{user}:{password}@", 1)

    def node_url(self, i: int) -> str:
        return f"{self.ws_scheme}://{HOST}:{self.node_ports[i]}/ws"

    def region_settings(self, region: str) -> Settings:
        """The settings of a process running in ``region``: its region and its region's NATS servers."""
        assert self.nats_servers is not None
        return self.settings.replace(region=region, nats_url=self.nats_servers.url_list(region))

    def node_region(self, i: int) -> str:
        return self.regions[i % len(self.regions)] if self.regions else self.settings.region

    def api_url_of(self, region: str) -> str:
        """The API of ``region`` (the first region's is ``api_url``)."""
        if not self.regions or region == self.regions[0]:
            return self.api_url
        child = self.roles[f"api-{region}"]
        assert child.settings is not None
        return f"{self.scheme()}://{HOST}:{child.settings.api_port}"

    def _start_in_region(self, role: str, region: str, j: int) -> None:
        """``role`` (an API, archiver or pusher) of a region after the first: ``<role>-<region>``."""
        base = int(getattr(self.settings, f"{role}_port"))
        port = free_port() if self.scratch else base + 1000 * j  # clear of nodes and extra workers
        settings = self.region_settings(region).replace(**{f"{role}_port": port})
        self._start_role(f"{role}-{region}", role, settings, port)

    def start(self, pusher: bool = False, archivers: int = 1, pushers: int = 1, presence_workers: int = 1,
              after_nats: Callable[[], object] | None = None) -> None:
        """Everything; ``pushers`` counts only with ``pusher`` (it needs FCM credentials). ``after_nats`` runs once
        NATS answers, before any role starts (``parley up`` brings a kept run dir's bus up to date there)."""
        self.start_nats()
        if after_nats is not None:
            after_nats()
        self._start_role("discovery", "discovery", self.settings, self.settings.discovery_port)
        for i in range(archivers):
            self.start_archiver(i)
        for i in range(presence_workers):
            self.start_presence(i)
        for i in range(pushers if pusher else 0):
            self.start_pusher(i)
        self._start_role("api", "api", self.settings, self.settings.api_port)
        for j, region in enumerate(self.regions[1:], start=1):  # the first region's are the ones above
            for role in ("archiver", "api", *(("pusher",) if pusher else ())):
                self._start_in_region(role, region, j)
        for i in range(len(self.node_ports)):
            self.start_node(i)
        self.wait_placeable()

    def wait_placeable(self, timeout: float | None = None) -> None:
        """Until discovery lists every started node as eligible: a node answers /readyz once it listens,
        but a client is only placed on it once its registry entry reached discovery's watch (seen in CI:
        logins right after the start answered no_node while discovery was still setting up its watch)."""
        want = sum(1 for c in self.roles.values() if c.role == "node")
        if not want:
            return
        deadline = time.monotonic() + (timeout or self.ready_timeout_s)
        seen = -1
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.discovery_url + "/v1/nodes", timeout=2,
                                            context=self.tls_context) as resp:
                    seen = sum(1 for n in json.loads(resp.read())["nodes"] if n["eligible"])
            except OSError:
                seen = -1
            if seen >= want:
                return
            time.sleep(0.1)
        raise ParleyError(f"discovery lists {max(seen, 0)} of {want} nodes as eligible after "
                          f"{timeout or self.ready_timeout_s:.0f}s; see {self.logs}", code="start_failed")

    def start_archiver(self, i: int = 0) -> str:
        return self._start_worker("archiver", i)

    def start_pusher(self, i: int = 0) -> str:
        return self._start_worker("pusher", i)

    def start_presence(self, i: int = 0) -> str:
        return self._start_worker("presence", i)

    def _start_worker(self, role: str, i: int) -> str:
        """Worker ``i`` of a role: the first is named after the role and listens on the role's port; the
        others are ``<role>2``, ``<role>3``… on free ports (a scratch cluster) or the role's port + 100·i."""
        name = role if i == 0 else f"{role}{i + 1}"
        base = int(getattr(self.settings, f"{role}_port"))
        port = base if i == 0 else (free_port() if self.scratch else base + 100 * i)
        self._start_role(name, role, self.settings.replace(**{f"{role}_port": port}), port)
        return name

    def worker_port(self, name: str) -> int:
        """The port a role serves: a worker's health/metrics port (a node's: its WebSocket port)."""
        child = self.roles[name]
        assert child.settings is not None
        return int(getattr(child.settings, f"{child.role}_port"))

    def start_nats(self) -> None:
        if self.nats_servers is not None:
            self.nats_servers.start(max(self.ready_timeout_s, 30.0))
            return
        log = self.logs / "nats.log"
        proc = natsserver.start(self.nats_port, self.root / "nats", log,
                                preexec_fn=die_with_parent if self.tie_to_parent else None,
                                authorization=self.auth.authorization(),
                                extra=natstls.client_block(self.tls))
        self.nats = Child("nats", proc, log)
        wait_port(self.nats_port, self.nats, self.ready_timeout_s)

    def stop_nats(self) -> None:
        if self.nats_servers is not None:
            self.nats_servers.stop()
            return
        assert self.nats is not None
        stop_all([self.nats])

    def node_settings(self, i: int) -> Settings:
        settings = self.region_settings(self.node_region(i)) if self.regions else self.settings
        return settings.replace(node_id=f"node{i + 1}", node_port=self.node_ports[i])

    def start_node(self, i: int) -> None:
        self._start_role(f"node{i + 1}", "node", self.node_settings(i), self.node_ports[i])

    def start_extra_node(self, name: str, **overrides: object) -> str:
        """Another node with its own settings (e.g. short timeouts); returns its WebSocket URL."""
        port = free_port()
        settings = self.settings.replace(node_id=name, node_port=port, **overrides)
        self._start_role(name, "node", settings, port)
        return f"{self.ws_scheme}://{HOST}:{port}/ws"

    def start_extra_api(self, name: str, **overrides: object) -> str:
        """Another API process on the same NATS and store, with its own settings; returns its URL."""
        port = free_port()
        self._start_role(name, "api", self.settings.replace(api_port=port, **overrides), port)
        return f"{self.scheme()}://{HOST}:{port}"

    def restart(self, name: str) -> None:
        """Start a role that exited again, with the settings it had (``parley up`` after a drain)."""
        child = self.roles.pop(name)
        assert child.settings is not None
        self._start_role(name, child.role, child.settings, getattr(child.settings, f"{child.role}_port"))

    def respawn(self, name: str) -> Child | None:
        """Start an exited process again (nats-server or a cluster member included) with its settings, ports
        and store, without waiting for it to answer (``parley up``'s supervision: other exits are handled
        meanwhile). Its new handle; None for a NATS cluster member (``nats_servers`` has it)."""
        if self.nats is not None and name == self.nats.name:
            proc = natsserver.start(self.nats_port, self.root / "nats", self.nats.log,
                                    preexec_fn=die_with_parent if self.tie_to_parent else None,
                                    authorization=self.auth.authorization(),
                                    extra=natstls.client_block(self.tls))
            self.nats = Child(self.nats.name, proc, self.nats.log, "nats")
            return self.nats
        if name not in self.roles and self.nats_servers is not None:
            self.nats_servers.spawn_member(name)
            return None
        old = self.roles[name]
        assert old.settings is not None
        self.roles[name] = spawn(name, old.role, old.settings, self.logs, self.tie_to_parent)  # keeps its place
        return self.roles[name]

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
        settings = settings.replace(**self.auth.settings_for(role))  # its role's user on the bus
        child = spawn(name, role, settings, self.logs, self.tie_to_parent)
        self.roles[name] = child
        if port is not None:
            wait_ready(f"{self.scheme(role)}://{HOST}:{port}/readyz", child, self.ready_timeout_s, self.tls_context)

    def alive(self) -> dict[str, bool]:
        return {name: c.running() for name, c in self.roles.items()}

    def exited(self) -> list[Child]:
        """The processes that were started and have exited since (nats-server included)."""
        return [c for c in self.children() if not c.running()]

    def children(self) -> list[Child]:
        """Every process of the cluster, nats-server(s) first, in start order."""
        members = [Child(name, proc, self.logs / f"{name}.log")
                   for name, proc in (self.nats_servers.procs() if self.nats_servers else {}).items()]
        return [c for c in [self.nats] if c] + members + list(self.roles.values())

    def pids(self) -> dict[str, int]:
        """Process ids by name, nats-server as ``nats-server``: what a CPU meter samples."""
        return {("nats-server" if c is self.nats else c.name): c.pid for c in self.children() if c.running()}

    def shutdown(self) -> None:
        stop_all(list(self.roles.values()))
        self.roles.clear()
        if self.nats_servers is not None:
            self.nats_servers.stop()
        stop_all([c for c in [self.nats] if c])

    def log_text(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def errors_in_logs(self) -> list[str]:
        """Errors and tracebacks of the roles, and every permissions violation a server logged (``Publish
        Violation``, ``Subscription Violation``: a role used a subject ``parley.bus.permissions`` denies it)."""
        bad = []
        for path in self.logs.glob("*.log"):
            nats = path.name.startswith("nats")
            for line in path.read_text(errors="replace").splitlines():
                if (" Violation - " in line) if nats else (" ERROR " in line or line.startswith("Traceback")):
                    bad.append(f"{path.name}: {line}")
        return bad
