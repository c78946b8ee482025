"""A cluster with TLS on (``Cluster(tls=True)``, what ``parley up --tls`` starts): a local CA, nats-server
requiring TLS, the nodes on wss, the API and discovery on https. A client that trusts the CA signs up,
is placed on a wss node and exchanges a DM; one that does not trust it, or speaks plain HTTP or plain
NATS, is refused. One TLS cluster for the module, and one ``parley up --tls`` with one node."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import aiohttp
import nats
import nats.errors
import pytest
from parley.tools import runfile, up
from parley.tools.client import Api, Device, connector
from parley.tools.locate import locate
from parley.tools.status import status

from parley.bus.connection import connect_options
from tests.integration.cluster import Cluster
from tests.integration.conftest import PASSWORD, World
from tests.integration.test_up import clean_env, kill_tree, up_command, wait_banner
from tests.poll import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("tls"), nodes=2, tls=True)
    try:
        c.start()
        yield c
    finally:
        c.shutdown()


@pytest.fixture
async def trusting(tls_cluster: Cluster) -> AsyncIterator[aiohttp.ClientSession]:
    assert tls_cluster.tls is not None
    async with aiohttp.ClientSession(connector=connector(tls_cluster.tls.ca)) as session:
        yield session


@pytest.fixture
async def tworld(tls_cluster: Cluster, trusting: aiohttp.ClientSession) -> AsyncIterator[World]:
    w = World(tls_cluster, trusting)
    yield w
    await w.close()


async def test_a_client_trusting_the_ca_is_placed_on_a_wss_node_and_exchanges_a_dm(tworld: World):
    alice, bob = await tworld.person("alice"), await tworld.person("bob")
    assert alice.logins[-1]["node"]["url"].startswith("wss://127.0.0.1:")  # discovery hands out wss URLs
    assert all(f["url"].startswith("wss://") for f in alice.logins[-1]["fallbacks"])
    conv = await alice.befriend(bob)  # the API over https
    a, b = await alice.device(), await bob.device(node=1)
    ack = await a.send(conv, "over tls")
    assert ack["status"] == "sent"
    await b.wait_for(lambda: ack["id"] in b.messages)
    assert b.messages[ack["id"]]["body"] == "over tls"
    history = await tworld.api.call("GET", f"/v1/conversations/{conv}/messages", bob.token)
    assert [m["id"] for m in history["messages"]] == [ack["id"]]  # archived: the archiver's NATS is TLS too


async def test_a_client_that_does_not_trust_the_ca_is_refused(tls_cluster: Cluster, tworld: World):
    person = await tworld.person("carol")
    async with aiohttp.ClientSession() as untrusting:  # the system's CAs only
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await Api(tls_cluster.api_url, untrusting).login(person.name, PASSWORD)
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await Device(untrusting, tls_cluster.node_url(0), person.token).connect()
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await untrusting.get(tls_cluster.discovery_url + "/v1/nodes")


async def test_discovery_scrapes_the_nodes_and_probes_the_api_over_https(tls_cluster: Cluster,
                                                                       trusting: aiohttp.ClientSession):
    async def check() -> dict[str, object]:
        async with trusting.get(tls_cluster.discovery_url + "/v1/cluster") as resp:  # asking starts sampling
            body = await resp.json()
        states = {p["name"]: p["state"] for p in body["health"]["processes"]}
        assert states.get("api") == "up" and states.get("archiver") == "up", states
        assert len(body["nodes"]) == 2 and all(n["scraped"] for n in body["nodes"]), body["nodes"]
        return body

    await eventually(check, what="discovery reading every node's /metrics and the API's over https", timeout=30)


async def test_plain_http_and_ws_are_not_served(tls_cluster: Cluster):
    plain_api = tls_cluster.api_url.replace("https://", "http://")
    plain_node = tls_cluster.node_url(0).replace("wss://", "ws://")
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientError):
            async with http.get(plain_api + "/healthz") as resp:
                await resp.read()
        with pytest.raises(aiohttp.ClientError):
            await http.ws_connect(plain_node)


async def test_nats_refuses_a_plain_tcp_client_and_takes_one_over_tls(tls_cluster: Cluster):
    with pytest.raises((nats.errors.NoServersError, OSError, nats.errors.Error)):
        nc = await nats.connect(tls_cluster.nats_url, connect_timeout=2, max_reconnect_attempts=0,
                                allow_reconnect=False)
        await nc.close()
    nc = await nats.connect(**connect_options(tls_cluster.settings), connect_timeout=5, max_reconnect_attempts=0)
    try:
        assert tls_cluster.settings.nats_tls_ca
        await nc.jetstream().account_info()  # what every Parley process does at start, over TLS
    finally:
        await nc.close()


def test_parley_status_checks_the_cluster_against_the_ca_of_run_json(tls_cluster: Cluster):
    runfile.write(tls_cluster.root, up.run_info(tls_cluster))
    try:
        where = locate({}, tls_cluster.root)
        assert tls_cluster.tls is not None and where.ca == tls_cluster.tls.ca
        lines, ok = status(where)
        assert ok, lines
        assert sum("wss://127.0.0.1:" in line for line in lines) == 2
        lines, ok = status(locate({}, tls_cluster.root, ca=_other_ca(tls_cluster)))
        assert not ok and "not answering" in lines[0]
    finally:
        runfile.remove(tls_cluster.root)


def _other_ca(cluster: Cluster) -> str:
    return _other_ca_in(cluster.root)


def test_the_cluster_logged_no_errors(tls_cluster: Cluster):
    assert tls_cluster.errors_in_logs() == []
    assert "TLS required for client connections" in tls_cluster.log_text("nats")


def test_parley_up_with_tls_names_its_ca_and_its_clients_find_it(tmp_path):
    """``parley up --tls`` (one node): the banner names the CA; ``parley status`` and ``parley chat`` trust
    it through run.json, without a flag; one that trusts another CA finds nothing answering."""
    cmd, ports, node_port = up_command(tmp_path / "run", "--tls", "--nodes", "1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=clean_env(), text=True)
    try:
        text = wait_banner(proc)
        ca = tmp_path / "run" / "tls" / "ca.pem"
        assert f"trust the CA {ca}" in text
        assert f"https://127.0.0.1:{ports['api']}" in text and f"wss://127.0.0.1:{node_port}/ws" in text
        cli = [sys.executable, "-m", "parley"]
        out = subprocess.run([*cli, "status", "--run-dir", str(tmp_path / "run")], capture_output=True, text=True,
                             env=clean_env(), timeout=60)
        assert out.returncode == 0 and f"wss://127.0.0.1:{node_port}/ws" in out.stdout, out.stdout + out.stderr
        script = f"{PASSWORD}\n/friends\n/quit\n"
        out = subprocess.run([*cli, "chat", "--run-dir", str(tmp_path / "run"), "--user", "tls_user", "--signup"],
                             input=script, capture_output=True, text=True, env=clean_env(), timeout=60)
        assert out.returncode == 0 and "signed up as tls_user" in out.stdout, out.stdout + out.stderr
        out = subprocess.run([*cli, "status", "--run-dir", str(tmp_path / "run"), "--ca", _other_ca_in(tmp_path)],
                             capture_output=True, text=True, env=clean_env(), timeout=60)
        assert out.returncode == 1  # a CA that did not sign the cluster's certificate: nothing answers
        out = subprocess.run([*cli, "bus", "status", "--run-dir", str(tmp_path / "run")], capture_output=True,
                             text=True, env=clean_env(), timeout=60)
        assert out.returncode == 0 and "MSG_0" in out.stdout, out.stdout + out.stderr  # NATS over TLS, the same CA
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            kill_tree(proc)
            proc.wait()
        proc.stdout.close()


def _other_ca_in(path) -> str:
    from parley.tools import localca

    return localca.ensure(path / "other-ca").ca
