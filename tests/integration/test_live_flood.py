"""Flood and spam rules in live rooms end to end (docs/adr/0020): a node at the default rules refuses a
flood, escalates it to a time-out that every node enforces, counts it in its metrics and writes it to the
audit log; moderators lift, ban and set slow mode over HTTP and every node obeys within a second. The
session's nodes run with the rates out of the way (``parley.tools.cluster.FLOOD_OFF``); time-outs, bans and
slow mode are shared state, so those nodes enforce them all the same."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from parley.tools.client import ApiError, Device
from parley.tools.cluster import flood_defaults

from tests.integration.conftest import Person
from tests.integration.test_live import join, live_send, new_room
from tests.integration.test_metrics import value
from tests.poll import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def strict_url(cluster) -> Iterator[str]:
    """A node with the default flood rules (new accounts: 2 messages per 10 s, no links)."""
    url = cluster.start_extra_node("flood-node", **flood_defaults())
    try:
        yield url
    finally:
        if "flood-node" in cluster.roles:
            cluster.stop("flood-node")


async def device_at(person: Person, url: str) -> Device:
    login = await person.login()
    dev = Device(person.world.http, url, login["token"])
    await dev.connect()
    await dev.synced.wait()
    person.devices.append(dev)
    return dev


async def refusal(dev: Device, room: str, body: str) -> dict[str, Any]:
    with pytest.raises(ApiError) as refused:
        await live_send(dev, room, body)
    return dict(refused.value.body)


async def refused_with(dev: Device, room: str, body: str, code: str) -> bool:
    try:
        await live_send(dev, room, body)
    except ApiError as err:
        return bool(err.body["code"] == code)
    return False


async def accepted(dev: Device, room: str, body: str) -> bool:
    try:
        await live_send(dev, room, body)
    except ApiError:
        return False
    return True


def summed(page: str, name: str, **labels: str) -> float:
    """A metric's samples with these labels, added up (the room label may be the room's or ``_other``)."""
    total = 0.0
    for line in page.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def metrics_of(world, url: str) -> str:
    async with world.http.get(url.replace("ws://", "http://").removesuffix("/ws") + "/metrics") as resp:
        assert resp.status == 200
        return await resp.text()


async def test_a_flood_is_refused_escalates_to_a_time_out_every_node_enforces_and_shows_in_metrics(
        world, strict_url):
    owner, alice, bob = await world.person("fown"), await world.person("flooder"), await world.person("fview")
    room = await new_room(owner)
    flooder, elsewhere = await device_at(alice, strict_url), await alice.device(node=0)
    watcher = await bob.device(node=1)
    for dev in (flooder, elsewhere, watcher):
        await join(dev, room)
    await live_send(flooder, room, "first take on the match")
    await live_send(flooder, room, "what a save by the keeper")  # a new account: 2 per 10 s
    refused = await refusal(flooder, room, "and another thing entirely")
    assert refused["code"] == "flooding" and refused["retry_after_ms"] > 0, refused
    for i in range(2):  # the third warning within the window is a time-out
        await refusal(flooder, room, f"still talking, attempt number {i}")
    timed_out = await refusal(flooder, room, "let me speak")
    assert timed_out["code"] == "timed_out" and timed_out["retry_after_ms"] > 60_000, timed_out
    # the time-out is shared: another node, whose rates are off, refuses it too (within a second)
    await eventually(lambda: refused_with(elsewhere, room, "hello from my phone", "timed_out"),
                     what="the other node enforces the time-out", timeout=5)
    page = await metrics_of(world, strict_url)
    # two warnings, then the third offence is the time-out
    assert value(page, "parley_live_flood_decisions_total", rule="flooding", action="warning") >= 2
    assert value(page, "parley_live_flood_decisions_total", action="timeout") >= 1
    assert value(page, "parley_live_flood_decisions_total", rule="timed_out", action="refused") >= 1
    # and in the room's own series (ADR 0021), counted by the screen's code with no flood-specific code
    assert summed(page, "parley_live_room_blocked_total", reason="flooding") >= 2
    assert summed(page, "parley_live_room_blocked_total", reason="timed_out") >= 1
    # moderators see it: in force, and in the audit log with the rule
    in_force = await world.api.call("GET", f"/v1/live/{room}/moderation", owner.token)
    assert [t["user_id"] for t in in_force["timeouts"]] == [alice.id]
    audit = (await world.api.call("GET", f"/v1/live/{room}/audit", owner.token))["entries"]
    assert [(e["by"], e["action"]) for e in audit if e["user"] == alice.id][-1] == ("auto", "timeout"), audit
    # the owner lifts it; every node lets her speak again
    await world.api.call("DELETE", f"/v1/live/{room}/timeouts/{alice.id}", owner.token)
    await eventually(lambda: accepted(elsewhere, room, "sorry, got carried away"),
                     what="the lifted time-out ends on every node", timeout=5)
    # nothing refused reached the room: the watcher saw exactly what was accepted

    def bodies() -> list[str]:
        return [f["body"] for f in watcher.events if f.get("type") == "live_msg" and f.get("room") == room]

    await watcher.wait_for(lambda: len(bodies()) >= 3)
    assert bodies() == ["first take on the match", "what a save by the keeper", "sorry, got carried away"]


async def test_duplicates_and_links_are_refused_and_moderators_skip_the_rules(world, strict_url):
    owner, carol = await world.person("dupown"), await world.person("duper")
    room = await new_room(owner)
    c, o = await device_at(carol, strict_url), await device_at(owner, strict_url)
    await join(c, room)
    await join(o, room)
    await live_send(c, room, "GOAL GOAL GOAL")
    assert (await refusal(c, room, "goal goal  goal"))["code"] == "duplicate"
    assert (await refusal(c, room, "see https://spam.example/win"))["code"] == "links"  # a new account
    for _ in range(6):  # the owner moderates: no rate, no duplicate rule
        await live_send(o, room, "hold on everyone")


async def test_slow_mode_and_bans_set_by_a_moderator_apply_on_every_node(world, strict_url):
    owner, dan, mod = await world.person("slowown"), await world.person("slowpoke"), await world.person("slowmod")
    room = await new_room(owner)
    await world.api.call("PUT", f"/v1/live/{room}/moderators/{mod.id}", owner.token)
    d0, d1 = await dan.device(node=0), await dan.device(node=1)
    for dev in (d0, d1):
        await join(dev, room)
    await world.api.call("PUT", f"/v1/live/{room}/slow_mode", mod.token, {"seconds": 600})
    # every node has it within a second; the last-send times are per node (ADR 0020), so each node's first
    # message after it passes and its next is refused
    for i, dev in enumerate((d0, d1)):
        await eventually(lambda dev=dev, i=i: refused_with(dev, room, f"talking on node {i}", "slow_mode"),
                         what="slow mode on every node", timeout=5)
    refused = await refusal(d1, room, "and again")
    assert refused["code"] == "slow_mode" and 500_000 < refused["retry_after_ms"] <= 600_001, refused
    await world.api.call("PUT", f"/v1/live/{room}/slow_mode", mod.token, {"seconds": 0})
    await eventually(lambda: accepted(d1, room, "slow mode is off"), what="slow mode ends", timeout=5)
    await world.api.call("PUT", f"/v1/live/{room}/bans/{dan.id}", mod.token)
    for dev in (d0, d1):
        await eventually(lambda dev=dev: refused_with(dev, room, "am I banned?", "banned"),
                         what="every node refuses the banned user", timeout=5)
    with pytest.raises(ApiError) as stranger:
        await world.api.call("PUT", f"/v1/live/{room}/bans/{owner.id}", dan.token)
    assert stranger.value.body["code"] == "not_moderator"
    audit = (await world.api.call("GET", f"/v1/live/{room}/audit", owner.token))["entries"]
    assert [(e["by"], e["action"]) for e in audit] == [(mod.id, "slow_mode"), (mod.id, "slow_mode"),
                                                      (mod.id, "ban")], audit
