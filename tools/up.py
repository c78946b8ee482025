"""``parley up``: a whole cluster on one machine, started in order and stopped cleanly.

Order: [Cassandra, with ``--store cassandra``] → nats-server (JetStream, from the wheel, configured
by nats.conf; with ``--nats-servers 3`` a 3-server JetStream cluster, ``parley.tools.natscluster``,
R3 streams and buckets) → discovery → archivers → presence workers → [pushers] → API → edge nodes (one
archiver, presence worker and pusher unless ``--archivers`` / ``--presence-workers`` / ``--pushers`` say
more; the extra ones listen on the role's port + 100, + 200…), started by the cluster
launcher (``parley.tools.cluster``): every role is a child process of its own with logs under
``<run dir>/logs``. Ctrl-C (or SIGTERM) stops them in reverse order, waiting for each.

Until then ``parley.tools.supervise`` watches them: a process that dies (any role, nats-server or a
member of a NATS cluster, a Cassandra started here) is started again with its settings, ports and data
after a backoff (``parley.tools.restarts``: 0.5 s doubling to 10 s, reset after 30 s up), with a line
on stdout naming it, how it ended, its restart count and its log; a node that drained (``parley node
drain``) and exited 0 is started again at once, like an orchestrator replacing it. One that crashes 5
times within 60 s stops ``parley up`` with exit 1 and a message naming it and its log.
``<run dir>/run.json`` (``parley.tools.runfile``: URLs, and each process's name, role, PID, port and
restarts) is written after the banner and after every restart, and removed when ``parley up`` stops.
Data (SQLite file or Cassandra data, JetStream store, the cluster secret, the bus's users in ``nats-auth/``,
``parley.tools.busauth``) stays in the run dir, so the next ``parley up`` continues where this one stopped;
a kept run dir's streams and buckets are first brought to this version's configuration (``parley.tools.bus_upgrade``:
``parley bus migrate``'s changes, printed), where a deployment's processes would refuse them as drift.

``--tls``: a local CA and a certificate for 127.0.0.1/localhost in ``<run dir>/tls`` (``parley.tools.localca``,
made once, keys 0600), served by nats-server (client port, routes, gateways), the nodes (wss), the API and
discovery (https); every process trusts the CA, and the banner names it for clients to trust.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from parley.tools import bus_upgrade, cassandra_runner, localca, promtargets, runfile, supervise
from parley.tools.cluster import Cluster, free_port
from parley.tools.localca import TlsFiles
from parley.tools.natscluster import NatsServers

from parley.errors import ParleyError
from parley.settings import Secret, Settings


def cluster_secret(run_dir: Path, configured: Secret) -> Secret:
    if configured:
        return configured
    path = run_dir / "secret"
    try:  # created 0600 in one step: never a moment when others could read it
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return Secret(path.read_text().strip())
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(48))
    return Secret(path.read_text().strip())


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


def cluster_settings(base: Settings, args: argparse.Namespace, run_dir: Path) -> Settings:
    return base.replace(
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


def with_tls(settings: Settings, files: TlsFiles) -> Settings:
    """Every process serves the local certificate (nodes, API, discovery) and trusts its CA (NATS too)."""
    return settings.replace(tls_cert=files.cert, tls_key=files.key, tls_ca=files.ca, nats_tls_ca=files.ca,
                            discovery_url=settings.discovery_url.replace("http://", "https://", 1))


def nats_cluster(base: Settings, args: argparse.Namespace, run_dir: Path, settings: Settings,
                 tls: TlsFiles | None = None) -> tuple[NatsServers | None, Settings]:
    """With ``--nats-servers N`` (N > 1): N servers on ports from ``--nats-port`` up, routes between them,
    every process given all their URLs, and streams and buckets at min(N, 3) replicas unless
    PARLEY_STREAM_REPLICAS says otherwise. With ``--regions eu,us``: a supercluster of N servers per region
    (ports from ``--nats-port`` up, region after region), each region homing PARLEY_SHARDS shards."""
    count = getattr(args, "nats_servers", 1)
    regions = [r.strip() for r in (getattr(args, "regions", "") or "").split(",") if r.strip()]
    if regions:
        servers = NatsServers(run_dir, count, free_port, regions=regions,
                              ports=[args.nats_port + i for i in range(count * len(regions))],
                              gateway_delay_s=getattr(args, "gateway_delay_ms", 0.0) / 1000, tls=tls)
        replicas = base.stream_replicas if base.stream_replicas != 1 else min(3, count)
        layout = ",".join(f"{r}:{base.shards}" for r in regions)
        return servers, settings.replace(regions=layout, region=regions[0], nats_url=servers.url_list(regions[0]),
                                         stream_replicas=replicas)
    if count <= 1:
        return None, settings
    servers = NatsServers(run_dir, count, free_port, ports=[args.nats_port + i for i in range(count)], tls=tls)
    replicas = base.stream_replicas if base.stream_replicas != 1 else min(3, count)
    return servers, settings.replace(nats_url=servers.url_list(), stream_replicas=replicas)


def prepare(base: Settings, args: argparse.Namespace, databases: list[LocalCassandra]) -> tuple[Cluster, list[str]]:
    """The launcher for the run dir and ports, and Cassandra if the store is; the banner's store lines."""
    run_dir = Path(args.run_dir or base.run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    if base.tls_cert and not getattr(args, "tls", False):
        raise ParleyError("PARLEY_TLS_CERT is set: `parley up --tls` serves TLS with a local CA of its own; "
                          "unset it, or add --tls", code="bad_setting")
    tls = localca.ensure(run_dir / "tls") if getattr(args, "tls", False) else None
    settings = cluster_settings(base, args, run_dir)
    servers, settings = nats_cluster(base, args, run_dir, with_tls(settings, tls) if tls else settings, tls)
    cluster = Cluster.configured(run_dir, settings, [args.node_port + i for i in range(args.nodes)], servers, tls)
    store_line = [f"  store      SQLite {settings.sqlite_path}"]
    if settings.store == "cassandra":
        database, where = start_cassandra(settings)
        databases.append(database)
        store_line = [f"  Cassandra  {where}, keyspace {settings.cassandra_keyspace}",
                      f"             cqlsh: .venv/bin/pip install cqlsh && .venv/bin/cqlsh 127.0.0.1 "
                      f"{settings.cassandra_port}"]
    return cluster, store_line


def workers_lines(cluster: Cluster) -> list[str]:
    names = [n for n, c in cluster.roles.items() if c.role in ("archiver", "presence", "pusher")]
    return [f"  workers    {', '.join(f'{n} :{cluster.worker_port(n)}' for n in names)}   (/metrics each)"]


def region_lines(cluster: Cluster) -> list[str]:
    """With regions: each region's API, nodes, NATS servers and shards."""
    servers, layout = cluster.nats_servers, cluster.settings.layout()
    assert servers is not None
    lines = []
    for region in cluster.regions:
        shards = layout.shards_in(region)
        nodes = [f"node{i + 1}" for i in range(len(cluster.node_ports)) if cluster.node_region(i) == region]
        lines += [f"  region {region}: API {cluster.api_url_of(region)}, {', '.join(nodes) or 'no node'}, "
                  f"shards {shards.start}-{shards.stop - 1}, NATS {servers.url_list(region)}"]
    return lines + ["             (the link between regions runs through a proxy in this process; "
                    "`parley bus status` shows where each stream lives)"]


def banner(cluster: Cluster, store_line: list[str]) -> list[str]:
    settings = cluster.settings
    nodes = [f"  node{i + 1}      {cluster.node_url(i)}" + (f"   ({cluster.node_region(i)})" if cluster.regions else "")
             for i in range(len(cluster.node_ports))]
    return [
        "Parley is up.",
        f"  chat       {cluster.api_url}/   (open it in a browser: sign up, add a friend, chat)",
        f"  API        {cluster.api_url}   (sign up: POST /v1/signup, log in: POST /v1/login)",
        f"  discovery  {cluster.discovery_url}/v1/nodes",
        f"  cluster    {cluster.discovery_url}/cluster   (live cluster page: nodes, traffic, lag)",
        *nodes,
        *workers_lines(cluster),
        *(region_lines(cluster) if cluster.regions else []),
        f"  NATS       {settings.nats_url}" + (f"   (JetStream cluster, R{settings.stream_replicas}; "
                                              "`parley bus status`)" if cluster.nats_servers else ""),
        f"             (authenticated: a user per role, passwords in {cluster.auth.dir})",
        *store_line,
        f"  push       {push_line(settings)}",
        *([f"  TLS        trust the CA {cluster.tls.ca}   (PARLEY_TLS_CA, --ca, or a browser's authorities)"]
          if cluster.tls else []),
        f"  data+logs  {cluster.root}",
        "Press Ctrl-C to stop.",
    ]


def bus_upgrade_of(cluster: Cluster) -> Callable[[], object] | None:
    """A kept run dir's bus is brought to this version's configuration once NATS answers (``bus_upgrade``)."""
    if not bus_upgrade.kept(cluster.root):
        return None
    return lambda: bus_upgrade.upgrade(cluster.settings)


def run_info(cluster: Cluster) -> runfile.RunInfo:
    """What run.json says about a cluster just started (no Cassandra, no restarts): tests and tools that
    start a ``Cluster`` themselves write it with this."""
    return supervise.run_info(supervise.Supervised(cluster))


def run_cluster(base: Settings, args: argparse.Namespace) -> int:
    databases: list[LocalCassandra] = []
    cluster: Cluster | None = None
    stopping: list[bool] = []  # appended to by the signal handler

    def on_signal(signum: int, _frame: object) -> None:
        stopping.append(True)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        cluster, store_line = prepare(base, args, databases)
        cluster.start(pusher=bool(cluster.settings.fcm_credentials), archivers=args.archivers,
                      pushers=args.pushers, presence_workers=args.presence_workers, after_nats=bus_upgrade_of(cluster))
        supervised = supervise.Supervised(cluster, next((d.dir for d in databases if d.ours), None))
        info = supervise.run_info(supervised)
        runfile.write(cluster.root, info)  # written again after every restart (supervise)
        promtargets.write(cluster.root, info)  # ops/prometheus(-tls).yml scrape these ports (a restart keeps them)
        print("\n".join(banner(cluster, store_line)), flush=True)
        return supervise.watch(supervised, stopping)
    except ParleyError as err:
        print(f"parley up: {err.message}", file=sys.stderr)
        return 1
    finally:
        if cluster is not None:
            runfile.remove(cluster.root)
            cluster.shutdown()
        for database in databases:
            if database.ours:
                cassandra_runner.stop(database.dir)
