"""Live rooms on a real cluster (two nodes, NATS, the archiver, the store): fan-out across nodes, the join's
backlog, the room's state and moderation, deletion and pins, bad input, a slow viewer, and the loss ledger:
every message the room accepted is in its history."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import orjson
import pytest
from parley.tools.client import ApiError, Device

from parley.ids import new_id
from tests.integration.conftest import Person, World
from tests.integration.test_metrics import metrics_page, value
from tests.poll import eventually

pytestmark = pytest.mark.integration
_cids = itertools.count(1)


async def new_room(owner: Person, title: str = "final") -> str:
    room = await owner.world.api.call("POST", "/v1/live", owner.token, {"title": title, "description": "match"})
    assert (room["owner"], room["state"], room["title"]) == (owner.id, "open", title)
    return str(room["id"])


def frames(dev: Device, kind: str, room: str | None = None) -> list[dict[str, Any]]:
    return [f for f in dev.events if f.get("type") == kind and (room is None or f.get("room") == room)]


async def join(dev: Device, room: str) -> dict[str, Any]:
    seen = len(frames(dev, "live_joined", room))
    await dev.send_frame({"type": "live_join", "room": room})
    await dev.wait_for(lambda: len(frames(dev, "live_joined", room)) > seen)
    return frames(dev, "live_joined", room)[-1]


async def live_send(dev: Device, room: str, body: str, cid: str | None = None) -> dict[str, Any]:
    """The ``live_sent`` answer, or ``ApiError`` with the error frame that refused it."""
    cid = cid or f"l{next(_cids)}"
    seen, before = len(dev.errors), len([f for f in frames(dev, "live_sent", room) if f["cid"] == cid])
    await dev.send_frame({"type": "live_send", "room": room, "cid": cid, "body": body})

    def answered() -> dict[str, Any] | None:
        sent = [f for f in frames(dev, "live_sent", room) if f["cid"] == cid][before:]
        failed = [e for e in dev.errors[seen:] if e.get("ref") == cid]
        return sent[-1] if sent else {"error": failed[0]} if failed else None

    await dev.wait_for(lambda: answered() is not None)
    answer = answered()
    assert answer is not None
    if "error" in answer:
        raise ApiError(0, answer["error"])
    return answer


def live_ids(dev: Device, room: str) -> list[int]:
    return [f["id"] for f in frames(dev, "live_msg", room)]


async def history(world: World, person: Person, room: str, **query: Any) -> dict[str, Any]:
    q = "&".join(f"{k}={v}" for k, v in query.items())
    return await world.api.call("GET", f"/v1/live/{room}/messages" + (f"?{q}" if q else ""), person.token)


async def all_history(world: World, person: Person, room: str) -> list[dict[str, Any]]:
    out, before = [], None
    while True:
        page = await history(world, person, room, limit=7, **({"before": before} if before else {}))
        out += page["messages"]
        before = page["next_before"]
        if before is None:
            return out


async def test_viewers_on_two_nodes_see_each_others_messages_and_history_has_every_one(world, cluster):
    owner, alice, bob = await world.person("own"), await world.person("alice"), await world.person("bob")
    room = await new_room(owner)
    a, b = await alice.device(node=0), await bob.device(node=1)
    port = cluster.node_ports[0]
    before = {name: value(await metrics_page(world, port), name)
              for name in ("parley_node_live_messages_in_total", "parley_node_live_messages_out_total")}
    joined = await join(a, room)
    assert joined["meta"]["id"] == room and joined["messages"] == [] and joined["viewers"] == 1
    await join(b, room)
    sent = await asyncio.gather(*(live_send(dev, room, f"{name} {i}") for i in range(15)
                                  for dev, name in ((a, "a"), (b, "b"))))
    ids = {s["id"] for s in sent}
    assert len(ids) == 30 and not any(s["duplicate"] for s in sent)
    for dev in (a, b):
        await dev.wait_for(lambda dev=dev: ids <= set(live_ids(dev, room)))
        assert len(live_ids(dev, room)) == 30  # each once
    senders = {f["id"]: f["from"] for f in frames(b, "live_msg", room)}
    assert {senders[s["id"]] for s in sent} == {alice.id, bob.id}
    resent = await live_send(a, room, "again", cid=sent[0]["cid"])  # a retry with the same cid: stored once
    assert resent["duplicate"] and resent["id"] == sent[0]["id"]
    page = await metrics_page(world, port)  # node 0: alice's 15 in (the resend is not counted), 30 out to her
    assert value(page, "parley_node_live_messages_in_total") == before["parley_node_live_messages_in_total"] + 15
    assert value(page, "parley_node_live_messages_out_total") == before["parley_node_live_messages_out_total"] + 30
    assert value(page, "parley_node_live_viewers") >= 1 and value(page, "parley_node_live_rooms") >= 1

    async def stored() -> bool:  # the loss ledger: every accepted message is in history, once, newest first
        rows = await all_history(world, owner, room)
        assert [r["id"] for r in rows] == sorted(ids, reverse=True), "history still behind"
        return True

    await eventually(stored, what="every accepted live message in history", timeout=15)


async def test_a_join_answers_with_the_newest_messages_then_live_ones(world, cluster):
    owner, viewer = await world.person("own"), await world.person("viewer")
    room = await new_room(owner)
    o = await owner.device(node=0)
    sent = [await live_send(o, room, f"m{i}") for i in range(cluster.settings.live_join_backlog + 5)]

    async def archived() -> bool:
        return [m["id"] for m in (await history(world, owner, room, limit=1))["messages"]] == [sent[-1]["id"]]

    await eventually(archived, what="the room's messages stored", timeout=15)
    v = await viewer.device(node=1)
    joined = await join(v, room)
    newest = [s["id"] for s in sent][-cluster.settings.live_join_backlog:]
    assert [m["id"] for m in joined["messages"]] == newest  # oldest first
    assert joined["messages"][-1]["body"] == f"m{len(sent) - 1}"
    after = await live_send(o, room, "after the join")
    await v.wait_for(lambda: after["id"] in live_ids(v, room))
    assert live_ids(v, room) == [after["id"]]  # nothing of the backlog twice
    await v.send_frame({"type": "live_leave", "room": room})
    await v.wait_for(lambda: frames(v, "live_left", room))
    late = await live_send(o, room, "after the leave")

    async def stored() -> bool:
        return (await history(world, owner, room, limit=1))["messages"][0]["id"] == late["id"]

    await eventually(stored, what="the message sent while away stored", timeout=15)
    rejoined = await join(v, room)  # back in: what was sent while away comes with the backlog, not live
    assert rejoined["messages"][-1]["id"] == late["id"] and late["id"] not in live_ids(v, room)


async def test_a_closed_room_refuses_sends_and_only_moderators_moderate(world):
    owner, mod, viewer = await world.person("own"), await world.person("mod"), await world.person("viewer")
    room = await new_room(owner)
    v = await viewer.device(node=1)
    await join(v, room)
    api = world.api
    for who, call, code in ((viewer, ("PATCH", f"/v1/live/{room}", {"state": "closed"}), "not_moderator"),
                            (mod, ("PUT", f"/v1/live/{room}/moderators/{viewer.id}", None), "not_owner")):
        with pytest.raises(ApiError) as err:
            await api.call(call[0], call[1], who.token, call[2])
        assert (err.value.status, err.value.code) == (403, code)
    meta = await api.call("PUT", f"/v1/live/{room}/moderators/{mod.id}", owner.token)
    assert meta["moderators"] == [mod.id]
    closed = await api.call("PATCH", f"/v1/live/{room}", mod.token, {"state": "closed", "title": "over"})
    assert (closed["state"], closed["title"], closed["description"]) == ("closed", "over", "match")
    await v.wait_for(lambda: any(f["meta"]["state"] == "closed" for f in frames(v, "live_meta", room)))
    with pytest.raises(ApiError) as err:
        await live_send(v, room, "anyone there?")
    assert (err.value.code, err.value.body["room"], err.value.body["state"]) == ("room_closed", room, "closed")
    with pytest.raises(ApiError) as err:
        await api.call("PATCH", f"/v1/live/{room}", mod.token, {"state": "gone"})
    assert (err.value.status, err.value.code) == (400, "bad_field")
    await api.call("PATCH", f"/v1/live/{room}", owner.token, {"state": "open"})
    assert (await live_send(v, room, "open again"))["id"] > 0
    await api.call("DELETE", f"/v1/live/{room}/moderators/{mod.id}", owner.token)
    with pytest.raises(ApiError) as err:
        await api.call("PATCH", f"/v1/live/{room}", mod.token, {"state": "closed"})
    assert err.value.code == "not_moderator"
    assert (await api.call("GET", f"/v1/live/{room}", viewer.token))["state"] == "open"


async def test_a_deleted_message_leaves_every_view_and_history_keeps_a_tombstone(world):
    owner, alice, bob = await world.person("own"), await world.person("alice"), await world.person("bob")
    room = await new_room(owner)
    a, b = await alice.device(node=0), await bob.device(node=1)
    await join(a, room)
    await join(b, room)
    bad, good = await live_send(a, room, "spoiler!"), await live_send(a, room, "nice goal")
    with pytest.raises(ApiError) as err:
        await world.api.call("DELETE", f"/v1/live/{room}/messages/{bad['id']}", bob.token)
    assert (err.value.status, err.value.code) == (403, "not_moderator")

    async def delete() -> bool:  # the store follows the stream by milliseconds: unknown_message until then
        try:
            await world.api.call("DELETE", f"/v1/live/{room}/messages/{bad['id']}", owner.token)
            return True
        except ApiError as e:
            assert e.code == "unknown_message", e
            return False

    await eventually(delete, what="the delete accepted once the message is stored")
    for dev in (a, b):
        await dev.wait_for(lambda dev=dev: [f["id"] for f in frames(dev, "live_deleted", room)] == [bad["id"]])
    rows: dict[int, dict[str, Any]] = {}

    async def both_stored() -> bool:  # "good" came after "bad": the store may be a moment behind it
        rows.update({r["id"]: r for r in (await history(world, bob, room))["messages"]})
        return good["id"] in rows

    await eventually(both_stored, what="the second message stored")
    assert (rows[bad["id"]]["deleted"], rows[bad["id"]]["body"]) == (True, "")
    assert (rows[good["id"]]["deleted"], rows[good["id"]]["body"]) == (False, "nice goal")
    assert [m.get("deleted", False) for m in (await join(await bob.device(node=0), room))["messages"]] == [True, False]
    with pytest.raises(ApiError) as err:
        await world.api.call("DELETE", f"/v1/live/{room}/messages/{10**12}", owner.token)
    assert (err.value.status, err.value.code) == (404, "unknown_message")
    pinned = await world.api.call("PUT", f"/v1/live/{room}/pin", owner.token, {"id": good["id"]})
    assert pinned["pinned"] == good["id"]
    await b.wait_for(lambda: [f["id"] for f in frames(b, "live_pinned", room)] == [good["id"]])
    with pytest.raises(ApiError) as err:  # a tombstone is not pinned
        await world.api.call("PUT", f"/v1/live/{room}/pin", owner.token, {"id": bad["id"]})
    assert err.value.code == "unknown_message"
    assert (await world.api.call("DELETE", f"/v1/live/{room}/pin", owner.token))["pinned"] is None
    await a.wait_for(lambda: [f["id"] for f in frames(a, "live_pinned", room)] == [good["id"], None])


async def test_unknown_rooms_and_oversized_messages_are_refused_and_nothing_else_is_affected(world, cluster):
    owner, viewer = await world.person("own"), await world.person("viewer")
    room = await new_room(owner)
    v = await viewer.device(node=0)
    await join(v, room)
    nowhere = new_id()
    await v.send_frame({"type": "live_join", "room": nowhere})
    await v.wait_for(lambda: any(e["code"] == "unknown_room" for e in v.errors))
    with pytest.raises(ApiError) as err:
        await live_send(v, nowhere, "hello?")
    assert (err.value.code, err.value.body["room"]) == ("unknown_room", nowhere)
    with pytest.raises(ApiError) as err:
        await live_send(v, room, "x" * (cluster.settings.max_body_bytes + 1))
    assert (err.value.code, err.value.body["limit"]) == ("too_large", cluster.settings.max_body_bytes)
    for path, status, code in ((f"/v1/live/{nowhere}", 404, "unknown_room"),
                               (f"/v1/live/{nowhere}/messages", 404, "unknown_room"),
                               ("/v1/live/NOT-AN-ID", 400, "bad_field")):
        with pytest.raises(ApiError) as err:
            await world.api.call("GET", path, viewer.token)
        assert (err.value.status, err.value.code) == (status, code)
    with pytest.raises(ApiError) as err:
        await world.api.call("POST", "/v1/live", viewer.token, {"title": "   "})
    assert err.value.code == "bad_field"
    worst = await live_send(v, room, "\x01" * cluster.settings.max_body_bytes)  # 6 bytes each once escaped
    await v.wait_for(lambda: worst["id"] in live_ids(v, room))
    fine = await live_send(v, room, "still here")
    await v.wait_for(lambda: fine["id"] in live_ids(v, room))


class SlowViewer:
    """A viewer that stops reading: its socket's buffers fill, then its frames wait on the node."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    @classmethod
    async def join(cls, world: World, person: Person, url: str, room: str) -> SlowViewer:
        ws = await world.http.ws_connect(url, max_msg_size=0)
        await ws.send_str(orjson.dumps({"type": "hello", "v": 2, "token": person.token}).decode())
        assert orjson.loads((await ws.receive(timeout=10)).data)["type"] == "welcome"
        await ws.send_str(orjson.dumps({"type": "live_join", "room": room}).decode())
        while orjson.loads((await ws.receive(timeout=10)).data)["type"] != "live_joined":
            pass
        transport = ws._response.connection.transport
        transport.pause_reading()
        return cls(ws)

    async def frames_until(self, kind: str) -> list[dict[str, Any]]:
        self.ws._response.connection.transport.resume_reading()
        seen = []
        while not seen or seen[-1]["type"] != kind:
            seen.append(orjson.loads((await self.ws.receive(timeout=10)).data))
        return seen


