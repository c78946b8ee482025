"""``parley up``: a whole cluster on one machine, started in order and stopped cleanly.

Order: [Cassandra, with ``--store cassandra``] → nats-server (JetStream, from the wheel, configured
by nats.conf) → discovery → archiver → presence → API → edge nodes. Every role is a child process of its own
with logs under ``<run dir>/logs``. Ctrl-C (or SIGTERM) stops them in reverse order, waiting for
each; a node that drained (``parley node drain``) and exited cleanly is started again, like an
orchestrator replacing it; any other child that dies takes the cluster down with a message saying
which. Data (SQLite file or Cassandra data, JetStream store, the cluster secret) stays in the run
dir, so the next ``parley up`` continues where this one stopped.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from parley.tools import cassandra_runner, natsserver

from parley.errors import ParleyError
from parley.settings import Secret, Settings


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    role: str = ""  # set by spawn: what to run again after a drain
    settings: Settings | None = None


def cluster_secret(run_dir: Path, configured: Secret) -> Secret:
    if configured:
        return configured
    path = run_dir / "secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return Secret(path.read_text().strip())


def wait_port(port: int, child: Child, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise ParleyError(f"{child.name} exited at start-up; see {child.log}", code="start_failed")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise ParleyError(f"{child.name} did not open port {port} in {timeout:.0f}s; see {child.log}",
                      code="start_failed")


def wait_ready(url: str, child: Child, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise ParleyError(f"{child.name} exited at start-up; see {child.log}", code="start_failed")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise ParleyError(f"{child.name} not ready at {url} in {timeout:.0f}s; see {child.log}", code="start_failed")


def spawn(name: str, role: str, settings: Settings, logs: Path) -> Child:
    log = logs / f"{name}.log"
    env = {**os.environ, **settings.as_env()}
    with open(log, "ab") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen([sys.executable, "-m", "parley", role], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    return Child(name, proc, log, role, settings)


def stop_all(children: list[Child], timeout: float = 10) -> None:
    """Stop now, in reverse order: SIGINT (a node closes its connections with 1001 rather than draining
    them to the others, which are about to stop too), SIGKILL after ``timeout``."""
    for child in reversed(children):
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGINT)
            try:
                child.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()


@dataclass
class LocalCassandra:
    dir: Path
    ours: bool  # False: one that already answered on the port; it is left running


def start_cassandra(settings: Settings) -> tuple[LocalCassandra, str]:
    """A local Cassandra for ``--store cassandra``: the one answering on the port, or a new one."""
    dir = Path(settings.cassandra_dir or Path(settings.run_dir) / "cassandra").resolve()
    host, port = settings.cassandra_hosts.split(",")[0].strip(), settings.cassandra_port
    try:
        cassandra_runner.cql_options(port, host)
        return LocalCassandra(dir, ours=False), f"{host}:{port} (already running; left running at exit)"
    except OSError:
        pass
    if host not in ("127.0.0.1", "localhost"):
        raise ParleyError(f"no Cassandra answers at {host}:{port} (PARLEY_CASSANDRA_HOSTS)", code="start_failed")
    print(f"Starting Cassandra in {dir} (first run: Maven fetches its jars) …", flush=True)
    previous = cassandra_runner.read_instance(dir).storage_port if (dir / "runner.json").exists() else 0
    inst = cassandra_runner.start(dir, cql_port=port, storage_port=previous, heap=settings.cassandra_heap,
                                  tie_to_parent=True)
    return LocalCassandra(dir, ours=True), f"127.0.0.1:{inst.cql_port}   (data {dir})"


def push_line(settings: Settings) -> str:
    if settings.fcm_credentials:
        return f"FCM through firebase-admin, service account {settings.fcm_credentials}"
    return "off (set PARLEY_FCM_CREDENTIALS to a Firebase service-account file to turn it on)"


def start_cluster(base: Settings, args: argparse.Namespace, children: list[Child],
                  databases: list[LocalCassandra]) -> list[str]:
    run_dir = Path(args.run_dir or base.run_dir).resolve()
    logs = run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    settings = base.replace(
        store=getattr(args, "store", None) or base.store,
        run_dir=str(run_dir),
        sqlite_path=str(run_dir / "parley.db") if base.sqlite_path == "parley.db" else base.sqlite_path,
        secret=cluster_secret(run_dir, base.secret),
        nats_url=f"nats://127.0.0.1:{args.nats_port}",
        api_port=args.api_port,
        discovery_port=args.discovery_port,
        discovery_url=f"http://127.0.0.1:{args.discovery_port}",
        archiver_port=args.archiver_port,
        presence_port=args.presence_port,
        pusher_port=getattr(args, "pusher_port", base.pusher_port),
    )
    store_line = [f"  store      SQLite {settings.sqlite_path}"]
    if settings.store == "cassandra":
        database, where = start_cassandra(settings)
        databases.append(database)
        store_line = [f"  Cassandra  {where}, keyspace {settings.cassandra_keyspace}",
                      f"             cqlsh: .venv/bin/pip install cqlsh && .venv/bin/cqlsh 127.0.0.1 "
                      f"{settings.cassandra_port}"]
    nats = Child("nats", natsserver.start(args.nats_port, run_dir / "nats", logs / "nats.log"), logs / "nats.log")
    children.append(nats)
    wait_port(args.nats_port, nats)
    roles = [("discovery", "discovery", settings, settings.discovery_port),
             ("archiver", "archiver", settings, settings.archiver_port),
             ("presence", "presence", settings, settings.presence_port),
             *([("pusher", "pusher", settings, settings.pusher_port)] if settings.fcm_credentials else []),
             ("api", "api", settings, settings.api_port)]
    for i in range(args.nodes):
        port = args.node_port + i
        roles.append((f"node{i + 1}", "node", settings.replace(node_id=f"node{i + 1}", node_port=port), port))
    for name, role, role_settings, port in roles:
        child = spawn(name, role, role_settings, logs)
        children.append(child)
        if port is not None:
            wait_ready(f"http://127.0.0.1:{port}/readyz", child)
    nodes = [f"ws://127.0.0.1:{args.node_port + i}/ws" for i in range(args.nodes)]
    return [
        "Parley is up.",
        f"  chat       http://127.0.0.1:{settings.api_port}/   (open it in a browser: sign up, add a friend, chat)",
        f"  API        http://127.0.0.1:{settings.api_port}   (sign up: POST /v1/signup, log in: POST /v1/login)",
        f"  discovery  http://127.0.0.1:{settings.discovery_port}/v1/nodes",
        f"  cluster    http://127.0.0.1:{settings.discovery_port}/cluster   (live cluster page: nodes, traffic, lag)",
        *[f"  node{i + 1}      {url}" for i, url in enumerate(nodes)],
        f"  NATS       {settings.nats_url}",
        *store_line,
        f"  push       {push_line(settings)}",
        f"  data+logs  {run_dir}",
        "Press Ctrl-C to stop.",
    ]


def run_cluster(base: Settings, args: argparse.Namespace) -> int:
    children: list[Child] = []
    databases: list[LocalCassandra] = []
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        banner = start_cluster(base, args, children, databases)
        print("\n".join(banner), flush=True)
        while not stopping:
            dead = next((c for c in children if c.proc.poll() is not None), None)
            if dead is not None and dead.role == "node" and dead.proc.returncode == 0 and dead.settings:
                # drained (`parley node drain`, or SIGTERM): its clients moved; start a fresh one in its place
                print(f"parley up: {dead.name} drained and stopped; starting it again", flush=True)
                children[children.index(dead)] = spawn(dead.name, "node", dead.settings, Path(dead.log).parent)
                continue
            if dead is not None:
                print(f"parley up: {dead.name} exited with {dead.proc.returncode}; see {dead.log}", file=sys.stderr)
                return 1
            gone = next((d for d in databases if d.ours and cassandra_runner.running_pid(d.dir) is None), None)
            if gone is not None:
                print(f"parley up: Cassandra exited; see {gone.dir / 'logs' / 'system.log'}", file=sys.stderr)
                return 1
            time.sleep(0.2)
        print("Stopping…", flush=True)
        return 0
    except ParleyError as err:
        print(f"parley up: {err.message}", file=sys.stderr)
        return 1
    finally:
        stop_all(children)
        for database in databases:
            if database.ours:
                cassandra_runner.stop(database.dir)
