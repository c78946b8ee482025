"""Graceful drain under traffic: every client of the drained node moves, resumes from its cursor, and
no message is lost or delivered twice; the node leaves placement at once and exits by itself."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import aiohttp
import pytest
from parley.tools.client import Device

from tests.poll import eventually

pytestmark = pytest.mark.integration

DRAIN = dict(drain_spread_s=1.0, drain_timeout_s=10.0)


class Mover:
    """A device that follows the protocol's reconnect rules (docs/protocol.md §15): on ``moved`` it
    connects to the named node at once with its cursor, resends what was not acked, and keeps every
    message it was sent, across connections, in the order it got them."""

    def __init__(self, world: Any, person: Any, url: str) -> None:
        self.world, self.person, self.url = world, person, url
        self.device_id = person.logins[-1]["device_id"]
        self.order: list[int] = []
        self.nodes: list[str] = []
        self.moves: list[dict[str, Any]] = []
        self.close_codes: list[int | None] = []
        self.dev: Device | None = None
        self.cursor: str | None = None
        self.ready = asyncio.Event()
        self.stopping = False

    async def connect(self, url: str) -> None:
        login = await self.person.login(device_id=self.device_id)
        self.dev = Device(self.world.http, url, login["token"])
        await self.dev.connect(cursor=self.cursor)
        self.nodes.append(self.dev.welcome["node"])
        await self.dev.synced.wait()
        self.ready.set()

    async def follow(self) -> None:
        """Collect messages; on close, reconnect where the node said (or anywhere discovery says)."""
        while True:
            dev = self.dev
            assert dev is not None
            code, _ = await dev.closed
            self.close_codes.append(code)
            self.order += dev.order
            self.cursor = dev.cursor  # the drain offered a last cursor before ``moved``: nothing comes twice
            self.ready.clear()
            if self.stopping:  # we closed it: the test is over
                return
            if dev.moved is not None:
                self.moves.append(dev.moved)
            target = (dev.moved or {}).get("node")
            url = target["url"] if target else (await self.place())
            await self.connect(url)

    async def place(self) -> str:
        token = self.person.logins[-1]["token"]
        out = await self.world.api.call("GET", "/v1/place", token)
        return str(out["node"]["url"])

    async def send(self, conv: str, body: str, cid: str) -> int:
        """Send until acked, resending the same cid on the next connection (duplicates are harmless)."""
        while True:
            await self.ready.wait()
            dev = self.dev
            assert dev is not None
            try:
                ack = await asyncio.wait_for(dev.send(conv, body, cid=cid), timeout=15)
                return int(ack["id"])
            except (ConnectionError, RuntimeError, aiohttp.ClientError, TimeoutError):
                await asyncio.sleep(0.02)  # a client's resend backoff; ``ready`` is what it waits for

    def all_messages(self) -> list[int]:
        return self.order + (self.dev.order if self.dev and not self.dev.closed.done() else [])

    def duplicates(self) -> int:
        ids = self.all_messages()
        return len(ids) - len(set(ids))


async def drain_cli(cluster: Any, node_id: str) -> tuple[int, str]:
    env = {**os.environ, **cluster.settings.as_env()}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "parley", "node", "drain", node_id, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode()


async def run_traffic(world: Any, cluster: Any, url: str, pairs: int, drain: Any) -> None:
    """``pairs`` sender/receiver pairs with every device on the node at ``url`` (the one drained),
    plus a witness on node2; senders send all through the drain; ``drain()`` starts it."""
    people = [await world.person("d") for _ in range(2 * pairs)]
    convs = [await people[2 * i].befriend(people[2 * i + 1]) for i in range(pairs)]
    movers = [Mover(world, p, url) for p in people]
    for m in movers:
        await m.connect(url)
    followers = [asyncio.get_running_loop().create_task(m.follow()) for m in movers]
    sent: list[list[int]] = [[] for _ in range(pairs)]

    async def sender(i: int) -> None:
        for n in range(60):
            sent[i].append(await movers[2 * i].send(convs[i], f"m{n}", cid=f"p{i}-{n}"))
            await asyncio.sleep(0.03)  # the scenario, not a wait: a steady stream through the drain

    senders = [asyncio.get_running_loop().create_task(sender(i)) for i in range(pairs)]
    await eventually(lambda: all(len(s) >= 5 for s in sent), what="traffic flowing from every sender")
    await drain()
    deadline = asyncio.get_running_loop().time() + 60
    waiting = set(senders)
    while waiting:  # until every sender is done, failing fast if a follower fails to reconnect
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, "senders did not finish"
        done, _ = await asyncio.wait([*waiting, *followers], timeout=left, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
            assert task in waiting, "a device stopped following its moves"
        waiting -= done
    for m in movers:  # every device, sender and receiver, ends up with its conversation's every message
        i = movers.index(m) // 2
        await asyncio.wait_for(m.ready.wait(), timeout=15)
        assert m.dev is not None
        await m.dev.wait_for(lambda m=m, i=i: set(sent[i]) <= set(m.all_messages()), timeout=15)
    for m in movers:
        m.stopping = True
        await m.dev.close()  # type: ignore[union-attr]
    await asyncio.gather(*followers)

    for idx, m in enumerate(movers):
        i = idx // 2
        assert m.all_messages() == sent[i], f"device {idx}: lost or reordered messages"
        assert m.duplicates() == 0
        assert len(sent[i]) == 60 and len(set(sent[i])) == 60  # one id per message, none sent twice
        assert m.moves, f"device {idx} was not moved"
        assert 4010 in m.close_codes
        assert all(mv["node"]["id"] in ("node1", "node2") for mv in m.moves)
        assert m.nodes[-1] in ("node1", "node2")
    landed = {m.nodes[-1] for m in movers}
    assert landed == {"node1", "node2"}, "clients were spread over the remaining nodes"


async def test_drain_command_moves_every_client_without_loss(world, cluster):
    url = cluster.start_extra_node("drainee", **DRAIN)
    outcome: dict[str, Any] = {}

    async def drain() -> None:
        outcome["cli"] = asyncio.get_running_loop().create_task(drain_cli(cluster, "drainee"))

    try:
        await run_traffic(world, cluster, url, pairs=6, drain=drain)
        code, out = await outcome["cli"]
        assert code == 0, out
        assert "drainee is draining: moving 12 connections" in out
        assert "drained and left the cluster" in out
        assert cluster.wait_exit("drainee", timeout=15) == 0
        assert "drained: 0 connections left" in cluster.log_text("drainee")
    finally:
        if "drainee" in cluster.roles:
            cluster.kill("drainee")


async def test_sigterm_drains_and_placement_skips_the_node(world, cluster, http):
    url = cluster.start_extra_node("termed", **DRAIN)

    async def drain() -> None:
        cluster.terminate("termed")

        async def placement_skips_it() -> bool:
            async with http.get(f"{cluster.discovery_url}/v1/nodes") as r:
                nodes = {n["id"]: n for n in (await r.json())["nodes"]}
            assert nodes["termed"]["draining"] and not nodes["termed"]["eligible"], nodes["termed"]
            return True

        await eventually(placement_skips_it, every=0.05, what="discovery showing the node draining")
        async with http.get(url.replace("ws://", "http://").replace("/ws", "/readyz")) as r:
            assert r.status == 503  # a load balancer stops sending it traffic
        # a client that connects now is moved on at once
        late = await world.person("late")
        dev = Device(http, url, late.token)
        with pytest.raises(ConnectionError):
            await dev.connect()
        assert dev.ws is not None and dev.ws.close_code == 4010

    try:
        await run_traffic(world, cluster, url, pairs=4, drain=drain)
        assert cluster.wait_exit("termed", timeout=15) == 0
    finally:
        if "termed" in cluster.roles:
            cluster.kill("termed")


async def test_drain_of_an_unknown_node_says_so(cluster):
    code, out = await drain_cli(cluster, "nosuchnode")
    assert code == 1
    assert "no node 'nosuchnode' answered" in out
