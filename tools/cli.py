"""The ``parley`` command: one subcommand per process role, plus ``up`` for a whole local cluster."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence

from parley.errors import ParleyError
from parley.runtime import run, setup_logging
from parley.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    """Every command and subcommand (``parley cassandra …`` parses its own options: ``main``)."""
    parser = argparse.ArgumentParser(prog="parley", description="Parley chat backend. The commands that talk to a "
                                     "running cluster (status, node drain, bus) find it through <run dir>/run.json, "
                                     "written by `parley up`.")
    sub = parser.add_subparsers(dest="role", required=True)
    up = sub.add_parser("up", help="run a whole local cluster (NATS, discovery, API, nodes, archiver)")
    up.add_argument("--nodes", type=int, default=2, help="edge nodes to start (default 2)")
    up.add_argument("--run-dir", default=None, help="where data and logs live (default .parley)")
    up.add_argument("--nats-port", type=int, default=4222, help="NATS client port (a cluster's servers: this and up)")
    up.add_argument("--nats-servers", type=int, default=1,
                    help="NATS servers: 1 (default), or e.g. 3 for a JetStream cluster on loopback with R3 streams")
    up.add_argument("--regions", default="",
                    help="several regions, e.g. eu,us: a NATS supercluster (one cluster per region, gateways), "
                         "PARLEY_SHARDS shards homed in each, a node, an API and an archiver per region")
    up.add_argument("--gateway-delay-ms", type=float, default=0.0,
                    help="with --regions: one-way latency added on the link between regions (emulates a WAN)")
    up.add_argument("--api-port", type=int, default=8080)
    up.add_argument("--discovery-port", type=int, default=8070)
    up.add_argument("--archiver-port", type=int, default=8075, help="archiver health endpoints")
    up.add_argument("--presence-port", type=int, default=8076, help="presence worker health endpoints")
    up.add_argument("--pusher-port", type=int, default=8077,
                    help="pusher health/metrics endpoints (started only with PARLEY_FCM_CREDENTIALS)")
    up.add_argument("--node-port", type=int, default=8090, help="first node's port; the others follow")
    up.add_argument("--archivers", type=_count, default=1,
                    help="archiver processes sharing the work (default 1; the others on --archiver-port + 100, +200…)")
    up.add_argument("--pushers", type=_count, default=1,
                    help="pusher processes (default 1; only with PARLEY_FCM_CREDENTIALS; ports as for archivers)")
    up.add_argument("--presence-workers", type=_count, default=1,
                    help="presence worker processes sharing the users' partitions (default 1; ports as above)")
    up.add_argument("--tls", action="store_true",
                    help="TLS everywhere with a local CA made in <run dir>/tls: wss nodes, https API and discovery, "
                         "NATS over TLS (clients trust <run dir>/tls/ca.pem)")
    up.add_argument("--store", choices=("sqlite", "cassandra"), default=None,
                    help="history backend (default: PARLEY_STORE, else sqlite); cassandra starts a local "
                         "Cassandra 5.0 in <run dir>/cassandra unless one answers on PARLEY_CASSANDRA_PORT")
    busp = sub.add_parser("bus", help="the JetStream streams and buckets: status, migrate, stepdown <stream>")
    bus_sub = busp.add_subparsers(dest="action", required=True)
    _finds_cluster(bus_sub.add_parser("status", help="streams: replicas, leader, replicas' lag, messages; "
                                                     "consumers' pending"), "--nats-url")
    _finds_cluster(bus_sub.add_parser("migrate", help="apply the configured replicas and limits to every stream "
                                                      "and bucket"), "--nats-url")
    stepdown = bus_sub.add_parser("stepdown", help="the stream's leader hands over (before server maintenance)")
    stepdown.add_argument("stream", nargs="?", help="stream name, e.g. MSG or KV_presence")
    stepdown.add_argument("--server", help="instead: every stream this NATS server leads (its server_name)")
    _finds_cluster(stepdown, "--nats-url")
    sub.add_parser("cassandra", help="run a local Cassandra 5.0 (up, down, status, jars, nodetool); "
                                     "`parley cassandra replication` ALTERs the keyspace to the settings")
    sub.add_parser("chat", help="a terminal chat client: sign up, friends, DMs, groups (parley chat --help)")
    tlsp = sub.add_parser("tls", help="a local CA for development: `parley tls init DIR` makes ca.pem and a "
                                      "certificate for 127.0.0.1/localhost (keys 0600)")
    tls_sub = tlsp.add_subparsers(dest="action", required=True)
    tls_sub.add_parser("init", help="make the CA and certificate in DIR (kept if there)").add_argument("dir")
    _finds_cluster(sub.add_parser("status", help="the cluster at a glance: nodes by region, connections, traffic, "
                                                 "archiver lag"), "--discovery-url")
    node = sub.add_parser("node", help="run one edge node (configured by PARLEY_* variables); "
                                       "`parley node drain <node>` drains a running one")
    node_sub = node.add_subparsers(dest="action")
    drain = node_sub.add_parser("drain", help="move a running node's clients to other nodes, then stop it")
    drain.add_argument("node_id", help="the node's id, as `parley status` shows it")
    drain.add_argument("--no-wait", action="store_true", help="return once the node has started draining")
    _finds_cluster(drain, "--nats-url")
    for role in ("api", "discovery", "archiver", "presence", "pusher"):
        sub.add_parser(role, help=f"run one {role} process (configured by PARLEY_* variables)")
    _describe(parser)
    return parser


def _describe(parser: argparse.ArgumentParser) -> None:
    """``parley <cmd> --help`` opens with the line ``parley --help`` shows for it."""
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        assert isinstance(action, argparse._SubParsersAction)
        for choice in action._choices_actions:
            child = action.choices[choice.dest]
            child.description = child.description or choice.help
            _describe(child)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:2] == ["cassandra", "replication"]:  # the keyspace, not the local server
        from parley.tools import cassandra_replication

        return cassandra_replication.main(args_list[2:])
    if args_list[:1] == ["chat"]:  # its own options: parley chat --help
        from parley.tools.chat import app as chat

        return chat.main(args_list[1:])
    if args_list[:1] == ["cassandra"]:  # its own options: parley cassandra --help
        from parley.tools import cassandra_runner

        return cassandra_runner.main(args_list[1:], prog="parley cassandra")
    parser = build_parser()
    args = parser.parse_args(args_list)
    try:
        settings = Settings.from_env(os.environ)
        if args.role == "up":
            from parley.tools.up import run_cluster

            return run_cluster(settings, args)
        if args.role == "tls":
            from parley.tools.localca import ensure

            files = ensure(args.dir)
            print(f"CA (trust it)   {files.ca}\ncertificate     {files.cert}\nkey             {files.key}\n"
                  f"PARLEY_TLS_CERT={files.cert} PARLEY_TLS_KEY={files.key} PARLEY_TLS_CA={files.ca}")
            return 0
        if args.role == "status":
            from parley.tools.status import status

            lines, ok = status(_where(args))
            print("\n".join(lines))
            return 0 if ok else 1
        if args.role == "bus" or args.role == "node" and args.action == "drain":
            return _over_nats(settings, args)
        node_id = settings.node_id or f"{socket.gethostname()}-{settings.node_port}"
        setup_logging(settings, args.role, node_id if args.role == "node" else None)
        if not settings.secret:
            raise ParleyError("PARLEY_SECRET is not set: every process of a cluster needs the same secret",
                              code="bad_setting")
        run(_role(args.role, settings))
    except ParleyError as err:
        print(f"parley {args.role}: {err.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def _finds_cluster(parser: argparse.ArgumentParser, flag: str) -> None:
    """A command that talks to a running cluster: where it is (``parley.tools.locate``)."""
    parser.add_argument("--run-dir", default=None,
                        help="the run dir of the `parley up` to talk to: its run.json names the ports "
                             "(default: PARLEY_RUN_DIR, else .parley)")
    what = "NATS server(s), comma-separated" if flag == "--nats-url" else "discovery's URL"
    parser.add_argument(flag, dest="url", default=None,
                        help=f"{what} (default: the run dir's run.json, else the PARLEY_* variables' or the "
                             "default ports)")
    parser.add_argument("--ca", default=None, help="CA file to check TLS servers against (default: PARLEY_TLS_CA, "
                                                   "else the run dir's `parley up --tls` CA, else the system's)")


def _where(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from parley.tools.locate import locate

    if args.role == "status":
        return locate(os.environ, args.run_dir, discovery=args.url, ca=args.ca)
    return locate(os.environ, args.run_dir, nats=args.url, ca=args.ca)


def _over_nats(settings: Settings, args: argparse.Namespace) -> int:
    """``parley bus …`` and ``parley node drain``: a NATS client of the cluster found."""
    import asyncio

    import nats.errors

    where = _where(args)
    settings = settings.replace(nats_url=where.nats, nats_tls_ca=settings.nats_tls_ca or where.ca)
    if where.nats_credentials and not (settings.nats_user or settings.nats_token or settings.nats_creds):
        from parley.tools.busauth import credentials_settings

        settings = settings.replace(**credentials_settings(where.nats_credentials))
    try:
        if args.role == "bus":
            from parley.tools import busctl

            return asyncio.run(busctl.main(settings, args))
        from parley.tools.nodectl import drain as drain_node

        return asyncio.run(drain_node(settings, args.node_id, wait=not args.no_wait))
    except (OSError, TimeoutError, nats.errors.NoServersError):
        print(where.not_answering("nats", "--nats-url"), file=sys.stderr)
        return 1


def _count(raw: str) -> int:
    n = int(raw)
    if not 1 <= n <= 50:
        raise argparse.ArgumentTypeError(f"{raw}: between 1 and 50")
    return n


def _role(role: str, settings: Settings):  # type: ignore[no-untyped-def]
    if role == "node":
        from parley.node.app import run_node

        return run_node(settings)
    if role == "api":
        from parley.api.app import run_api

        return run_api(settings)
    if role == "discovery":
        from parley.discovery.app import run_discovery

        return run_discovery(settings)
    if role == "presence":
        from parley.workers.presence import run_presence

        return run_presence(settings)
    if role == "pusher":
        from parley.workers.pusher import run_pusher

        return run_pusher(settings)
    from parley.workers.archiver import run_archiver

    return run_archiver(settings)


if __name__ == "__main__":
    sys.exit(main())
