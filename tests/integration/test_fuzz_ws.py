"""The WebSocket protocol fuzzed on a live cluster (tools/framefuzz.py plans, this writes and judges).

A few thousand messages (``PARLEY_FUZZ_FRAMES``, default 5000) from a seed (``PARLEY_FUZZ_SEED``;
printed, so a CI failure replays exactly) go to both nodes on many connections, a few at a time, while
two well-behaved users exchange messages in their DM and in a group the fuzzing user is in too; a third of
the connections go to a node of its own at the production limits (rate limits and strikes). Judged:
every server frame's type is one of §5, every error frame's ``code`` one of §12 and every close code one
of §13 (the lists read from docs/protocol.md); nothing logged an error or a traceback; the cluster is
healthy afterwards; every acked message of the two well-behaved users reached the other exactly once,
and each conversation's chain has no gap. docs/adr/0017-fuzzing.md.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from parley.tools.client import ApiError, Device
from parley.tools.framefuzz import BINARY, FRAME_TYPES, RAW_TEXT, Episode, Target, plan

from tests.docs.test_docs_error_codes import documented_close_codes, documented_codes
from tests.integration.logmark import LogMark

pytestmark = pytest.mark.integration

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
FRAMES = int(os.environ.get("PARLEY_FUZZ_FRAMES", "5000"))
AT_ONCE = 4  # fuzzing connections open at a time
ROUNDS = 40  # messages each well-behaved user sends into each of its two conversations


def section(number: int) -> str:
    return PROTOCOL.read_text().split(f"\n## {number}. ", 1)[1].split("\n## ", 1)[0]


def documented_frame_types(number: int) -> set[str]:
    """The frame types of §4 (client) or §5 (server): the first column of the section's table."""
    return set(documented_fields(number))


def documented_fields(number: int) -> dict[str, set[str]]:
    """Each frame type of §4 or §5 with every name quoted in its fields column (values too: a superset)."""
    rows = re.findall(r"^\| `([a-z_]+)` \| (.*) \|$", section(number), re.MULTILINE)
    return {kind: {"type", *re.findall(r"`([a-z_]+)`", fields)} for kind, fields in rows}


class Judge:
    """What the fuzzing connections got back."""

    def __init__(self) -> None:
        self.fields = documented_fields(5)
        self.undocumented: set[str] = set()  # "type.field" of every field §5 does not list for its frame
        self.types: Counter[str] = Counter()
        self.codes: Counter[str] = Counter()
        self.closes: Counter[int | None] = Counter()
        self.cut_while_writing = 0
        self.wires = 0

    def frame(self, data: str) -> None:
        frame = orjson.loads(data)
        self.types[frame.get("type")] += 1
        known = self.fields.get(frame.get("type"), set())
        self.undocumented |= {f"{frame.get('type')}.{k}" for k in set(frame) - known}
        if frame.get("type") == "error":
            self.codes[frame.get("code")] += 1

    def summary(self) -> str:
        return (f"{self.wires} messages; frames back {dict(self.types.most_common())}; error codes "
                f"{dict(self.codes.most_common())}; closes {dict(self.closes.most_common())} "
                f"(+{self.cut_while_writing} closed while we wrote)")


async def write(ws: aiohttp.ClientWebSocketResponse, kind: str, data: bytes) -> None:
    if kind == BINARY:
        await ws.send_bytes(data)
    elif kind == RAW_TEXT:
        await ws.send_frame(data, aiohttp.WSMsgType.TEXT)  # not decoded first: invalid UTF-8 goes out as is
    else:
        await ws.send_str(data.decode())


async def read_until(ws: aiohttp.ClientWebSocketResponse, judge: Judge, done: Any) -> bool:
    """Read frames into ``judge`` until ``done(message)``; False when the node closed first (its code kept)."""
    while True:
        msg = await ws.receive(timeout=30)
        if msg.type == aiohttp.WSMsgType.TEXT:
            judge.frame(msg.data)
        elif msg.type == aiohttp.WSMsgType.PING:
            await ws.pong(msg.data)
        elif msg.type != aiohttp.WSMsgType.PONG:
            if isinstance(ws.exception(), aiohttp.ClientConnectionResetError):
                judge.cut_while_writing += 1  # our write met the node's close: its code never reached us
            else:
                judge.closes[ws.close_code] += 1
            return False
        if done(msg):
            return True


