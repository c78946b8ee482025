"""Bad input gets a documented error (frame or close code); the node stays up; nothing is lost."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from urllib.parse import urlsplit

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
    padded = orjson.dumps({"type": "ping", "ts": 7, "pad": ""})
    exact = orjson.dumps({"type": "ping", "ts": 7, "pad": "x" * (cluster.settings.max_frame_bytes - len(padded))})
    assert len(exact) == cluster.settings.max_frame_bytes
    await a.send_frame(exact.decode())  # exactly the limit is allowed (§11): answered, the link stays
    await a.wait_for(lambda: a.pongs)
    await a.send_frame("x" * (cluster.settings.max_frame_bytes + 1))
    code, _ = await a.closed
    assert code == 1009
    b = await bob.device(node=1)
    assert b.bodies(conv) == ["x" * limit]


async def test_a_compressed_frame_is_held_to_the_same_limit(world, cluster):
    """permessage-deflate (browsers use it): the limit is on the inflated message, exactly as without."""
    alice = await world.person("alice")
    limit = cluster.settings.max_frame_bytes
    a = Device(world.http, world.cluster.node_url(0), alice.token, compress=15)
    await a.connect()
    exact = orjson.dumps({"type": "ping", "ts": 8, "pad": ""})
    await a.send_frame(orjson.dumps({"type": "ping", "ts": 8, "pad": "x" * (limit - len(exact))}).decode())
    await a.wait_for(lambda: a.pongs)
    await a.send_frame(orjson.dumps({"type": "ping", "ts": 9, "pad": "x" * (limit + 1 - len(exact))}).decode())
    code, _ = await a.closed
    assert code == 1009 and [p["ts"] for p in a.pongs] == [8]


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


async def first_frame_answer(world, raw: str) -> tuple[dict | None, int | None]:
    """The error frame (None if there was none) and the close code a connection's first frame gets."""
    ws = await world.http.ws_connect(world.cluster.node_url(0))
    await ws.send_str(raw)
    frame, error = await ws.receive(timeout=5), None
    if frame.type == aiohttp.WSMsgType.TEXT:
        error = orjson.loads(frame.data)
        frame = await ws.receive(timeout=5)
    assert frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    return error, ws.close_code


@pytest.mark.parametrize(
    ("first", "code", "field"),
    [
        ("{oops", "bad_json", None),
        ('{"type": "teleport"}', "hello_required", None),  # not unknown_type: any non-hello first frame
        ('{"type": "send", "cid": 5}', "hello_required", None),  # not bad_field: it is not a hello
        ('{"type": "ping"}', "hello_required", None),
        ('{"token": "t"}', "hello_required", None),
        ('{"type": "hello", "token": "t", "v": "1"}', "bad_field", "v"),  # a string is never a version
        ('{"type": "hello", "token": "t", "v": 1}', "bad_version", None),
    ],
)
async def test_each_kind_of_bad_first_frame_has_one_answer(world, first, code, field):
    error, close_code = await first_frame_answer(world, first)
    assert error is not None and (error["type"], error["code"], error.get("field")) == ("error", code, field)
    assert close_code == 4000


async def test_null_is_the_same_as_absent(world):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a = Device(world.http, world.cluster.node_url(0), alice.token)
    await a.connect(v=None, client=None)  # v null: the default version, 2
    b = await bob.device(node=1)
    await a.send_frame({"type": "typing", "conv": conv, "state": None})  # state null: start
    await b.wait_for(lambda: any(e["type"] == "typing" for e in b.events))
    assert [e["state"] for e in b.events if e["type"] == "typing"] == ["start"]
    await a.close()


async def test_typing_state_must_be_start_or_stop(world):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a = await alice.device(node=0)
    err = await error_after(a, orjson.dumps({"type": "typing", "conv": conv, "state": ""}).decode())
    assert (err["code"], err["field"]) == ("bad_field", "state")
    assert (await a.send(conv, "still works"))["status"] == "sent"


async def raw_text_frame(url: str, payload: bytes) -> tuple[list[bytes], int]:
    """Send one text frame with ``payload`` as it is (aiohttp's client only sends valid UTF-8 text);
    return the payloads of the text frames received before the close, and the close code."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    await reader.readuntil(b"\r\n\r\n")
    mask = os.urandom(4)
    assert len(payload) < 126
    writer.write(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    texts = []
    try:
        while True:
            head = await asyncio.wait_for(reader.readexactly(2), 5)
            size = head[1] & 0x7F
            if size == 126:
                size = int.from_bytes(await reader.readexactly(2), "big")
            body = await reader.readexactly(size)
            if head[0] & 0x0F == 0x8:
                return texts, int.from_bytes(body[:2], "big")
            texts.append(body)
    finally:
        writer.close()


async def test_invalid_utf8_in_a_text_frame_closes_1007_without_an_error_frame(world):
    texts, code = await raw_text_frame(world.cluster.node_url(0), b'{"type": "hello", "token": "\xff"}')
    assert (texts, code) == ([], 1007)
