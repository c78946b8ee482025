"""A real Parley cluster for tests: nats-server from the wheel and every role as its own process.

Everything binds 127.0.0.1 on free ports and lives in a temp dir. Unlike ``parley up`` it keeps a
handle on each process, so tests can kill a node, restart it, or restart NATS.
"""

from __future__ import annotations

import signal
import socket
from pathlib import Path

from parley.tools import natsserver
from parley.tools.up import Child, spawn, stop_all, wait_port, wait_ready

from parley.settings import Secret, Settings

SECRET = "test-secret-0123456789abcdef0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    def __init__(self, root: Path, nodes: int = 2, **overrides: object) -> None:
        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.nats_port = free_port()
        self.node_ports = [free_port() for _ in range(nodes)]
        api_port, discovery_port, archiver_port, presence_port = free_port(), free_port(), free_port(), free_port()
        defaults: dict[str, object] = dict(
            secret=Secret(SECRET),
            nats_url=f"nats://127.0.0.1:{self.nats_port}",
            sqlite_path=str(root / "parley.db"),
            api_port=api_port,
            discovery_port=discovery_port,
            discovery_url=f"http://127.0.0.1:{discovery_port}",
            archiver_port=archiver_port,
            presence_port=presence_port,
            presence_beat_s=0.5,
            presence_timeout_s=3.0,
            node_ttl_s=3.0,
            node_beat_s=0.5,
            rate_per_s=200.0,
            rate_burst=600,
            hello_timeout_s=2.0,
            # the same Argon2id code path at a lower cost: tests make hundreds of accounts
            argon2_time_cost=1,
            argon2_memory_kib=8192,
        )
        defaults.update(overrides)
        self.settings = Settings(**defaults)  # type: ignore[arg-type]
        self.nats: Child | None = None
        self.roles: dict[str, Child] = {}

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.api_port}"

    @property
    def discovery_url(self) -> str:
        return self.settings.discovery_url

    def node_url(self, i: int) -> str:
        return f"ws://127.0.0.1:{self.node_ports[i]}/ws"

    def start(self) -> None:
        self.start_nats()
        self._start_role("discovery", "discovery", self.settings, self.settings.discovery_port)
        self.start_archiver()
        self.start_presence()
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
        self.nats = Child("nats", natsserver.start(self.nats_port, self.root / "nats", log), log)
        wait_port(self.nats_port, self.nats)

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
        return f"ws://127.0.0.1:{port}/ws"

    def kill(self, name: str) -> None:
        """SIGKILL: no goodbye, no registry cleanup, no cursor flush."""
        child = self.roles.pop(name)
        child.proc.send_signal(signal.SIGKILL)
        child.proc.wait()

    def terminate(self, name: str) -> None:
        """SIGTERM: a node drains (moves its clients, then exits); other roles stop."""
        self.roles[name].proc.send_signal(signal.SIGTERM)

    def wait_exit(self, name: str, timeout: float) -> int:
        """Wait for a role to exit by itself (e.g. after a drain); its exit status."""
        child = self.roles.pop(name)
        return child.proc.wait(timeout)

    def stop(self, name: str) -> None:
        stop_all([self.roles.pop(name)])

    def _start_role(self, name: str, role: str, settings: Settings, port: int | None) -> None:
        child = spawn(name, role, settings, self.logs)
        self.roles[name] = child
        if port is not None:
            wait_ready(f"http://127.0.0.1:{port}/readyz", child)

    def alive(self) -> dict[str, bool]:
        return {name: c.proc.poll() is None for name, c in self.roles.items()}

    def shutdown(self) -> None:
        stop_all([c for c in [self.nats] if c] + list(self.roles.values()))
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

