"""A JetStream cluster of N nats-servers on loopback: ``parley up --nats-servers 3``, the tests' cluster
fixture and the leader-kill benchmark.

Every member gets a config rendered from one template (``natsserver.cluster_config``: its name, client
and route ports, its own store under ``<root>/nats/<name>``, routes to every member) and its log in
``<root>/logs/<name>.log``. ``start`` returns once every member accepts clients and JetStream answers
(a meta leader was elected), so the Parley processes started next can create their streams.

``kill`` is SIGKILL (a crash); ``lame_duck`` is the planned stop: SIGUSR2 (what ``nats-server --signal
ldm=<pid>`` sends), the member moves its clients to the others and exits; ``start_member`` brings a
stopped member back with the same name, ports and store, so it rejoins and catches up.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nats
import nats.aio.client
from parley.tools import natsserver

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
                 connect: dict[str, object] | None = None) -> None:
        """``ports``: the client ports (default: free ones); ``extra``: config text every member gets
        (authorization, tls); ``connect``: nats-py options to check readiness with (credentials)."""
        self.root, self.preexec_fn, self.connect = root, preexec_fn, connect or {}
        logs = root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        client_ports = ports or [free_port() for _ in range(count)]
        route_ports = [free_port() for _ in range(count)]
        self.members = []
        for i in range(count):
            name = f"nats-{i + 1}"
            store = root / "nats" / name
            store.mkdir(parents=True, exist_ok=True)
            config = root / "nats" / f"{name}.conf"
            config.write_text(natsserver.cluster_config(name, client_ports[i], route_ports[i], store, route_ports,
                                                        extra=extra))
            self.members.append(Member(name, client_ports[i], route_ports[i], config, logs / f"{name}.log"))

    @property
    def urls(self) -> list[str]:
        return [m.url for m in self.members]

    def url_list(self) -> str:
        """``PARLEY_NATS_URL``: every member, comma-separated."""
        return ",".join(self.urls)

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)

    def start(self, timeout: float = 30.0) -> None:
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

    def procs(self) -> dict[str, subprocess.Popen[bytes]]:
        return {m.name: m.proc for m in self.members if m.proc is not None}
