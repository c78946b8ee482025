"""A JetStream cluster of N nats-servers on loopback: ``parley up --nats-servers 3``, the tests' cluster
fixture and the leader-kill benchmark.

Every member gets a config rendered from one template (``natsserver.cluster_config``: its name, client
and route ports, its own store under ``<root>/nats/<name>``, routes to every member) and its log in
``<root>/logs/<name>.log``. ``start`` returns once every member accepts clients and JetStream answers
(a meta leader was elected), so the Parley processes started next can create their streams.

``kill`` is SIGKILL (a crash); ``lame_duck`` is the planned stop: SIGUSR2 (what ``nats-server --signal
ldm=<pid>`` sends), the member moves its clients to the others and exits; ``start_member`` brings a
stopped member back with the same name, ports and store, so it rejoins and catches up.

Two regions: ``NatsServers(root, 1, free_port, regions=["eu", "us"])`` starts a supercluster, one
JetStream cluster per region (``count`` servers each, named ``nats-eu-1``, …; cluster name = region,
routes within the region, ``server_tags: ["region:<region>"]`` for stream placement), joined by gateways.
Every member's gateway port sits behind a ``tcpproxy.Proxy`` of its own and the member advertises the
proxy's port, so every gateway connection between regions runs through a proxy: ``cut_gateways`` cuts
them all (the WAN link is down), ``heal_gateways`` lets them reconnect, ``gateway_delay_s`` slows them.
The JetStream meta group spans both regions, so while cut it has no quorum (no new consumers or streams);
streams in each region keep taking their own region's publishes.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nats
import nats.aio.client
from parley.tools import busauth, natsserver
from parley.tools.localca import TlsFiles
from parley.tools.natstls import client_block, link_block
from parley.tools.tcpproxy import Proxy

from parley.errors import ParleyError

HOST = "127.0.0.1"


@dataclass
class Member:
    name: str
    port: int
    cluster_port: int
    config: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    region: str | None = None
    gateway: Proxy | None = None  # in front of the member's gateway port (a supercluster only)

    @property
    def url(self) -> str:
        return f"nats://{HOST}:{self.port}"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


async def _quiet(err: Exception) -> None:
    pass  # members still starting: not worth nats-py's default traceback


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) == 0


async def _jetstream_answers(urls: list[str], connect: dict[str, object]) -> bool:
    try:
        nc = await nats.connect(servers=urls, connect_timeout=1, max_reconnect_attempts=0, error_cb=_quiet, **connect)
    except Exception:
        return False
    try:
        await nc.jetstream().account_info()
        return True
    except Exception:
        return False
    finally:
        await nc.close()


class NatsServers:
    def __init__(self, root: Path, count: int, free_port: Callable[[], int], *, ports: list[int] | None = None,
                 extra: str = "", preexec_fn: Callable[[], None] | None = None,
                 connect: dict[str, object] | None = None, regions: list[str] | None = None,
                 gateway_delay_s: float = 0.0, tls: TlsFiles | None = None, auth: bool = True) -> None:
        """``ports``: the client ports (default: free ones); ``extra``: config text every member gets
        (tls); ``connect``: nats-py options to check readiness with (default: the ``system`` user);
        ``regions``: a supercluster of one cluster per region, ``count`` servers each, whose gateway
        links add ``gateway_delay_s`` each way; ``tls``: TLS on the client ports, routes and gateways
        (``natstls``), readiness checked over it. ``auth`` (the default): the run dir's users
        (``parley.tools.busauth``) for clients, routes and gateways; unauthenticated clients are refused."""
        self.auth = busauth.ensure(root) if auth else None
        extra = (self.auth.authorization() if self.auth else "") + extra
        self.root, self.preexec_fn = root, preexec_fn
        self.connect: dict[str, object] = connect or dict(self.auth.connect_options() if self.auth else {})
        self.tls = tls
        if tls is not None:
            extra += client_block(tls)
            self.connect = {"tls": ssl.create_default_context(cafile=tls.ca)} | self.connect
        self.regions = list(regions or [])
        (root / "logs").mkdir(parents=True, exist_ok=True)
        total = count * max(1, len(self.regions))
        client_ports = ports or [free_port() for _ in range(total)]
        if self.regions:
            self.members = self._regional(count, free_port, client_ports, extra, gateway_delay_s)
        else:
            route_ports = [free_port() for _ in range(count)]
            self.members = [self._member(f"nats-{i + 1}", client_ports[i], route_ports[i], route_ports, extra=extra)
                            for i in range(count)]

    def _member(self, name: str, port: int, route_port: int, route_ports: list[int], *, extra: str,
                cluster: str = "parley", tags: list[str] | None = None, gateway: str = "") -> Member:
        store = self.root / "nats" / name
        store.mkdir(parents=True, exist_ok=True)
        path = self.root / "nats" / f"{name}.conf"
        busauth.write_private(path, natsserver.cluster_config(
            name, port, route_port, store, route_ports, cluster=cluster, tags=tags, gateway=gateway, extra=extra,
            route_auth=self.auth.link("route") if self.auth else None, route_tls=link_block(self.tls)))
        return Member(name, port, route_port, path, self.root / "logs" / f"{name}.log")

    def _regional(self, count: int, free_port: Callable[[], int], client_ports: list[int], extra: str,
                  delay_s: float) -> list[Member]:
        """Ports first (every member's gateway config names every proxy), then the configs."""
        route = {r: [free_port() for _ in range(count)] for r in self.regions}
        gateway = {r: [free_port() for _ in range(count)] for r in self.regions}
        proxies = {r: [Proxy(p, delay_s=delay_s, port=free_port()) for p in gateway[r]] for r in self.regions}
        members = []
        for k, region in enumerate(self.regions):
            remotes = {o: [p.port for p in proxies[o]] for o in self.regions if o != region}
            for i in range(count):
                block = natsserver.gateway_config(region, gateway[region][i], proxies[region][i].port, remotes,
                                                  self.auth.link("gateway") if self.auth else None,
                                                  tls=link_block(self.tls))
                m = self._member(f"nats-{region}-{i + 1}", client_ports[k * count + i], route[region][i],
                                 route[region], cluster=region, tags=[f"region:{region}"], gateway=block,
                                 extra=extra)
                m.region, m.gateway = region, proxies[region][i]
                members.append(m)
        return members

    @property
    def urls(self) -> list[str]:
        return [m.url for m in self.members]

    def admin_connect_options(self, region: str | None = None) -> dict[str, object]:
        """nats-py ``connect`` arguments for every member (or one region's) as the ``system`` user."""
        return {"servers": self.urls if region is None else self.urls_of(region), **self.connect}

    def urls_of(self, region: str) -> list[str]:
        """The client URLs of one region's members."""
        if region not in self.regions:
            raise ValueError(f"no region {region!r} (regions: {self.regions})")
        return [m.url for m in self.members if m.region == region]

    def url_list(self, region: str | None = None) -> str:
        """``PARLEY_NATS_URL``: every member (or one region's), comma-separated."""
        return ",".join(self.urls if region is None else self.urls_of(region))

    def _proxies(self) -> list[Proxy]:
        return [m.gateway for m in self.members if m.gateway is not None]

    def cut_gateways(self) -> None:
        """The link between the regions goes down: every gateway connection is aborted and refused."""
        for p in self._proxies():
            p.cut()

    def heal_gateways(self) -> None:
        """The link is back: the gateways reconnect on their own (within a second or two)."""
        for p in self._proxies():
            p.heal()

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)

    def start(self, timeout: float = 30.0) -> None:
        for p in self._proxies():
            p.start()
        for m in self.members:
            self._spawn(m)
        for m in self.members:
            self._wait(m, lambda m=m: _accepts(m.port), "did not open its port", timeout)  # type: ignore[misc]
        self.wait_jetstream(timeout)

    def wait_jetstream(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if asyncio.run(_jetstream_answers(self.urls, self.connect)):
                return
            time.sleep(0.2)
        raise ParleyError(f"the NATS cluster elected no JetStream leader in {timeout:.0f}s; see {self.root}/logs",
                          code="start_failed")

    def _spawn(self, m: Member) -> None:
        m.proc = natsserver.start_with(m.config, m.log, self.preexec_fn)

    def _wait(self, m: Member, ready: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not m.running():
                raise ParleyError(f"{m.name} exited at start-up; see {m.log}", code="start_failed")
            if ready():
                return
            time.sleep(0.05)
        raise ParleyError(f"{m.name} {what} in {timeout:.0f}s; see {m.log}", code="start_failed")

    def start_member(self, name: str, timeout: float = 30.0) -> None:
        """Start a stopped member again (same name, ports, store): it rejoins and catches up."""
        m = self.member(name)
        self._spawn(m)
        self._wait(m, lambda: _accepts(m.port), "did not open its port", timeout)

    def spawn_member(self, name: str) -> None:
        """Start a stopped member again without waiting for it (``parley up``'s supervision)."""
        self._spawn(self.member(name))

    def kill(self, name: str) -> None:
        """SIGKILL: a crash, no lame duck, no leader hand-off."""
        m = self.member(name)
        assert m.proc is not None
        m.proc.kill()
        m.proc.wait()

    def lame_duck(self, name: str, timeout: float = 60.0) -> None:
        """The planned stop: SIGUSR2 puts the member in lame-duck mode; it exits when its clients moved."""
        m = self.member(name)
        assert m.proc is not None
        m.proc.send_signal(signal.SIGUSR2)
        try:
            m.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            m.proc.kill()
            m.proc.wait()

    async def planned_restart(self, name: str, nc: nats.aio.client.Client) -> list[str]:
        """A planned restart of one member: its streams' leaders step down (``busctl.hand_over``), it stops
        in lame-duck mode, and starts again. The streams it led."""
        from parley.tools.busctl import hand_over

        led = await hand_over(nc, name)
        await asyncio.get_running_loop().run_in_executor(None, self.lame_duck, name)
        await asyncio.get_running_loop().run_in_executor(None, self.start_member, name)
        return led

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every member (the whole cluster goes: no lame duck, nobody to hand clients to)."""
        for m in self.members:
            if m.running():
                assert m.proc is not None
                m.proc.send_signal(signal.SIGINT)
        for m in self.members:
            if m.proc is not None:
                try:
                    m.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    m.proc.kill()
                    m.proc.wait()
        for p in self._proxies():
            p.close()

    def procs(self) -> dict[str, subprocess.Popen[bytes]]:
        return {m.name: m.proc for m in self.members if m.proc is not None}
