"""`parley up` heals its cluster: kill -9 any one process under traffic and it is started again, with
nothing acked lost; a process that keeps crashing stops `parley up` with a message naming it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
from parley.tools import runfile
from parley.tools.client import Api, ApiError, Device

from tests.integration.test_up import clean_env, kill_tree, up_command, wait_banner
from tests.poll import eventually, eventually_sync

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery"
FAST = {"PARLEY_ARGON2_TIME_COST": "1", "PARLEY_ARGON2_MEMORY_KIB": "8192", "PARLEY_DRAIN_SPREAD_S": "0.5"}
TROUBLE = (OSError, ConnectionError, aiohttp.ClientError, TimeoutError, ApiError)


class Up:
    """``parley up`` as a subprocess, its output collected by a thread (it prints a line per restart)."""

    def __init__(self, run_dir: Path, *extra: str) -> None:
        cmd, self.ports, self.node_port = up_command(run_dir, *extra)
        self.run_dir = run_dir
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=clean_env(**FAST),
                                     text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)

    def started(self) -> None:
        self.lines += wait_banner(self.proc).splitlines()
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def info(self) -> runfile.RunInfo:
        info = runfile.read(self.run_dir)
        assert info is not None, "no run.json"
        return info

    def process(self, name: str) -> runfile.Process:
        return next(p for p in self.info().processes if p.name == name)

    def close(self) -> None:
        if self.proc.poll() is None:
            kill_tree(self.proc)
            self.proc.wait()
        if self.reader.is_alive():
            self.reader.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def answers(p: runfile.Process) -> bool:
    if p.role == "nats":
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", p.port)) == 0
    try:
        with urllib.request.urlopen(f"{p.url}/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


@dataclass
class Peer:
    """One user's device that reconnects through ``/v1/place`` with its cursor whenever it is dropped."""

    api: Api
    http: aiohttp.ClientSession
    token: str
    device: Device | None = None
    cursor: str | None = None
    received: set[int] = field(default_factory=set)
    duplicates: int = 0  # within one connection: a bug (after a reconnect, a re-send is allowed)
    connects: int = 0

    async def connected(self) -> Device:
        if self.device is not None and not self.device.closed.done():
            return self.device
        await self.drop()
        while True:
            try:
                place = await self.api.call("GET", "/v1/place", self.token)
                for url in [place["node"]["url"], *(f["url"] for f in place.get("fallbacks", []))]:
                    device = Device(self.http, url, self.token)
                    try:
                        await device.connect(cursor=self.cursor)
                    except TROUBLE:
                        continue
                    self.device, self.connects = device, self.connects + 1
                    return device
            except TROUBLE:
                pass
            await asyncio.sleep(0.2)  # polling: discovery or a node is still coming back

    async def drop(self) -> None:
        if self.device is not None:
            self.cursor = self.device.acked_cursor or self.cursor
            self.received |= set(self.device.messages)
            self.duplicates += self.device.duplicates
            await self.device.close()
            self.device = None


async def send_until(peer: Peer, conv: str, stop: asyncio.Event, acked: dict[str, int]) -> None:
    """Send one message after the other, each retried with its cid until acked (the node de-duplicates)."""
    n = 0
    while not stop.is_set():
        n += 1
        cid = f"m{n}"
        while True:
            device = await peer.connected()
            try:
                acked[cid] = int((await device.send(conv, f"hello {n}", cid=cid))["id"])
                break
            except TROUBLE:
                await peer.drop() if device.closed.done() else await asyncio.sleep(0.2)
        await asyncio.sleep(0.02)  # the traffic's pace


async def receive_until(peer: Peer, stop: asyncio.Event) -> None:
    while not stop.is_set():
        device = await peer.connected()
        await asyncio.wait([device.closed, asyncio.ensure_future(stop.wait())], return_when=asyncio.FIRST_COMPLETED)


async def befriend(api: Api) -> tuple[str, str, str]:
    users, tokens = [], []
    for name in ("alice", "bob"):
        users.append((await api.signup(name, PASSWORD))["user"]["id"])
        tokens.append((await api.login(name, PASSWORD))["token"])
    for me, other in ((0, 1), (1, 0)):
        await api.call("POST", "/v1/friends", tokens[me], {"user_id": users[other]})
    conv = (await api.call("POST", "/v1/conversations", tokens[0], {"user_id": users[1]}))["conversation"]["id"]
    return tokens[0], tokens[1], conv


