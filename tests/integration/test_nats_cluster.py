"""Parley on a 3-server JetStream cluster (R3): the server leading the message stream is killed under traffic.

Several devices send DMs, resending on ``bus_unavailable`` as a client does. ``kill -9`` of the stream's
leader stalls sends for an election; then they resume. Nothing acknowledged is lost, nothing is shown
twice (receivers' frames and the store), clients only ever see the documented retryable error, the
logs have no traceback, and the killed server, started again, rejoins and catches up. How long the
stall lasts is measured by ``loadtest/leader_kill.py``, not asserted here.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator

import nats
import pytest
from parley.loadtest.harness.chatter import Chatter
from parley.tools import busctl

from parley.bus.connection import connect_options
from parley.shards import home_for, stream_of
from tests.integration.conftest import World
from tests.poll import eventually

pytestmark = pytest.mark.integration

PAIRS = 4


@pytest.fixture
async def world3(cluster3, http) -> AsyncIterator[World]:
    w = World(cluster3, http)
    yield w
    await w.close()


async def placeable(world: World) -> None:
    """Until discovery places clients again: a fault in an earlier test (a killed server leading the
    ``nodes`` bucket) can leave the nodes' registry entries expired until their next beat lands."""
    async def nodes() -> bool:
        async with world.http.get(world.cluster.discovery_url + "/v1/nodes") as resp:
            listed = (await resp.json())["nodes"]
        return sum(1 for n in listed if n["eligible"]) == len(world.cluster.node_ports)

    await eventually(nodes, what="discovery lists every node as eligible", timeout=60)


async def chatters(world: World) -> list[Chatter]:
    await placeable(world)
    out = []
    for i in range(PAIRS):
        a, b = await world.person("ka"), await world.person("kb")
        conv = await a.befriend(b)
        sender, receiver = await a.device(node=i % 2), await b.device(node=(i + 1) % 2)
        out.append(Chatter(sender, receiver, conv))
    return out


def stream_of_conv(cluster, conv: str) -> str:
    """The shard stream a conversation lives in."""
    return stream_of(cluster.settings.stream_name, home_for(conv, cluster.settings.shards))


async def stream_info(cluster, name: str | None = None):
    nc = await nats.connect(**connect_options(cluster.settings), max_reconnect_attempts=2)
    try:
        return await nc.jetstream().stream_info(name or stream_of(cluster.settings.stream_name, 0))
    finally:
        await nc.close()


async def under_traffic(world: World, cluster, fault) -> tuple[list[Chatter], str]:
    """Chatters sending while ``fault(leader)`` runs on the server leading the first chatter's shard stream;
    returns them (and that stream) once every sender was acknowledged again after it, with the checks that
    hold whatever the fault."""
    everyone = await chatters(world)
    busy = stream_of_conv(cluster, everyone[0].conv)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(c.run(stop)) for c in everyone]
    try:
        await eventually(lambda: all(len(c.acked) >= 5 for c in everyone), what="traffic flowing", timeout=30)
        leader = (await stream_info(cluster, busy)).cluster.leader
        assert leader in {m.name for m in cluster.nats_servers.members}
        at = time.monotonic()
        await fault(leader)
        await eventually(lambda: all(c.acked_after(at) >= 10 for c in everyone), timeout=120, every=0.2,
                         what=f"every sender acknowledged again after the fault on {leader}")
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    for t in tasks:
        t.result()  # a sender that failed (an error other than bus_unavailable) fails the test here
    await nothing_lost_nothing_twice(everyone)
    refusals = sum((c.refusals for c in everyone), Counter())
    assert set(refusals) <= {"bus_unavailable", "timeout"}, refusals
    assert all(e.get("code") == "bus_unavailable" for c in everyone for e in c.sender.errors), "never internal"
    assert [c.name for c in cluster.exited() if not c.name.startswith("nats")] == [], "a process died"
    tracebacks = [line for line in cluster.errors_in_logs() if "Traceback" in line]
    assert tracebacks == []
    return everyone, busy


async def nothing_lost_nothing_twice(everyone: list[Chatter]) -> None:
    for c in everyone:
        sent = {id: body for _, id, body in c.acked}
        assert len(set(sent.values())) == len(sent), "each acked message has one id"
        try:
            await c.receiver.wait_for(lambda c=c, sent=sent: set(sent) <= set(c.receiver.messages), timeout=60)
        except TimeoutError:
            raise AssertionError(await _missing(c, sent)) from None
        assert c.receiver.duplicates == 0
        shown = [c.receiver.messages[i]["body"] for i in c.receiver.order if c.receiver.messages[i]["conv"] == c.conv]
        assert sorted(Counter(shown).values())[-1] == 1, "no message shown twice (under two ids)"
        assert c.receiver.order == sorted(c.receiver.order)
        assert set(shown) == set(sent.values())


