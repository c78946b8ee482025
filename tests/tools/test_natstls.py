"""nats-server's tls blocks: where they go in a config, and what a real nats-server does with them — plain
TCP and untrusting clients refused on the client port; routes with TLS form a JetStream cluster."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.js.api import Placement, StreamConfig
from parley.tools import busauth, localca, natsserver
from parley.tools.cluster import free_port
from parley.tools.localca import TlsFiles
from parley.tools.natscluster import NatsServers
from parley.tools.natstls import client_block, link_block

from parley.bus.connection import connect_options
from parley.settings import Settings
from tests.poll import eventually, eventually_sync

FILES = TlsFiles(cert="/tls/server.pem", key="/tls/server-key.pem", ca="/tls/ca.pem")


def test_the_client_port_block_names_the_files_and_does_not_ask_clients_for_certificates():
    text = client_block(FILES)
    assert text.startswith("tls {\n") and text.rstrip().endswith("}")
    for line in ('cert_file: "/tls/server.pem"', 'key_file: "/tls/server-key.pem"', 'ca_file: "/tls/ca.pem"',
                 "verify: false"):
        assert line in text
    assert client_block(None) == "" and link_block(None) == ""


def test_route_and_gateway_blocks_verify_both_ends_inside_their_blocks():
    route = link_block(FILES)
    assert "  tls {\n" in route and "verify: true" in route
    text = natsserver.cluster_config("nats-1", 4222, 6222, Path("/d"), [6222], route_tls=route)
    cluster = text.split("cluster {", 1)[1].split("\n}", 1)[0]
    assert "verify: true" in cluster and 'cert_file: "/tls/server.pem"' in cluster
    gateway = natsserver.gateway_config("eu", 7222, 8222, {"us": [8223]}, tls=route)
    assert gateway.split("gateways: [", 1)[1].count("verify: true") == 1 and gateway.rstrip().endswith("}")


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return localca.ensure(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def tls_nats(tmp_path: Path, tls_files: TlsFiles) -> Iterator[int]:
    """One nats-server (nats.conf + the client block) that requires TLS."""
    port = free_port()
    proc = natsserver.start(port, tmp_path / "nats", tmp_path / "nats.log", extra=client_block(tls_files))
    try:
        eventually_sync(lambda: _accepts(port), what="nats-server accepts", timeout=20)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def _accepts(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def test_a_tls_server_takes_a_client_that_trusts_its_ca_over_nats_and_tls_urls(tls_nats: int,
                                                                                    tls_files: TlsFiles):
    for scheme in ("nats", "tls"):
        settings = Settings(nats_url=f"{scheme}://127.0.0.1:{tls_nats}", nats_tls_ca=tls_files.ca)
        nc = await nats.connect(**connect_options(settings), connect_timeout=5, max_reconnect_attempts=0)
        try:
            assert nc.connected_url is not None
            await nc.jetstream().account_info()
        finally:
            await nc.close()


async def test_a_plain_tcp_client_is_refused(tls_nats: int):
    with pytest.raises((nats.errors.NoServersError, OSError, nats.errors.Error)):
        nc = await nats.connect(f"nats://127.0.0.1:{tls_nats}", connect_timeout=2, max_reconnect_attempts=0,
                                allow_reconnect=False)
        await nc.close()


async def test_a_client_that_does_not_trust_the_ca_is_refused(tls_nats: int, tmp_path: Path):
    other = localca.ensure(tmp_path / "other")
    settings = Settings(nats_url=f"tls://127.0.0.1:{tls_nats}", nats_tls_ca=other.ca)
    with pytest.raises((ssl.SSLError, nats.errors.NoServersError, OSError)):
        nc = await nats.connect(**connect_options(settings), connect_timeout=2, max_reconnect_attempts=0,
                                allow_reconnect=False)
        await nc.close()


async def test_three_servers_with_tls_routes_form_a_cluster_and_replicate_a_stream(tmp_path: Path,
                                                                                  tls_files: TlsFiles):
    servers = NatsServers(tmp_path, 3, free_port, tls=tls_files)
    try:
        await asyncio.to_thread(servers.start)  # JetStream answers over TLS: the routes formed
        settings = Settings(nats_url=servers.url_list(), nats_tls_ca=tls_files.ca).replace(
            **servers.auth.settings_for(busauth.ADMIN))
        nc = await nats.connect(**connect_options(settings), connect_timeout=5)
        try:
            js = nc.jetstream()
            await js.add_stream(StreamConfig(name="TLS3", subjects=["tls3.>"], num_replicas=3))
            ack = await js.publish("tls3.a", b"over tls routes")
            assert ack.seq == 1
            info = await js.stream_info("TLS3")
            assert len(info.cluster.replicas or []) == 2  # two followers besides the leader
        finally:
            await nc.close()
        for m in servers.members:
            assert "tls {" in m.config.read_text().split("cluster {", 1)[1]
    finally:
        await asyncio.to_thread(servers.stop)


async def test_two_regions_join_over_tls_gateways(tmp_path: Path, tls_files: TlsFiles):
    """One server per region: JetStream's meta group spans both, so it answers only once the gateway
    between them (through its proxy) completed a verified TLS handshake both ways."""
    servers = NatsServers(tmp_path, 1, free_port, regions=["eu", "us"], tls=tls_files)
    try:
        await asyncio.to_thread(servers.start)
        for m in servers.members:
            assert "verify: true" in m.config.read_text().split("gateway {", 1)[1]
        settings = Settings(nats_url=servers.url_list("eu"), nats_tls_ca=tls_files.ca).replace(
            **servers.auth.settings_for(busauth.ADMIN))
        nc = await nats.connect(**connect_options(settings), connect_timeout=5)
        try:
            js = nc.jetstream()
            await js.add_stream(StreamConfig(name="IN_US", subjects=["us.>"], placement=Placement(tags=["region:us"])))
            # the stream's interest reaches eu over the gateway a moment after it is made: until then a publish finds
            # no responder and stores nothing (CI saw it once), so it is tried again until one lands
            ack = await eventually(lambda: js.publish("us.a", b"from eu", timeout=2),
                                   what="a publish from eu lands in us", timeout=30,
                                   ignoring=(nats.js.errors.NoStreamResponseError,))
            assert ack.stream == "IN_US"  # crossed the gateway
        finally:
            await nc.close()
    finally:
        await asyncio.to_thread(servers.stop)


def test_a_route_peer_with_a_certificate_from_another_ca_is_refused(tmp_path: Path, tls_files: TlsFiles):
    """n1's certificate is from another CA: n0 logs the failed handshakes, and when it stops it has no route to
    n1 to close (with the same CA it logs ``Router connection closed: Server Shutdown - Remote: n1``)."""
    other = localca.ensure(tmp_path / "other-ca")
    ports = [free_port(), free_port()]
    procs = []
    log = tmp_path / "n0.log"
    try:
        for i, files in enumerate((tls_files, other)):
            config = tmp_path / f"n{i}.conf"
            config.write_text(natsserver.cluster_config(f"n{i}", free_port(), ports[i], tmp_path / f"n{i}", ports,
                                                        route_tls=link_block(files)))
            procs.append(natsserver.start_with(config, tmp_path / f"n{i}.log"))
        eventually_sync(lambda: "TLS route handshake error" in log.read_text() and "unknown authority" in (
                        log.read_text()), what="n0 refusing n1's route: its certificate is from another CA", timeout=20)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
    assert "Remote: n1" not in log.read_text()
