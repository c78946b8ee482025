"""`parley up`: the README's first command starts a whole cluster and stops it cleanly on Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import orjson
import psutil
import pytest
from cassandra.cluster import Cluster as CqlCluster
from parley.tools.client import Api, Device

from tests.integration.cluster import free_port
from tests.poll import eventually, eventually_sync

pytestmark = pytest.mark.integration


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return orjson.loads(resp.read())


def up_command(run_dir, *extra: str) -> tuple[list[str], dict[str, int], int]:
    ports = {name: free_port() for name in ("nats", "api", "discovery", "archiver", "presence")}
    # parley up puts extra NATS servers on the NATS port + 1, + 2 and the second node on the node port + 1
    taken = {*ports.values(), ports["nats"] + 1, ports["nats"] + 2}
    node_port = free_port()
    while {node_port, node_port + 1} & taken:
        node_port = free_port()
    cmd = [sys.executable, "-m", "parley", "up", "--run-dir", str(run_dir),
           "--nats-port", str(ports["nats"]), "--api-port", str(ports["api"]),
           "--discovery-port", str(ports["discovery"]), "--archiver-port", str(ports["archiver"]),
           "--presence-port", str(ports["presence"]), "--node-port", str(node_port), *extra]
    return cmd, ports, node_port


def wait_banner(proc: subprocess.Popen, timeout: float = 60) -> str:
    banner: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line, f"parley up exited early: {''.join(banner)}"
        banner.append(line)
        if line.startswith("Press Ctrl-C"):
            return "".join(banner)
    raise AssertionError(f"no banner in {timeout}s: {''.join(banner)}")


def clean_env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}, **extra}


def test_parley_up_prints_where_to_connect_and_stops_without_strays(tmp_path):
    cmd, ports, node_port = up_command(tmp_path / "run")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=clean_env(), text=True)
    try:
        text = wait_banner(proc)
        assert f"http://127.0.0.1:{ports['api']}" in text
        assert f"ws://127.0.0.1:{node_port}/ws" in text and f"ws://127.0.0.1:{node_port + 1}/ws" in text
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) == 7  # nats, discovery, archiver, presence, api, two nodes
        for role in ("api", "discovery", "archiver", "presence"):
            assert get_json(f"http://127.0.0.1:{ports[role]}/readyz")["ready"] is True
        eventually_sync(lambda: len([n for n in get_json(f"http://127.0.0.1:{ports['discovery']}/v1/nodes")["nodes"]
                                     if n["eligible"]]) >= 2, what="both nodes eligible in discovery", every=0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        _, alive = psutil.wait_procs(children, timeout=5)
        assert alive == [], f"stray processes: {alive}"
        assert (tmp_path / "run" / "parley.db").exists() and (tmp_path / "run" / "secret").exists()
    finally:
        if proc.poll() is None:
            kill_tree(proc)
            proc.wait()
        proc.stdout.close()


def up_and_stop(cmd: list[str], env: dict[str, str]) -> str:
    """``parley up`` until its banner, then Ctrl-C; its output up to the banner."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        text = wait_banner(proc)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        return text
    finally:
        if proc.poll() is None:
            kill_tree(proc)
            proc.wait()
        proc.stdout.close()


def test_parley_up_applies_its_configuration_to_the_bus_a_run_dir_kept(tmp_path):
    """A run dir from an earlier run (here: another last-seen TTL, so another ``last_seen`` bucket) would
    have every role refuse its bucket as drift; ``parley up`` applies the configuration and says so."""
    cmd, _, _ = up_command(tmp_path / "run", "--nodes", "1")
    first = up_and_stop(cmd, clean_env(PARLEY_LAST_SEEN_TTL_S="86400"))
    assert "applied to the run dir's bus" not in first  # a fresh run dir: the roles create what they use
    again = up_and_stop(cmd, clean_env())
    applied = [line for line in again.splitlines() if line.startswith("parley up: applied to the run dir's bus: ")]
    assert applied and "bucket last_seen: max_age 86400.0 -> 31536000.0" in applied[0], again
    assert "applied to the run dir" not in up_and_stop(cmd, clean_env())  # as configured now: nothing said


