"""A user's first device here, set up with one store call (node/subscriptions.py ``first_arrival``, ADR 0051),
against a real nats-server, a real SQLite store and an edge node in this process: the session is read once, after
the user's subjects are subscribed; a session that ended is refused with the hello's frames and leaves no
subscription and no user state behind; a message stored during the set-up reaches the device exactly once; a
revocation announced after the read and before the link is attached closes it. The store is the real one behind
``Stepped``, which counts the node's reads and runs a step of the test's around the set-up's read."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from parley.node.server import EdgeNode

from parley import bus, protocol, wire
from parley.auth import issue_token
from parley.ids import (
    DeviceId,
    SessionId,
    UserId,
    control_subject,
    dm_conversation,
    new_device_id,
    new_session_id,
    new_user_id,
)
from parley.messages import encode_payload
from parley.settings import Settings
from parley.shards import home_for, message_subject
from parley.store import Device, Session
from tests.node.served import migrated, node_settings, served
from tests.poll import eventually

SECRET = "s" * 48
A, B = new_user_id(), new_user_id()
Step = Callable[[], Awaitable[None]]


class Stepped:
    """The real store; ``connect_reads`` counted (with every other session and device read) and run between the
    test's ``before`` and ``after`` steps."""

    def __init__(self, store: Any) -> None:
        self.store, self.reads = store, 0
        self.before: Step | None = None
        self.after: Step | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def connect_reads(self, session: SessionId, **asked: Any) -> Any:
        self.reads += 1
        if self.before is not None:
            await self.before()
        found = await self.store.connect_reads(session, **asked)
        if self.after is not None:
            await self.after()
        return found

    async def get_session(self, session: SessionId) -> Any:
        self.reads += 1
        return await self.store.get_session(session)

    async def get_device(self, device: DeviceId) -> Any:
        self.reads += 1
        return await self.store.get_device(device)


@dataclass
class Edge:
    node: EdgeNode
    store: Stepped
    nc: bus.BusClient
    settings: Settings
    url: str

    async def session(self, user: UserId) -> tuple[SessionId, str]:
        """A live session of a new device of ``user``, and a token for it."""
        now, sid, device = int(time.time()), new_session_id(), new_device_id()
        await self.store.create_session(Session(sid, user, device, now * 1000, now + 3600))
        await self.store.upsert_device(Device(device, user, "phone", now))
        token, _ = issue_token(SECRET, user=user, device=device, session=sid, now=now, ttl_s=600)
        return sid, token

    async def subscribed(self, subject: str) -> bool:
        """Whether nats-server has a subscription that ``subject`` reaches: a request to it is answered "no responders"
        at once by the server when none does (the node's handlers take it and never answer)."""
        try:
            await self.nc.request(subject, b"probe", timeout=2)
        except NoRespondersError:
            return False
        except NatsTimeout:
            return True
        raise AssertionError(f"a reply on {subject}")

    async def store_dm(self, body: str) -> None:
        """A message from B to A, stored in its shard's stream (acked), as a send would."""
        conv = dm_conversation(A, B)
        payload = encode_payload(sender=B, device=new_device_id(), cid=body, body=body, ts=int(time.time() * 1000),
                                 prev=0)
        await self.nc.jetstream().publish(message_subject(home_for(conv, self.settings.shards), conv), payload)


@pytest.fixture
async def edge(nats_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Edge]:
    """``request.param`` (indirect parametrization): settings other than these."""
    settings = node_settings(nats_url, tmp_path / "p.db", SECRET, **getattr(request, "param", {}))
    async with migrated(settings) as real:
        store = Stepped(real)
        async with served(settings, store) as (node, nc, url):
            yield Edge(node, store, nc, settings, url)


async def hello(http: aiohttp.ClientSession, edge: Edge, token: str) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(edge.url)
    await ws.send_str(orjson.dumps({"type": "hello", "version": protocol.VERSION, "token": token}).decode())
    return ws


Frame = dict[str, Any]


