"""nats-server's ``tls {}`` blocks, rendered from a certificate, its key and a CA (pure: text out).

Three places take one (nats-server's own config syntax):
- the top level: the client port. nats-server then refuses plain-TCP clients (no ``allow_non_tls``);
  clients check the server against the CA (``PARLEY_NATS_TLS_CA``). Clients are not asked for a
  certificate (``verify`` off): they authenticate with their role's credentials (ADR 0013).
- inside ``cluster {}``: the routes between the members of a cluster, and inside ``gateway {}``: the
  links between regions. Both ends present a certificate and check the other's against the CA
  (``verify: true``): a process that can reach a route port but holds no certificate from the CA
  cannot join the cluster.

``client_block`` goes at the top level (appended to the config); ``link_block`` into the cluster and
gateway blocks (``natsserver.cluster_config(..., route_tls=…)``, ``gateway_config(..., tls=…)``).
"""

from __future__ import annotations

from parley.tools.localca import TlsFiles

TIMEOUT_S = 5  # handshake deadline: nats-server's default (0.5 s) is short on a loaded 2-core machine


def _block(files: TlsFiles, verify: bool, indent: str) -> str:
    inner = indent + "  "
    lines = [f"{indent}tls {{",
             f'{inner}cert_file: "{files.cert}"',
             f'{inner}key_file: "{files.key}"',
             f'{inner}ca_file: "{files.ca}"',
             f"{inner}verify: {'true' if verify else 'false'}",
             f"{inner}timeout: {TIMEOUT_S}",
             f"{indent}}}"]
    return "\n".join(lines) + "\n"


def client_block(files: TlsFiles | None) -> str:
    """The client port's ``tls {}`` (top level); "" without files (plain TCP)."""
    return _block(files, verify=False, indent="") if files else ""


def link_block(files: TlsFiles | None, indent: str = "  ") -> str:
    """The ``tls {}`` of a route or gateway block: both ends verified; "" without files."""
    return _block(files, verify=True, indent=indent) if files else ""
