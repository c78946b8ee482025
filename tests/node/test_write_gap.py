"""The write gap holds group deliveries only (ADR 0056), on an edge node in this process against a real nats-server
and a real SQLite store: while a member's device holds a group message for the gap, a DM, a pong and the SENT ack of
its own group send are written at once, each taking the held group frames (messages, a typing notice) along in the
order they came.

The node is built with a gap no test outlives (``Flushes`` with an hour): a group message after the first is written
only when something else is (the settings allow at most 50 ms, which would make "at once" a question of timing)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from parley.node import server
from parley.node.link import Flushes

from parley import bus, protocol, wire
from parley.ids import (
    UserId,
    dm_conversation,
    event_subject,
    new_device_id,
    new_group_conversation,
    new_user_id,
)
from parley.messages import encode_payload
from parley.settings import Settings
from parley.shards import home_for, message_subject
from parley.store import Conversation
from tests.node.served import migrated, node_settings, served, signed_in
from tests.poll import eventually

SECRET = "s" * 48
HOUR = 3600.0
A, B = new_user_id(), new_user_id()
GROUP = new_group_conversation()
Frame = dict[str, Any]


class Edge:
    def __init__(self, node: server.EdgeNode, store: Any, nc: bus.BusClient, settings: Settings, url: str) -> None:
        self.node, self.store, self.nc, self.settings, self.url = node, store, nc, settings, url

    async def token(self, user: UserId) -> str:
        return await signed_in(self.store, SECRET, user)

    async def stored(self, conv: str, body: str) -> None:
        """A message from B in ``conv``, stored in its shard's stream (acked), as a send would."""
        payload = encode_payload(sender=B, device=new_device_id(), cid=body, body=body, ts=int(time.time() * 1000),
                                 prev=0)
        await self.nc.jetstream().publish(message_subject(home_for(conv, self.settings.shards), conv), payload)


@pytest.fixture
async def edge(nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Edge]:
    settings = node_settings(nats_url, tmp_path / "p.db", SECRET, write_gap_s=0.05)
    monkeypatch.setattr(server, "Flushes", lambda gap_s: Flushes(HOUR if gap_s else 0.0))
    async with migrated(settings) as store:
        await store.create_group(Conversation(GROUP, "group", tuple(sorted([A, B])), 1, name="g",
                                              roles=((B, "owner"),), shard=home_for(GROUP, settings.shards)))
        async with served(settings, store) as (node, nc, url):
            yield Edge(node, store, nc, settings, url)


async def frames_until(ws: aiohttp.ClientWebSocketResponse, done: Callable[[Frame], bool]) -> list[Frame]:
    out: list[Frame] = []
    while True:
        msg = await ws.receive(timeout=10)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        out.append(orjson.loads(msg.data))
        if done(out[-1]):
            return out


def bodies(frames: list[Frame]) -> list[str]:
    return [f["body"] for f in frames if f["type"] == "msg"]


async def test_a_dm_a_pong_and_a_sent_ack_go_at_once_with_the_group_messages_held_before_them(edge):
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(edge.url)
        await ws.send_str(orjson.dumps({"type": "hello", "version": protocol.VERSION,
                                        "token": await edge.token(A)}).decode())
        await frames_until(ws, lambda f: f["type"] == "synced")
        await eventually(lambda: GROUP in edge.node.groups._subs, what="the group's subscriptions")
        await edge.nc.flush()
        await edge.node.nc.flush()  # the server has them
        link = edge.node.hub.of_user(A)[0]

        async def held(body: str) -> None:
            await edge.stored(GROUP, body)
            await eventually(lambda: link.flush_due and link.waiting() >= 1, what=f"{body} held for the gap")

        await edge.stored(GROUP, "g1")  # the first after a quiet gap: at once
        assert bodies(await frames_until(ws, lambda f: f.get("body") == "g1")) == ["g1"]

        await held("g2")
        await edge.stored(dm_conversation(A, B), "d1")
        assert bodies(await frames_until(ws, lambda f: f.get("body") == "d1")) == ["g2", "d1"]

        await held("g3")
        await edge.nc.publish(event_subject(GROUP), wire.encode(wire.TypingNotice(B, "b-phone", "start")))
        await eventually(lambda: link.waiting() >= 2, what="B's typing in the group held with g3")
        await ws.send_str('{"type":"ping","ts":7}')
        got = await frames_until(ws, lambda f: f["type"] == "pong")
        assert [f.get("body") or f["type"] for f in got if f["type"] != "cursor"] == ["g3", "typing", "pong"]
        assert got[-1]["ts"] == 7

        await held("g4")
        await ws.send_str(orjson.dumps({"type": "send", "cid": "mine", "conv": GROUP, "body": "mine"}).decode())
        got = await frames_until(ws, lambda f: f["type"] == "ack" and f.get("cid") == "mine")
        assert bodies(got)[0] == "g4" and got[-1]["status"] == "sent"  # its own echo may come with it, or after
        await ws.close()
