"""``parley up`` keeping its cluster running: a process that exits is started again, and ``run.json`` says
what runs where.

``watch`` polls every process of the cluster (nats-server or each member of a NATS cluster, every role,
and a Cassandra that ``parley up`` started) until Ctrl-C/SIGTERM. One that exited is started again with
the same settings, ports and store, after the backoff ``parley.tools.restarts`` decides (a node that
drained and exited 0: at once); each exit and each restart is a line on stdout naming the process, how
it ended, its restart count and its log. One that keeps crashing stops ``parley up`` (exit 1) with a
message naming it and its log. Processes don't wait for each other: nats-py reconnects by itself, and
a restart does not block the loop (it does not wait for the process to answer).

``<run dir>/run.json`` (``parley.tools.runfile``, from ``run_info``) is written by ``parley up`` once
everything answers, by ``watch`` again after every restart (new PID, restarts + 1), and removed by
``parley up`` when it stops.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from parley.tools import busauth, cassandra_runner, runfile
from parley.tools.cluster import HOST, Child, Cluster
from parley.tools.restarts import GiveUp, Policy, Restart, Supervision, describe_exit

from parley.errors import ParleyError

POLL_S = 0.2
CASSANDRA = "cassandra"


@dataclass
class Supervised:
    """What ``parley up`` runs: the cluster, and the directory of a local Cassandra it started (if any)."""

    cluster: Cluster
    cassandra_dir: Path | None = None
    started: float = field(default_factory=time.time)

    @property
    def run_dir(self) -> Path:
        return self.cluster.root

    def processes(self) -> dict[str, Child | None]:
        """Every process by name; Cassandra has no ``Child`` (the runner tracks it by its pid file)."""
        found: dict[str, Child | None] = {c.name: c for c in self.cluster.children()}
        return found | ({CASSANDRA: None} if self.cassandra_dir is not None else {})

    def has_exited(self, child: Child | None) -> bool:
        if child is None:
            assert self.cassandra_dir is not None
            return cassandra_runner.running_pid(self.cassandra_dir) is None
        return not child.running()

    def log_of(self, name: str, child: Child | None) -> Path:
        if child is None:
            assert self.cassandra_dir is not None
            return self.cassandra_dir / "logs" / "system.log"
        return child.log

    def respawn(self, name: str) -> None:
        if name == CASSANDRA:
            assert self.cassandra_dir is not None
            settings = self.cluster.settings
            storage = cassandra_runner.read_instance(self.cassandra_dir).storage_port
            cassandra_runner.start(self.cassandra_dir, cql_port=settings.cassandra_port, storage_port=storage,
                                   heap=settings.cassandra_heap, wait=False, tie_to_parent=True)
        else:
            self.cluster.respawn(name)

    def pid_of(self, name: str, child: Child | None) -> int:
        if child is None:
            assert self.cassandra_dir is not None
            running = cassandra_runner.running_pid(self.cassandra_dir)
            return running or cassandra_runner.read_instance(self.cassandra_dir).pid  # gone: the last one
        return child.pid


def process_entry(sup: Supervised, name: str, child: Child | None, restarts: int) -> runfile.Process:
    cluster, pid = sup.cluster, sup.pid_of(name, child)
    if child is None:
        port = cluster.settings.cassandra_port
        return runfile.Process(name, CASSANDRA, pid, port, f"cql://{HOST}:{port}", restarts)
    if name in cluster.roles:
        port = cluster.worker_port(name)
        role = cluster.roles[name].role
        return runfile.Process(name, role, pid, port, f"{cluster.scheme(role)}://{HOST}:{port}", restarts)
    if cluster.nats_servers is not None and child is not cluster.nats:
        member = cluster.nats_servers.member(name)
        return runfile.Process(name, "nats", pid, member.port, member.url, restarts)
    return runfile.Process(name, "nats", pid, cluster.nats_port, f"nats://{HOST}:{cluster.nats_port}", restarts)


def run_info(sup: Supervised, restarts: Supervision | None = None) -> runfile.RunInfo:
    """What run.json says: the URLs, and every process with its port, PID and restarts (none yet without
    ``restarts``)."""
    cluster = sup.cluster
    urls = {"chat": f"{cluster.api_url}/", "api": cluster.api_url, "discovery": cluster.discovery_url,
            "cluster_page": f"{cluster.discovery_url}/cluster", "nats": cluster.nats_url}
    processes = [process_entry(sup, name, child, restarts.restarts(name) if restarts else 0)
                 for name, child in sup.processes().items()]
    return runfile.RunInfo(up_pid=os.getpid(), started=sup.started, urls=urls, processes=processes,
                           tls_ca=cluster.tls.ca if cluster.tls else "",
                           nats_credentials=str(cluster.auth.file(busauth.OPS).resolve()))


def say(line: str) -> None:
    print(f"parley up: {line}", flush=True)


def on_exit(sup: Supervised, restarts: Supervision, name: str, child: Child | None, now: float) -> bool:
    """Decide about a process that exited; False when it keeps crashing (the message is printed)."""
    status = None if child is None else child.proc.returncode  # Cassandra's is the runner's, not ours
    how = "exited" if child is None else describe_exit(status)
    planned = child is not None and child.role == "node" and status == 0  # drained: its clients moved
    decision = restarts.exited(name, now, planned)
    log = sup.log_of(name, child)
    if isinstance(decision, GiveUp):
        print(f"parley up: {name} keeps crashing ({decision.crashes} exits in {decision.window_s:.0f} s, the last: "
              f"{how}); stopping the cluster. See its log: {log}", file=sys.stderr, flush=True)
        return False
    assert isinstance(decision, Restart)
    why = "drained and stopped" if planned else f"(pid {sup.pid_of(name, child)}) {how}"
    say(f"{name} {why}; starting it again in {decision.delay_s:.1f} s "
        f"(restart {restarts.restarts(name) + 1}; log {log})")
    return True


def watch(sup: Supervised, stopping: list[bool], policy: Policy | None = None) -> int:
    """Until a signal (appended to ``stopping``): 0; or 1 when a process keeps crashing."""
    restarts = Supervision(policy or Policy())
    now = time.monotonic()
    for name in sup.processes():
        restarts.track(name, now)
    while not stopping:
        now = time.monotonic()
        for name, child in sup.processes().items():
            if not restarts.waiting(name) and sup.has_exited(child):
                if stopping:  # Ctrl-C in a terminal reaches the children too: they stop with us
                    break
                if not on_exit(sup, restarts, name, child, now):
                    return 1
        due = restarts.due(now)
        for name in due:
            try:
                sup.respawn(name)
            except (ParleyError, OSError) as err:  # still exited: the next round counts it as a crash
                say(f"{name} could not be started: {err}")
            record = restarts.started(name, time.monotonic())
            child = sup.processes()[name]
            say(f"{name} started again (pid {sup.pid_of(name, child)}, restart {record.restarts})")
        if due:
            runfile.write(sup.run_dir, run_info(sup, restarts))
        time.sleep(POLL_S)
    print("Stopping…", flush=True)
    return 0