async def test_a_slow_viewer_is_dropped_from_the_room_and_the_others_get_everything(world, cluster):
    owner, fast_one, slow_one = await world.person("own"), await world.person("fast"), await world.person("slow")
    senders = [await world.person("s") for _ in range(4)]
    room = await new_room(owner)
    fast = await fast_one.device(node=0)
    await join(fast, room)
    slow = await SlowViewer.join(world, slow_one, cluster.node_url(0), room)
    devs = [await s.device(node=1) for s in senders]
    port = cluster.node_ports[0]
    dropped_before = value(await metrics_page(world, port), "parley_node_live_dropped_viewers_total")
    body, sent = "y" * (cluster.settings.max_body_bytes - 16), []

    async def dropped() -> bool:  # megabytes until the socket's buffers are full and 256 frames wait
        batch = await asyncio.gather(*(live_send(d, room, body) for d in devs for _ in range(25)))
        sent.extend(s["id"] for s in batch)
        page = await metrics_page(world, port)
        return value(page, "parley_node_live_dropped_viewers_total") > dropped_before

    await eventually(dropped, what="the slow viewer dropped", timeout=60, every=0)
    await fast.wait_for(lambda: set(sent) <= set(live_ids(fast, room)), timeout=30)
    tail = await slow.frames_until("live_dropped")
    assert tail[-1] == {"type": "live_dropped", "room": room, "reason": "slow"}
    got = [f["id"] for f in tail if f["type"] == "live_msg"]
    assert got == sorted(got) and len(got) < len(sent)  # what it had queued, in order; then nothing more
    after = await live_send(devs[0], room, "after the drop")
    await fast.wait_for(lambda: after["id"] in live_ids(fast, room))
    await slow.ws.close()


