"""Bad input gets a documented error (frame or close code); the node stays up; nothing is lost."""

from __future__ import annotations

import time

import aiohttp
import orjson
import pytest
from parley.tools.client import Device

from parley.auth import issue_token
from parley.ids import new_device_id, new_session_id, new_user_id
from tests.integration.cluster import SECRET

pytestmark = pytest.mark.integration


async def error_after(dev: Device, raw: str) -> dict:
    count = len(dev.errors)
    await dev.send_frame(raw)
    await dev.wait_for(lambda: len(dev.errors) > count)
    return dev.errors[-1]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{oops", "bad_json"),
        ('"just a string"', "bad_json"),
        ('{"type": "teleport"}', "unknown_type"),
        ('{"type": "send", "conv": "dm.x.y", "body": "hi", "cid": "c1"}', "bad_field"),
        ('{"type": "send", "body": "hi", "cid": "c2"}', "bad_field"),
        ('{"type": "ack", "id": "seven"}', "bad_field"),
        ('{"type": "hello", "token": "again"}', "hello_repeated"),
    ],
)
async def test_malformed_frames_get_error_frames_and_the_link_stays(world, raw, code):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a = await alice.device(node=0)
    err = await error_after(a, raw)
    assert err["code"] == code and err["message"]
    ack = await a.send(conv, "still works")  # the connection survived
    assert ack["status"] == "sent"


async def test_oversized_body_and_oversized_frame(world, cluster):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a = await alice.device(node=0)
    limit = cluster.settings.max_body_bytes
    big = {"type": "send", "cid": "big", "conv": conv, "body": "x" * (limit + 1)}
    err = await error_after(a, orjson.dumps(big).decode())
    assert (err["code"], err["limit"], err["ref"]) == ("too_large", limit, "big")
    ok = await a.send(conv, "x" * limit)
    assert ok["status"] == "sent"
    await a.send_frame("x" * (cluster.settings.max_frame_bytes + 10))
    code, _ = await a.closed
    assert code == 1009
    b = await bob.device(node=1)
    assert b.bodies(conv) == ["x" * limit]


async def test_sending_into_someone_elses_conversation_is_refused(world):
    alice, bob, eve = await world.person("alice"), await world.person("bob"), await world.person("eve")
    conv = await alice.befriend(bob)
    e = await eve.device(node=0)
    err = await error_after(e, orjson.dumps({"type": "send", "cid": "sneak", "conv": conv, "body": "hi"}).decode())
    assert (err["code"], err["ref"]) == ("not_member", "sneak")
    unopened = "dm." + ".".join(sorted((eve.id, alice.id)))
    err = await error_after(e, orjson.dumps({"type": "send", "cid": "cold", "conv": unopened, "body": "hi"}).decode())
    assert err["code"] == "unknown_conversation"
    b = await bob.device(node=1)
    assert b.messages == {}


async def test_flooding_past_the_rate_limit_is_refused_without_losing_acked_messages(world, cluster):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a = await alice.device(node=0)
    total = 3 * cluster.settings.rate_burst
    for i in range(total):
        await a.send(conv, f"flood {i}", cid=f"f{i}", wait=False)
    try:
        await a.wait_for(lambda: len(a.acks) + sum(e["code"] == "rate_limited" for e in a.errors) >= total)
    except ConnectionError:  # a client that keeps flooding after many refusals is cut off (4029)
        assert a.closed.result()[0] == 4029
    limited = [e for e in a.errors if e["code"] == "rate_limited"]
    assert limited and all(e["retry_after_ms"] > 0 and e["ref"].startswith("f") for e in limited)
    assert len(a.acks) >= cluster.settings.rate_burst
    b = await bob.device(node=1)
    await b.wait_for(lambda: len(b.messages) == len(a.acks))
    assert sorted(b.bodies(conv)) == sorted(f"flood {c[1:]}" for c in a.acks)


@pytest.mark.parametrize(
    ("make_token", "close_code"),
    [
        (lambda: "not-a-token", 4001),
        (lambda: issue_token("wrong-secret-" * 3, user=new_user_id(), device=new_device_id(),
                             session=new_session_id(), now=int(time.time()), ttl_s=60)[0], 4001),
        (lambda: issue_token(SECRET, user=new_user_id(), device=new_device_id(), session=new_session_id(),
                             now=int(time.time()) - 120, ttl_s=60)[0], 4002),
    ],
)
async def test_bad_or_expired_tokens_close_with_their_code(world, make_token, close_code):
    ws = await world.http.ws_connect(world.cluster.node_url(0))
    await ws.send_str(orjson.dumps({"type": "hello", "token": make_token()}).decode())
    frame = await ws.receive(timeout=5)
    assert orjson.loads(frame.data)["type"] == "error"
    closing = await ws.receive(timeout=5)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert ws.close_code == close_code


async def test_a_connection_must_start_with_hello_in_time(world):
    ws = await world.http.ws_connect(world.cluster.node_url(1))
    await ws.send_str('{"type": "ping"}')
    await ws.receive(timeout=5)  # the error frame
    await ws.receive(timeout=5)
    assert ws.close_code == 4000
    silent = await world.http.ws_connect(world.cluster.node_url(1))
    await silent.receive(timeout=world.cluster.settings.hello_timeout_s + 3)
    assert silent.close_code == 4000


async def test_logout_revokes_the_token_and_closes_live_connections(world):
    alice = await world.person("alice")
    a = await alice.device(node=0)
    await world.api.call("POST", "/v1/logout", a.login["token"])
    code, _ = await a.closed
    assert code == 4003
    again = Device(world.http, world.cluster.node_url(1), a.login["token"])
    with pytest.raises(ConnectionError, match="session_revoked"):
        await again.connect()


async def test_ping_gets_pong_and_the_nodes_stayed_up(world, cluster):
    alice = await world.person("alice")
    a = await alice.device(node=0)
    await a.send_frame({"type": "ping", "ts": 42})
    await a.wait_for(lambda: a.pongs)
    assert a.pongs[-1]["ts"] == 42 and a.pongs[-1]["server_ts"] > 0
    assert all(cluster.alive().values())