def kill_tree(proc: subprocess.Popen[str]) -> None:
    """A failed test's ``parley up`` and every process it started (killed alone, it would orphan them)."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    for p in [*children]:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    proc.kill()


def wait_children(proc: subprocess.Popen[str], count: int, timeout: float = 15) -> list[psutil.Process]:
    """``proc``'s processes once there are ``count`` of them (a loaded machine lists a just-started
    child late); ``parley up`` itself still running (any child that exits stops it)."""
    deadline = time.monotonic() + timeout
    while True:
        children = psutil.Process(proc.pid).children(recursive=True)
        if len(children) == count or time.monotonic() > deadline:
            assert proc.poll() is None and len(children) == count, [c.name() for c in children]
            return children
        time.sleep(0.1)  # polling the condition


def test_parley_up_starts_several_workers_of_each_role_on_the_next_ports(tmp_path):
    cmd, ports, _ = up_command(tmp_path / "run", "--nodes", "1", "--archivers", "2", "--presence-workers", "2")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=clean_env(), text=True)
    try:
        text = wait_banner(proc)
        assert f"archiver2 :{ports['archiver'] + 100}" in text and f"presence2 :{ports['presence'] + 100}" in text
        children = wait_children(proc, 8)  # nats, discovery, two archivers, two presence workers, api, one node
        for port in (ports["archiver"], ports["archiver"] + 100, ports["presence"], ports["presence"] + 100):
            assert get_json(f"http://127.0.0.1:{port}/readyz")["ready"] is True
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        _, alive = psutil.wait_procs(children, timeout=5)
        assert alive == [], f"stray processes: {alive}"
    finally:
        if proc.poll() is None:
            kill_tree(proc)
            proc.wait()
        proc.stdout.close()


async def test_acked_messages_survive_a_nats_restart(world, cluster):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a, b = await alice.device(node=0), await bob.device(node=1)
    sent = [(await a.send(conv, f"before {i}"))["id"] for i in range(20)]
    cluster.stop_nats()
    await asyncio.sleep(0.5)  # the scenario, not a wait: NATS is away for half a second
    cluster.start_nats()
    restarted = time.time()

    async def send_after_restart() -> int:  # the node's NATS client reconnects by itself
        a.errors.clear()
        return int((await a.send(conv, "after restart"))["id"])

    sent.append(await eventually(send_after_restart, timeout=20, every=0.5, ignoring=(Exception,),
                                 what="sending again after NATS came back"))
    sent += [(await a.send(conv, f"after {i}"))["id"] for i in range(10)]
    await b.wait_for(lambda: sent[-1] in b.messages, timeout=20)
    assert b.order == sent and b.duplicates == 0
    history = await world.api.call("GET", f"/v1/conversations/{conv}/messages", bob.token,
                                   params={"order": "asc", "limit": 100})
    assert [m["id"] for m in history["messages"]] == sent

    async def registry_rebuilt() -> bool:
        """Discovery has both nodes from entries written after the restart (the registry is a memory
        bucket, gone with it; nodes write it again and discovery watches it again)."""
        asked = time.time()
        async with world.http.get(f"{cluster.discovery_url}/v1/nodes") as r:
            nodes = {n["id"]: n for n in (await r.json())["nodes"]}
        fresh = {i for i, n in nodes.items() if n["eligible"] and asked - n["age_s"] - 0.01 > restarted}
        assert {"node1", "node2"} <= fresh, f"fresh since the restart: {sorted(fresh)}"
        return True

    # discovery reopens a watch that stayed quiet for 3 node beats (at least 5 s)
    await eventually(registry_rebuilt, timeout=30, every=0.5, what="the node registry rebuilt after the restart")
    assert (await alice.login())["node"]["url"]  # logins place again


async def test_parley_up_on_cassandra_starts_it_keeps_history_there_and_stops_it(tmp_path, http):
    """The README's Cassandra command, as a new user runs it: its own Cassandra, then the cluster."""
    cql_port = free_port()
    cmd, ports, node_port = up_command(tmp_path / "run", "--store", "cassandra")
    env = clean_env(PARLEY_CASSANDRA_PORT=str(cql_port), PARLEY_CASSANDRA_HEAP="512M")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        text = await asyncio.to_thread(wait_banner, proc, 240)
        assert f"Cassandra  127.0.0.1:{cql_port}" in text and "keyspace parley" in text
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) == 8  # Cassandra, nats, discovery, archiver, presence, api, two nodes
        api = Api(f"http://127.0.0.1:{ports['api']}", http)
        users = [(await api.signup(name, "correct horse battery"))["user"]["id"] for name in ("alice", "bob")]
        tokens = [(await api.login(name, "correct horse battery"))["token"] for name in ("alice", "bob")]
        for me, other in ((0, 1), (1, 0)):
            await api.call("POST", "/v1/friends", tokens[me], {"user_id": users[other]})
        conv = (await api.call("POST", "/v1/conversations", tokens[0], {"user_id": users[1]}))["conversation"]["id"]
        device = Device(http, f"ws://127.0.0.1:{node_port}/ws", tokens[0])
        await device.connect()
        sent = [(await device.send(conv, f"hello {i}"))["id"] for i in range(5)]
        await device.close()
        cql = CqlCluster(["127.0.0.1"], port=cql_port)
        try:
            session = cql.connect("parley")

            def archived() -> list:
                rows = list(session.execute("SELECT id, body FROM messages WHERE conv = %s ALLOW FILTERING", (conv,)))
                assert len(rows) >= 5, rows
                return rows

            rows = await eventually(archived, timeout=20, every=0.2, what="the five messages in Cassandra")
        finally:
            cql.shutdown()
        assert sorted((r.id, r.body) for r in rows) == [(i, f"hello {n}") for n, i in enumerate(sent)]
        page = await api.call("GET", f"/v1/conversations/{conv}/messages?limit=3", tokens[1])
        assert [m["id"] for m in page["messages"]] == sent[::-1][:3] and page["more"] is True
        proc.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(proc.wait, 60) == 0
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == [], f"stray processes: {alive}"
        assert (tmp_path / "run" / "cassandra" / "data").is_dir()
    finally:
        if proc.poll() is None:
            kill_tree(proc)
            proc.wait()
        proc.stdout.close()


