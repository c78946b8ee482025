"""`parley up`: the README's first command starts a whole cluster and stops it cleanly on Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request

import orjson
import psutil
import pytest

from tests.integration.cluster import free_port

pytestmark = pytest.mark.integration


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return orjson.loads(resp.read())


def test_parley_up_prints_where_to_connect_and_stops_without_strays(tmp_path):
    ports = {name: free_port() for name in ("nats", "api", "discovery", "archiver")}
    node_port = free_port()
    while node_port + 1 in ports.values():
        node_port = free_port()
    cmd = [sys.executable, "-m", "parley", "up", "--run-dir", str(tmp_path / "run"),
           "--nats-port", str(ports["nats"]), "--api-port", str(ports["api"]),
           "--discovery-port", str(ports["discovery"]), "--archiver-port", str(ports["archiver"]),
           "--node-port", str(node_port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    banner = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, f"parley up exited early: {''.join(banner)}"
            banner.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        text = "".join(banner)
        assert f"http://127.0.0.1:{ports['api']}" in text
        assert f"ws://127.0.0.1:{node_port}/ws" in text and f"ws://127.0.0.1:{node_port + 1}/ws" in text
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) == 6  # nats, discovery, archiver, api, two nodes
        for role in ("api", "discovery", "archiver"):
            assert get_json(f"http://127.0.0.1:{ports[role]}/readyz")["ready"] is True
        deadline = time.monotonic() + 10
        while len([n for n in get_json(f"http://127.0.0.1:{ports['discovery']}/v1/nodes")["nodes"]
                   if n["eligible"]]) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        _, alive = psutil.wait_procs(children, timeout=5)
        assert alive == [], f"stray processes: {alive}"
        assert (tmp_path / "run" / "parley.db").exists() and (tmp_path / "run" / "secret").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


async def test_acked_messages_survive_a_nats_restart(world, cluster):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a, b = await alice.device(node=0), await bob.device(node=1)
    sent = [(await a.send(conv, f"before {i}"))["id"] for i in range(20)]
    cluster.stop_nats()
    await asyncio.sleep(0.5)
    cluster.start_nats()
    deadline = time.monotonic() + 20
    while True:  # the node's NATS client reconnects by itself
        try:
            sent.append((await a.send(conv, "after restart"))["id"])
            break
        except Exception:
            assert time.monotonic() < deadline, "sending did not recover after NATS came back"
            a.errors.clear()
            await asyncio.sleep(0.5)
    sent += [(await a.send(conv, f"after {i}"))["id"] for i in range(10)]
    await b.wait_for(lambda: sent[-1] in b.messages, timeout=20)
    assert b.order == sent and b.duplicates == 0
    history = await world.api.call("GET", f"/v1/conversations/{conv}/messages", bob.token,
                                   params={"order": "asc", "limit": 100})
    assert [m["id"] for m in history["messages"]] == sent