async def test_a_banned_word_the_owner_adds_is_refused_and_a_masked_one_masked_on_every_node(world):
    owner, viewer, stranger = await world.person("own"), await world.person("viewer"), await world.person("str")
    room = await new_room(owner)
    o, v = await owner.device(node=0), await viewer.device(node=1)
    await join(o, room)
    await join(v, room)
    with pytest.raises(ApiError) as refused:
        await world.api.call("POST", f"/v1/banned-words/rooms/{room}", stranger.token, {"entries": [{"word": "x"}]})
    assert refused.value.body["code"] == "not_moderator"
    entries = [{"word": "gronk", "action": "reject"}, {"word": "blarf", "action": "mask"}]
    await world.api.call("POST", f"/v1/banned-words/rooms/{room}", owner.token, {"entries": entries})

    async def refused_on(dev: Device) -> bool:
        try:
            await live_send(dev, room, "what a GR0NK move")
        except ApiError as err:
            return bool(err.body["code"] == "banned_word")
        return False

    await eventually(lambda: refused_on(v), what="the viewer's node refuses the banned word", timeout=5)
    await eventually(lambda: refused_on(o), what="the owner's node refuses the banned word", timeout=5)
    sent = await live_send(v, room, "total blaaarf, honestly")
    await o.wait_for(lambda: sent["id"] in live_ids(o, room))
    shown = [f["body"] for f in frames(o, "live_msg", room) if f["id"] == sent["id"]]
    assert shown == ["total *******, honestly"]
