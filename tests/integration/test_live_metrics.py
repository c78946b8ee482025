"""Live-room monitoring on a real cluster (docs/adr/0021): per-room metrics after live traffic (in, out,
masked, blocked by reason, delivery latency), the ``_other`` aggregation past the top K rooms and a room
leaving the top losing its series, and the viewer count across two nodes (``live_viewers``)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from parley.tools.client import ApiError, Device

from tests.integration.conftest import Person, World
from tests.integration.test_live import frames, join, live_ids, live_send, new_room
from tests.integration.test_metrics import metrics_page
from tests.poll import eventually

pytestmark = pytest.mark.integration
SAMPLE = re.compile(r"^(parley_live_room_[a-z_]+)\{(.*)\} (\S+)$")


def room_samples(page: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every ``parley_live_room_*`` sample: (name, labels) → value."""
    out = {}
    for line in page.splitlines():
        if m := SAMPLE.match(line):
            out[(m.group(1), frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2))))] = float(m.group(3))
    return out


def get(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def labelled_rooms(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> set[str]:
    return {v for _, labels in samples for k, v in labels if k == "room"}


async def scrape(world: World, port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return room_samples(await metrics_page(world, port))


def shown(dev: Device, room: str) -> int | None:
    """The viewer count the device was last told: ``live_viewers``, else its ``live_joined``."""
    told = frames(dev, "live_viewers", room) or frames(dev, "live_joined", room)
    return told[-1]["viewers"] if told else None


async def test_viewers_are_counted_across_nodes_and_each_node_says_so(world, cluster):
    owner, alice, bob = await world.person("own"), await world.person("alice"), await world.person("bob")
    room = await new_room(owner)
    a, b, c = await alice.device(node=0), await bob.device(node=1), await bob.device(node=1)
    assert (await join(a, room))["viewers"] == 1
    await join(b, room)
    for dev in (a, b):
        await dev.wait_for(lambda dev=dev: shown(dev, room) == 2)
    assert (await join(c, room))["viewers"] == 3  # node 2's own two, node 1's one as last heard
    for dev in (a, b, c):
        await dev.wait_for(lambda dev=dev: shown(dev, room) == 3)

    async def stored(want: int) -> bool:  # one node keeps the total in the live_viewers bucket for the API
        return (await world.api.call("GET", f"/v1/live/{room}", owner.token))["viewers"] == want

    await eventually(lambda: stored(3), what="GET /v1/live/{room} says 3 viewers", timeout=5)
    await b.send_frame({"type": "live_leave", "room": room})
    await c.send_frame({"type": "live_leave", "room": room})
    await a.wait_for(lambda: shown(a, room) == 1)  # node 2 told 0 once and forgot the room
    await eventually(lambda: stored(1), what="GET /v1/live/{room} says 1 viewer", timeout=5)
    told = [f["viewers"] for f in frames(a, "live_viewers", room)]
    assert 2 in told and all(x != y for x, y in zip(told, told[1:], strict=False)), told  # only changes


async def test_a_rooms_traffic_shows_in_its_own_series_on_each_node(world, cluster):
    owner, viewer = await world.person("own"), await world.person("viewer")
    room = await new_room(owner)
    o, v = await owner.device(node=0), await viewer.device(node=1)
    await join(o, room)
    await join(v, room)
    ports = cluster.node_ports[:2]
    entries = [{"word": "gronk", "action": "reject"}, {"word": "blarf", "action": "mask"}]
    await world.api.call("POST", f"/v1/banned-words/rooms/{room}", owner.token, {"entries": entries})

    async def refused() -> bool:
        try:
            await live_send(o, room, "what a GR0NK move")
        except ApiError as err:
            return bool(err.body["code"] == "banned_word")
        return False

    await eventually(refused, what="the owner's node refuses the banned word", timeout=5)
    mark = await live_send(o, room, "everything before me is delivered")  # one sender: in stream order
    for dev in (o, v):
        await dev.wait_for(lambda dev=dev: mark["id"] in live_ids(dev, room))

    async def labelled() -> bool:  # ranked at each scrape: the room has viewers, so it is in the top
        pages = [await scrape(world, p) for p in ports]
        return all(get(page, "parley_live_room_viewers", room=room) == 1 for page in pages)

    await eventually(labelled, what="the room labelled on both nodes", timeout=5)
    before = [await scrape(world, p) for p in ports]
    with pytest.raises(ApiError) as blocked:
        await live_send(o, room, "gronk!")
    assert blocked.value.body["code"] == "banned_word"
    sent = [await live_send(o, room, "plain"), await live_send(o, room, "so blarf")]
    assert [s["masked"] for s in sent] == [False, True]
    for dev in (o, v):
        await dev.wait_for(lambda dev=dev: {s["id"] for s in sent} <= set(live_ids(dev, room)))
    after = [await scrape(world, p) for p in ports]

    def grew(i: int, name: str, **labels: str) -> float:
        return get(after[i], name, room=room, **labels) - get(before[i], name, room=room, **labels)

    assert grew(0, "parley_live_room_messages_in_total") == 2
    assert grew(0, "parley_live_room_masked_total") == 1
    assert grew(0, "parley_live_room_blocked_total", reason="banned_word") == 1
    assert grew(1, "parley_live_room_messages_in_total") == 0  # accepted where sent: node 1
    for i in (0, 1):  # one viewer on each node got both messages; the latency observed once per message
        assert grew(i, "parley_live_room_messages_out_total") == 2
        assert grew(i, "parley_live_room_delivery_seconds_count") == 2
        assert grew(i, "parley_live_room_delivery_seconds_bucket", le="+Inf") == 2


async def extra_device(world: World, person: Person, url: str) -> Device:
    login = await person.login()
    dev = Device(world.http, url, login["token"])
    await dev.connect()
    await dev.synced.wait()
    person.devices.append(dev)
    return dev


async def test_past_the_top_k_rooms_are_summed_under_other_and_a_room_leaving_the_top_loses_its_series(
        world, cluster):
    url = cluster.start_extra_node("topk-node", live_metrics_top_rooms=2)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    try:
        owner, fan = await world.person("own"), await world.person("fan")
        r1, r2, r3, r4 = [await new_room(owner, f"room {i}") for i in range(4)]
        d1, d2, d3 = [await extra_device(world, fan, url) for _ in range(3)]
        for dev, rooms in ((d1, (r1, r2, r3)), (d2, (r1, r2, r4)), (d3, (r1,))):
            for room in rooms:
                await join(dev, room)

        async def ranked() -> dict[Any, float]:
            samples = await scrape(world, port)
            assert labelled_rooms(samples) == {r1, r2, "_other"}, "not ranked yet"
            return samples

        samples = await eventually(ranked, what="the top 2 rooms labelled", timeout=5)
        assert [get(samples, "parley_live_room_viewers", room=r) for r in (r1, r2, "_other")] == [3, 2, 2]
        before = get(samples, "parley_live_room_messages_in_total", room="_other")
        out_before = get(samples, "parley_live_room_messages_out_total", room="_other")
        sent = await live_send(d1, r3, "in a small room")
        await d1.wait_for(lambda: sent["id"] in live_ids(d1, r3))
        samples = await scrape(world, port)
        assert get(samples, "parley_live_room_messages_in_total", room="_other") == before + 1
        assert get(samples, "parley_live_room_messages_out_total", room="_other") == out_before + 1
        assert r3 not in labelled_rooms(samples)
        for dev in (d1, d2, d3):
            await dev.send_frame({"type": "live_leave", "room": r1})
            await dev.wait_for(lambda dev=dev: frames(dev, "live_left", r1) != [])

        async def reranked() -> dict[Any, float]:
            samples = await scrape(world, port)
            assert r1 not in labelled_rooms(samples), "r1 still labelled"
            return samples

        samples = await eventually(reranked, what="r1 out of the top", timeout=5)
        assert len(labelled_rooms(samples) & {r3, r4}) == 1 and r2 in labelled_rooms(samples)
        assert get(samples, "parley_live_room_viewers", room="_other") == 1
    finally:
        cluster.stop("topk-node")
