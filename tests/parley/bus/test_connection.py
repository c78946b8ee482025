"""A process connects with the settings' server list, credentials and TLS — to real nats-servers set up for each.

Certificates are made here with the openssl CLI: a CA, a server certificate for 127.0.0.1 and a client
certificate; the TLS server verifies clients, so the client certificate is exercised too.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from parley.tools import natsserver
from parley.tools.cluster import free_port

from parley import bus
from parley.bus.connection import connect_options
from parley.settings import Secret, Settings
from tests.poll import eventually_sync


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[object]:
    """Start a nats-server with the given extra config; yields a starter that returns its port."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(extra: str) -> int:
        port = free_port()
        config = tmp_path / f"nats-{port}.conf"
        config.write_text(f"host: 127.0.0.1\nport: {port}\n{extra}\n")
        proc = natsserver.start_with(config, tmp_path / f"nats-{port}.log")
        procs.append(proc)
        eventually_sync(lambda: proc.poll() is None and _accepts(port), what="nats-server accepts clients",
                        timeout=10)
        return port

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def anonymous_connect(port: int) -> str:
    """What the server answers a client that sends no credentials (raw protocol: INFO, CONNECT, PING)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.recv(4096)
        s.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')
        return s.recv(4096).decode()


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_certs(d: Path) -> dict[str, Path]:
    ca_key, ca = d / "ca.key", d / "ca.pem"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=parley test CA",
            "-keyout", str(ca_key), "-out", str(ca))
    out = {"ca": ca}
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        key, csr, cert, extfile = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem", d / f"{name}.ext"
        extfile.write_text(ext + "\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(csr))
        openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
                "-days", "2", "-extfile", str(extfile), "-out", str(cert))
        out[name], out[f"{name}_key"] = cert, key
    return out


async def round_trip(settings: Settings) -> None:
    nc = await bus.connect(settings, "test")
    try:
        sub = await nc.subscribe("hello")
        await nc.publish("hello", b"there")
        msg = await sub.next_msg(timeout=5)
        assert msg.data == b"there"
    finally:
        await bus.close_quietly(nc)


def test_options_carry_the_list_credentials_and_no_secret_in_the_settings_repr():
    s = Settings(nats_url="nats://a:1, nats://b:2,", nats_user="u", nats_password=Secret("pw"), nats_creds="/x.creds")
    options = connect_options(s)
    assert options["servers"] == ["nats://a:1", "nats://b:2"]
    assert (options["user"], options["password"], options["user_credentials"]) == ("u", "pw", "/x.creds")
    assert options["inbox_prefix"] == "_INBOX.u"  # replies on the user's own inboxes (ADR 0013)
    assert "inbox_prefix" not in connect_options(Settings(nats_url="nats://a:1", nats_token=Secret("t")))
    assert "tls" not in options
    assert "pw" not in repr(s)


async def test_connects_with_user_and_password(server):
    port = server("authorization { user: parley, password: s3cret-pw }")
    assert "Authorization Violation" in anonymous_connect(port), "the server really requires the password"
    await round_trip(Settings(nats_url=f"nats://127.0.0.1:{port}", nats_user="parley",
                              nats_password=Secret("s3cret-pw")))


async def test_connects_with_a_token(server):
    port = server("authorization { token: t0ken-abc }")
    await round_trip(Settings(nats_url=f"nats://127.0.0.1:{port}", nats_token=Secret("t0ken-abc")))


async def test_connects_over_tls_with_a_client_certificate(server, tmp_path):
    certs = make_certs(tmp_path)
    port = server(f'tls {{ cert_file: "{certs["server"]}", key_file: "{certs["server_key"]}", '
                  f'ca_file: "{certs["ca"]}", verify: true }}')
    await round_trip(Settings(nats_url=f"tls://127.0.0.1:{port}", nats_tls_ca=str(certs["ca"]),
                              nats_tls_cert=str(certs["client"]), nats_tls_key=str(certs["client_key"])))


async def test_starts_while_the_first_server_of_the_list_is_down(server):
    port = server("")
    down = free_port()
    await round_trip(Settings(nats_url=f"nats://127.0.0.1:{down},nats://127.0.0.1:{port}"))