def welcome(msg: aiohttp.WSMessage) -> bool:
    return msg.type == aiohttp.WSMsgType.TEXT and orjson.loads(msg.data).get("type") == "welcome"


def send_cids(ep: Episode) -> set[str]:
    """The cids of the episode's ``send`` frames whose cid is a string: each gets an ack or an error with
    that ``ref`` (§6: every send is answered) unless the node closes the connection first."""
    cids = set()
    for wire in ep.wires:
        try:
            frame = orjson.loads(wire.data)
        except orjson.JSONDecodeError:
            continue
        if isinstance(frame, dict) and frame.get("type") == "send" and isinstance(frame.get("cid"), str):
            cids.add(frame["cid"])
    return cids


def answered(cids: set[str], marker: bytes) -> Any:
    """``done`` for ``read_until``: true once the marker's pong came (the node read everything) and every
    cid got its ack or error (the set shrinks as they come)."""
    ponged = False

    def done(msg: aiohttp.WSMessage) -> bool:
        nonlocal ponged
        if msg.type == aiohttp.WSMsgType.TEXT:
            frame = orjson.loads(msg.data)
            cids.discard(frame.get("cid") if frame.get("type") == "ack" else frame.get("ref"))
        ponged = ponged or (msg.type == aiohttp.WSMsgType.PONG and msg.data == marker)
        return ponged and not cids
    return done


async def run_episode(http: aiohttp.ClientSession, url: str, token: str, ep: Episode, judge: Judge) -> None:
    async with http.ws_connect(url, max_msg_size=0, autoping=False) as ws:
        if ep.hello:
            await ws.send_str(orjson.dumps({"type": "hello", "v": 2, "token": token}).decode())
            if not ep.eager and not await read_until(ws, judge, welcome):
                return
        for wire in ep.wires:
            judge.wires += 1
            try:
                await write(ws, wire.kind, wire.data)
            except (ConnectionError, RuntimeError):  # the node closed it: read below for its code
                break
        if ep.abrupt:
            return  # closed by ``async with`` now, whatever the node is still doing for it
        # a WebSocket ping (no frame budget to refuse it): its pong comes once the node read everything before
        # and every send answered, unless the node closes first (then unanswered sends may be dropped, §6)
        marker = b"fuzz-episode-end"
        try:
            await ws.ping(marker)
        except (ConnectionError, RuntimeError):
            pass
        waiting = send_cids(ep)
        try:
            await read_until(ws, judge, answered(waiting, marker))
        except TimeoutError:
            raise AssertionError(f"{url}: no pong or no answer in 30 s; sends unanswered: {waiting}") from None


async def fuzz(http: aiohttp.ClientSession, urls: list[str], token: str, episodes: list[Episode],
               judge: Judge) -> None:
    gate = asyncio.Semaphore(AT_ONCE)

    async def one(i: int, ep: Episode) -> None:
        async with gate:
            await run_episode(http, urls[i % len(urls)], token, ep, judge)

    await asyncio.gather(*(one(i, ep) for i, ep in enumerate(episodes)))


async def send_until_acked(dev: Any, conv: str, body: str) -> None:
    """A well-behaved send (§6): a retryable error is answered by resending the same cid, with backoff."""
    cid = f"{dev.user}-{body.replace(' ', '-')}"[:64].replace(".", "-")
    for attempt in range(20):
        try:
            await dev.send(conv, body, cid=cid)
            return
        except ApiError as err:
            if not err.body.get("retryable") or attempt == 19:
                raise
            await asyncio.sleep(min(0.05 * 2**attempt, 1.0))  # the client's backoff, not a wait for a condition


async def converse(a: Any, b: Any, convs: list[str]) -> None:
    """The well-behaved side: each sends ``ROUNDS`` messages into each conversation, every send answered."""
    for i in range(ROUNDS):
        for conv in convs:
            await asyncio.gather(send_until_acked(a, conv, f"a{i} {conv}"), send_until_acked(b, conv, f"b{i} {conv}"))