async def history(api: Api, token: str, conv: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        params = {"order": "asc", "limit": 100, **({"after": out[-1]["id"]} if out else {})}
        page = await api.call("GET", f"/v1/conversations/{conv}/messages", token, params=params)
        out += page["messages"]
        if not page["more"]:
            return out


async def kill_and_wait(up: Up, name: str, acked: dict[str, int], sig: signal.Signals = signal.SIGKILL) -> None:
    """kill -9 one process (or drain a node: SIGTERM); it is started again (run.json: new pid, one more
    restart) and answers, and messages are acked again afterwards."""
    before = up.process(name)
    os.kill(before.pid, sig)

    def back() -> runfile.Process:
        now = up.process(name)
        assert now.pid != before.pid and now.restarts == before.restarts + 1, now
        assert answers(now), f"{name} does not answer yet"
        return now

    await eventually(lambda: asyncio.to_thread(back), what=f"{name} started again", timeout=60, every=0.2)
    count = len(acked)
    await eventually(lambda: len(acked) >= count + 5, what=f"messages acked again after killing {name}",
                     timeout=60, every=0.2)


async def test_every_process_killed_under_traffic_comes_back_and_nothing_acked_is_lost(tmp_path, http):
    up = Up(tmp_path / "run")
    try:
        await asyncio.to_thread(up.started)
        api = Api(f"http://127.0.0.1:{up.ports['api']}", http)
        info = up.info()
        assert info.url("api") == api.base and info.url("cluster_page") == f"{info.url('discovery')}/cluster"
        assert info.url("nats") == f"nats://127.0.0.1:{up.ports['nats']}" and info.up_pid == up.proc.pid
        assert sorted(p.role for p in info.processes) == ["api", "archiver", "discovery", "nats", "node", "node",
                                                          "presence"]
        alice_token, bob_token, conv = await befriend(api)
        alice, bob = Peer(api, http, alice_token), Peer(api, http, bob_token)
        stop, acked = asyncio.Event(), {}
        traffic = [asyncio.ensure_future(send_until(alice, conv, stop, acked)),
                   asyncio.ensure_future(receive_until(bob, stop))]
        await eventually(lambda: len(acked) >= 5, what="traffic flowing", timeout=30)
        for name in ("node1", "node2", "api", "discovery", "archiver", "presence", "nats"):
            await kill_and_wait(up, name, acked)
            assert not any(t.done() for t in traffic), [t.exception() for t in traffic if t.done()]
        await kill_and_wait(up, "node1", acked, signal.SIGTERM)  # drains, exits 0: started again at once
        assert "node1 drained and stopped; starting it again in 0.0 s (restart 2" in up.output
        stop.set()
        await asyncio.gather(*traffic)
        ids = set(acked.values())
        bob_device = await bob.connected()  # with his cursor: what he missed comes now
        await eventually(lambda: ids <= bob.received | set(bob_device.messages), timeout=30,
                         what="bob has every acked message")
        await bob.drop()
        await alice.drop()
        assert bob.duplicates == 0 and alice.connects >= 2 and bob.connects >= 2
        stored = await eventually(lambda: _archived(api, bob_token, conv, ids), timeout=30,
                                  what="every acked message in history")
        assert sorted(m["id"] for m in stored) == sorted(ids)  # each once: resends were de-duplicated
        assert "restart 1" in up.output and "killed by SIGKILL" in up.output
        up.proc.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(up.proc.wait, 30) == 0
        assert not runfile.path_in(up.run_dir).exists()
    finally:
        up.close()


async def _archived(api: Api, token: str, conv: str, ids: set[int]) -> list[dict[str, Any]]:
    stored = await history(api, token, conv)
    assert ids <= {m["id"] for m in stored}, f"missing {sorted(ids - {m['id'] for m in stored})[:10]}"
    return stored


def take_port(port: int) -> socket.socket | None:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        s.listen()
        return s
    except OSError:
        s.close()
        return None


def kill_and_take_port(up: Up, name: str) -> socket.socket:
    """kill -9 ``name`` and listen on its port before its restart (0.5 s later) does; if the restart
    wins the race, again."""
    port = up.process(name).port
    for _ in range(3):
        victim = psutil.Process(up.process(name).pid)
        victim.kill()
        victim.wait(5)
        try:
            return eventually_sync(lambda: take_port(port), what=f"{name}'s port free", timeout=2, every=0.01)
        except AssertionError:  # its restart listens there already
            old = victim.pid
            eventually_sync(lambda old=old: up.process(name).pid != old, what=f"{name} restarted", timeout=10)
    raise AssertionError(f"could not take {name}'s port {port}")


def test_a_process_that_keeps_crashing_stops_parley_up_with_its_name_and_log(tmp_path):
    """The presence worker is killed and its port taken: every restart fails to listen and exits."""
    up = Up(tmp_path / "run", "--nodes", "1")
    taken: socket.socket | None = None
    try:
        up.started()
        children = psutil.Process(up.proc.pid).children(recursive=True)
        taken = kill_and_take_port(up, "presence")
        assert up.proc.wait(timeout=90) == 1
        assert "presence keeps crashing (5 exits in" in up.output, up.output
        assert f"See its log: {up.run_dir / 'logs' / 'presence.log'}" in up.output
        assert "address already in use" in (up.run_dir / "logs" / "presence.log").read_text().lower()
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == [], f"stray processes: {alive}"
        assert not runfile.path_in(up.run_dir).exists()
    finally:
        if taken is not None:
            taken.close()
        up.close()