async def frames_until(ws: aiohttp.ClientWebSocketResponse, done: Callable[[Frame], bool]) -> list[Frame]:
    out: list[Frame] = []
    while True:
        msg = await ws.receive(timeout=10)
        if msg.type != aiohttp.WSMsgType.TEXT:
            return out
        out.append(orjson.loads(msg.data))
        if done(out[-1]):
            return out


def left_behind(node: EdgeNode, user: UserId) -> list[str]:
    subs = node.subscriptions
    return [name for name, held in (("subscriptions", user in subs._subs), ("held events", user in subs._loading),
                                    ("set-up mark", user in subs._first), ("lock", user in subs._locks),
                                    ("links", bool(node.hub.of_user(user))))
            if held]


async def test_a_first_connect_reads_the_store_once_after_its_subjects_are_subscribed(edge):
    _, token = await edge.session(A)
    at_read: list[int] = []

    async def before() -> None:
        at_read.append(await edge.subscribed(control_subject(A)))

    edge.store.before = before
    async with aiohttp.ClientSession() as http:
        ws = await hello(http, edge, token)
        frames = await frames_until(ws, lambda f: f["type"] == "synced")
        assert [f["type"] for f in frames][:1] == ["welcome"] and frames[-1]["type"] == "synced"
        assert edge.store.reads == 1  # the hello's check, the cursor, the groups and the friends: one call
        assert at_read == [True]  # the control subject was subscribed before the session was read
        await ws.close()


async def test_a_session_ended_during_the_set_up_is_refused_as_a_hello_and_leaves_nothing_behind(edge):
    sid, token = await edge.session(A)
    at_read: list[int] = []

    async def logout() -> None:  # between the subscription and the read
        at_read.append(await edge.subscribed(control_subject(A)))
        await edge.store.revoke_session(sid)

    edge.store.before = logout
    async with aiohttp.ClientSession() as http:
        ws = await hello(http, edge, token)
        frames = await frames_until(ws, lambda f: False)
        assert [(f["type"], f.get("code")) for f in frames] == [("error", "session_revoked")]
        assert ws.close_code == 4003
    assert at_read == [True] and edge.store.reads == 1
    await eventually(lambda: not left_behind(edge.node, A), what="nothing of the refused user left")
    assert not await edge.subscribed(control_subject(A))
    assert not await edge.subscribed(f"dlv.{dm_conversation(A, B)}")


async def test_a_message_stored_during_the_set_up_reaches_the_device_exactly_once(edge):
    _, token = await edge.session(A)
    conv = dm_conversation(A, B)

    async def during() -> None:  # the node hears it on A's DM subject before A's link is attached
        await edge.store_dm("during")
        await eventually(lambda: edge.node.homes.known(conv) is not None, what="the delivery reached the node")

    edge.store.before = during
    async with aiohttp.ClientSession() as http:
        ws = await hello(http, edge, token)
        frames = await frames_until(ws, lambda f: f["type"] == "synced")
        await edge.store_dm("after")
        frames += await frames_until(ws, lambda f: f["type"] == "msg" and f["body"] == "after")
        bodies = [f["body"] for f in frames if f["type"] == "msg"]
        assert bodies == ["during", "after"], bodies
        assert edge.store.reads == 1
        await ws.close()


async def test_a_revocation_announced_after_the_read_closes_the_device_once_attached(edge):
    sid, token = await edge.session(A)

    async def revoked() -> None:  # after the read: only the event can tell the node
        await edge.store.revoke_session(sid)
        await edge.nc.publish(control_subject(A), wire.encode(wire.Revoke(sid)))
        await eventually(lambda: bool(edge.node.subscriptions._loading.get(A)), what="the revocation held")

    edge.store.after = revoked
    async with aiohttp.ClientSession() as http:
        ws = await hello(http, edge, token)
        frames = await frames_until(ws, lambda f: False)
        assert frames[0]["type"] == "welcome"
        assert ws.close_code == 4003
    await eventually(lambda: not left_behind(edge.node, A), what="nothing of the revoked user left")