async def _missing(c: Chatter, sent: dict[int, str]) -> str:
    """What a receiver still misses live (which of the acked ids, the last acked and received), and whether a
    ``sync`` from the very beginning brings it: a message stored but not delivered live, or not stored."""
    missing = sorted(set(sent) - set(c.receiver.messages))
    held = sorted(i for i, m in c.receiver.messages.items() if m["conv"] == c.conv)
    said = (f"missing live {missing} of {len(sent)} acked (last acked {max(sent)}, last received "
            f"{held[-1] if held else None}, receiver closed {c.receiver.closed.done()})")
    await c.receiver.send_frame({"type": "sync"})
    try:
        await c.receiver.wait_for(lambda: set(sent) <= set(c.receiver.messages), timeout=30)
    except TimeoutError:
        return said + f"; after a sync still missing {sorted(set(sent) - set(c.receiver.messages))}"
    return said + "; a sync brought them"


async def test_killing_the_stream_leader_under_traffic_loses_nothing_and_shows_nothing_twice(world3, cluster3):
    servers = cluster3.nats_servers
    killed: list[str] = []

    async def kill(leader: str) -> None:
        servers.kill(leader)
        killed.append(leader)

    try:
        everyone, busy = await under_traffic(world3, cluster3, kill)
    finally:
        for name in killed:
            servers.start_member(name)
    leader = killed[0]

    async def rejoined() -> bool:
        info = await stream_info(cluster3, busy)
        peers = {p.name: p for p in info.cluster.replicas or []}
        return info.cluster.leader == leader or (leader in peers and peers[leader].current
                                                 and not peers[leader].offline)

    await eventually(rejoined, what=f"{leader} back as a current replica of the stream", timeout=60,
                     ignoring=(nats.errors.Error, OSError))

    await eventually(lambda: _archived(cluster3), what="the archiver caught up", timeout=60,
                     ignoring=(nats.errors.Error,))
    for c in everyone:
        stored = sorted((m["id"], m["body"]) for m in await all_history(world3, c))
        assert stored == sorted((id, body) for _, id, body in c.acked), "the store has each acked message once"


async def all_history(world: World, c: Chatter) -> list[dict[str, object]]:
    """Every message of the conversation, oldest first, page by page."""
    out: list[dict[str, object]] = []
    while True:
        params = {"limit": 200, "order": "asc", **({"after": out[-1]["id"]} if out else {})}
        page = await world.api.call("GET", f"/v1/conversations/{c.conv}/messages", token_of(world, c), params=params)
        out += page["messages"]
        if not page["more"]:
            return out


def token_of(world: World, c: Chatter) -> str:
    return next(p.token for p in world.people if any(d is c.sender for d in p.devices))


async def _archived(cluster) -> bool:
    nc = await nats.connect(**connect_options(cluster.settings), max_reconnect_attempts=2)
    try:
        for shard in range(cluster.settings.shards):
            info = await nc.jetstream().consumer_info(stream_of(cluster.settings.stream_name, shard), "archiver")
            if (info.num_pending or 0) or (info.num_ack_pending or 0):
                return False
        return True
    finally:
        await nc.close()


async def test_parley_bus_status_shows_r3_streams_and_buckets_with_a_leader(cluster3):
    nc = await nats.connect(**connect_options(cluster3.settings))
    lines: list[str] = []
    try:
        await busctl.status(nc, say=lines.append)
    finally:
        await nc.close()
    text = "\n".join(lines)
    for name in ("MSG_0", "MSG_3", "KV_nodes", "KV_presence", "KV_last_seen"):
        assert f"{name}: R3" in text, text
    assert "leader nats-" in text and "consumer archiver" in text


async def test_a_planned_restart_of_the_leaders_server_steps_down_and_goes_lame_duck_without_loss(world3, cluster3):
    servers = cluster3.nats_servers
    restarted: list[str] = []

    async def planned(leader: str) -> None:
        nc = await nats.connect(**connect_options(cluster3.settings))
        try:
            handed = await servers.planned_restart(leader, nc)
        finally:
            await nc.close()
        assert handed, "it led at least the busy shard's stream"
        restarted.append(leader)

    await under_traffic(world3, cluster3, planned)
    assert servers.member(restarted[0]).running(), "started again after its lame-duck stop"


def bus_command(cluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")},
           "PARLEY_NATS_URL": cluster.settings.nats_url,
           "PARLEY_RUN_DIR": str(cluster.root)}  # where the command finds the ops user's credentials
    return subprocess.run([sys.executable, "-m", "parley", "bus", *args], env=env, capture_output=True, text=True,
                          timeout=60)


async def test_parley_bus_stepdown_moves_a_streams_leader_and_every_stream_off_a_server(cluster3):
    before = (await stream_info(cluster3)).cluster.leader
    out = bus_command(cluster3, "stepdown", "MSG_0")
    assert out.returncode == 0 and f"leader {before} stepped down" in out.stdout, out.stdout + out.stderr

    async def moved() -> str | None:
        leader = (await stream_info(cluster3)).cluster.leader
        return leader if leader not in (None, before) else None

    server = await eventually(moved, what="MSG has a new leader", timeout=10, ignoring=(nats.errors.Error,))
    assert f"{server} leads it now" in out.stdout, out.stdout  # the command waited for another leader
    out = bus_command(cluster3, "stepdown", "--server", server)
    assert out.returncode == 0 and f"{server} leads no stream now" in out.stdout, out.stdout + out.stderr
    nc = await nats.connect(**connect_options(cluster3.settings))
    try:
        leaders = {i.config.name: i.cluster.leader for i in await nc.jetstream().streams_info()}
    finally:
        await nc.close()
    assert server not in leaders.values(), leaders