def assert_exactly_once(sender: Any, receivers: list[Any], conv: str) -> None:
    acked = {ack["id"]: cid for cid, ack in sender.acks.items() if ack["conv"] == conv}
    assert len(acked) == len([a for a in sender.acks.values() if a["conv"] == conv])  # one id per cid
    for dev in receivers:
        got = {i: m["cid"] for i, m in dev.messages.items() if m["conv"] == conv and m["from"] == sender.user}
        assert got == acked
        chain = sorted(i for i, m in dev.messages.items() if m["conv"] == conv)
        assert [dev.messages[i]["prev"] for i in chain[1:]] == chain[:-1], f"a gap in {conv}"


@pytest.fixture(scope="module")
def strict_node(cluster) -> Iterator[str]:
    """A node at the production limits (``limits_scale`` 1): frame budgets, rate limits and strikes bite."""
    url = cluster.start_extra_node("fuzz-strict", limits_scale=1.0)
    try:
        yield url
    finally:
        if "fuzz-strict" in cluster.roles:
            cluster.stop("fuzz-strict")


async def test_fuzzed_frames_get_documented_answers_and_lose_nothing(world, cluster, strict_node):
    seed = int(os.environ.get("PARLEY_FUZZ_SEED") or random.randrange(2**32))
    print(f"\nWebSocket fuzz: PARLEY_FUZZ_SEED={seed} PARLEY_FUZZ_FRAMES={FRAMES}")
    mark, down = LogMark(cluster), {c.name for c in cluster.exited()}  # the shared cluster's state before
    alice, bob, fz = await world.person("alice"), await world.person("bob"), await world.person("fz")
    dm = await alice.befriend(bob)
    fz_dms = [await fz.befriend(alice), await fz.befriend(bob)]
    group = (await world.api.call("POST", "/v1/groups", alice.token, {"name": "fuzz", "members": [bob.id]}))
    group = group["conversation"]["id"]
    await world.api.call("POST", f"/v1/groups/{group}/members", alice.token, {"user_ids": [fz.id]})
    a, b = await alice.device(node=0), await bob.device(node=1)
    for dev in (a, b):
        dev.user = dev.welcome["user"]
    probe = await fz.device(node=0)
    first = await probe.send(group, "fuzz starts")
    target = Target(token=fz.token, convs=(*fz_dms, group, dm, "dm.aaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbb"),
                    users=(alice.id, bob.id, fz.id, "aaaaaaaaaaaaaaaa"), cursor=str(probe.cursor),
                    ids=(first["id"], first["id"] + 1, 2**53 - 1), max_frame_bytes=cluster.settings.max_frame_bytes)
    await probe.close()
    episodes = plan(random.Random(seed), target, FRAMES)
    judge, started = Judge(), time.monotonic()
    urls = [cluster.node_url(0), cluster.node_url(1), strict_node]
    await asyncio.gather(fuzz(world.http, urls, fz.token, episodes, judge), converse(a, b, [dm, group]))
    print(f"WebSocket fuzz: {len(episodes)} connections in {time.monotonic() - started:.1f} s; {judge.summary()}")

    assert set(judge.types) <= documented_frame_types(5) and judge.undocumented == set()
    assert set(judge.codes) <= documented_codes()
    assert set(judge.closes) <= documented_close_codes()
    assert set(FRAME_TYPES) == documented_frame_types(4)  # the planner knows every client frame
    for sender in (a, b):
        for conv in (dm, group):
            await asyncio.gather(*(d.wait_for(lambda d=d, c=conv, s=sender: sum(
                m["conv"] == c and m["from"] == s.user for m in d.messages.values()) >= ROUNDS) for d in (a, b)))
            assert_exactly_once(sender, [a, b], conv)
    assert [c.name for c in cluster.exited() if c.name not in down] == [] and mark.errors_since() == []
    newcomer = await world.person("after")  # every node still connects and syncs (a wedged sync never ends)
    for url in urls:
        dev = Device(world.http, url, newcomer.token)
        await dev.connect()
        await asyncio.wait_for(dev.synced.wait(), 10)
        await dev.close()