def three_free_ports() -> int:
    """A port p with p, p + 1 and p + 2 free (``--nats-port p --nats-servers 3`` takes all three)."""
    def free(q: int) -> bool:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", q))
                return True
            except OSError:
                return False

    for _ in range(50):
        p = free_port()
        if p + 2 < 65536 and free(p + 1) and free(p + 2):
            return p
    raise AssertionError("no three consecutive free ports")


def test_parley_up_with_three_nats_servers_runs_on_r3_streams_and_buckets(tmp_path):
    cmd, ports, _ = up_command(tmp_path / "run")
    nats_port = three_free_ports()
    cmd[cmd.index("--nats-port") + 1] = str(nats_port)
    proc = subprocess.Popen([*cmd, "--nats-servers", "3"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=clean_env(), text=True)
    try:
        text = wait_banner(proc, timeout=120)
        urls = ",".join(f"nats://127.0.0.1:{nats_port + i}" for i in range(3))
        assert urls in text and "JetStream cluster, R3" in text
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) == 9  # three nats-servers, discovery, archiver, presence, api, two nodes
        status = subprocess.run([sys.executable, "-m", "parley", "bus", "status"], capture_output=True, text=True,
                                env=clean_env(PARLEY_NATS_URL=urls, PARLEY_RUN_DIR=str(tmp_path / "run")),
                                timeout=60)  # the run dir's run.json names the ops user's credentials
        assert status.returncode == 0, status.stderr
        for stream in ("MSG_0", "MSG_3", "KV_nodes", "KV_presence", "KV_last_seen"):
            assert f"{stream}: R3" in status.stdout, status.stdout
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        _, alive = psutil.wait_procs(children, timeout=5)
        assert alive == [], f"stray processes: {alive}"
    finally:
        if proc.poll() is None:
            kill_tree(proc)
            proc.wait()
        proc.stdout.close()
