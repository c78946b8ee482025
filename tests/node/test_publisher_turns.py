"""The publisher's turn per conversation against a real nats-server (ADR 0045, 0065): a send into a conversation
with nothing in flight takes no lock; sends into one conversation side by side are published one at a time, in
the order they came, each naming its predecessor; a send that fails or is cancelled hands the turn on."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import AsyncIterator, Callable
from functools import partial

import orjson
import pytest
from nats.js.api import StreamConfig
from parley.node.publisher import Publisher

from parley import bus
from parley.bus.stream import publish_chained
from parley.errors import Unavailable
from parley.ids import MSG_PREFIX, ConversationId
from parley.settings import Settings
from parley.shards import pos_of_id
from tests.poll import eventually

CONV = ConversationId("dm.aaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbb")


def payload(n: int) -> Callable[[int], bytes]:
    return lambda prev: orjson.dumps({"n": n, "prev": prev})


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[bus.BusClient]:
    client = await bus.connect(Settings(nats_url=nats_url), "test")
    await client.jetstream().add_stream(StreamConfig(name="MSG0", subjects=[f"{MSG_PREFIX}0.>"], duplicate_window=60))
    yield client
    await client.close()


def publisher_over(publish: Callable[..., object], cls: type[Publisher] = Publisher) -> Publisher:
    async def shard_of(conv: ConversationId) -> int:
        return 0

    async def stream_last(shard: int, conv: ConversationId) -> int:
        return 0

    async def store_last(conv: ConversationId) -> int:
        return 0

    return cls(publish, shard_of, stream_last, store_last)  # type: ignore[arg-type]


async def stored(nc: bus.BusClient, seq: int) -> object:
    return orjson.loads((await nc.jetstream().get_msg("MSG0", seq)).data)


async def test_a_send_into_a_conversation_with_nothing_in_flight_takes_no_lock(nc, monkeypatch):
    made = [0]  # a count, not the locks: a reference kept here would keep main's weak entry alive

    class CountedLock(asyncio.Lock):
        def __init__(self) -> None:
            super().__init__()
            made[0] += 1

    monkeypatch.setattr(asyncio, "Lock", CountedLock)
    publisher = publisher_over(partial(publish_chained, nc))
    ids = [(await publisher.publish(CONV, payload(n), f"m{n}"))[0] for n in range(20)]
    assert made == [0]  # main: one asyncio.Lock (and a WeakValueDictionary entry) per send
    assert [pos_of_id(i) for i in ids] == list(range(1, 21))
    assert publisher.in_flight() == 0


async def test_sends_side_by_side_are_published_in_the_order_they_came_each_naming_the_last(nc):
    publisher = publisher_over(partial(publish_chained, nc))
    results = await asyncio.gather(*(publisher.publish(CONV, payload(n), f"m{n}") for n in range(30)))
    seqs = [pos_of_id(id) for id, _ in results]
    assert seqs == list(range(1, 31))  # the n-th call's message is the n-th stored: order kept
    for seq in seqs:
        assert await stored(nc, seq) == {"n": seq - 1, "prev": results[seq - 2][0] if seq > 1 else 0}
    assert publisher.in_flight() == 0


async def test_a_failed_send_hands_the_turn_on_and_loses_nothing_after_it(nc):
    held = asyncio.Event()
    calls: list[str] = []

    async def publish(subject: str, data: bytes, msg_id: str, expected: int) -> tuple[int, bool]:
        calls.append(msg_id)
        if msg_id == "m0":
            await held.wait()
            return await publish_chained(nc, "nowhere.x", data, msg_id, expected)  # no stream: no responders
        return await publish_chained(nc, subject, data, msg_id, expected)

    publisher = publisher_over(publish)
    first = asyncio.ensure_future(publisher.publish(CONV, payload(0), "m0"))
    await eventually(lambda: calls == ["m0"], what="the first send in flight")
    rest = [asyncio.ensure_future(publisher.publish(CONV, payload(n), f"m{n}")) for n in (1, 2)]
    await asyncio.sleep(0)
    assert calls == ["m0"]  # the others wait for their turn
    held.set()
    with pytest.raises(Unavailable) as failed:
        await first
    assert failed.value.code == "bus_unavailable"
    done = await asyncio.gather(*rest)
    assert [pos_of_id(id) for id, _ in done] == [1, 2]
    assert await stored(nc, 2) == {"n": 2, "prev": done[0][0]}
    assert publisher.in_flight() == 0


async def test_a_cancelled_waiter_is_skipped_and_one_cancelled_with_the_turn_hands_it_on(nc):
    gates: dict[str, asyncio.Event] = {f"m{n}": asyncio.Event() for n in range(5)}
    calls: list[str] = []
    on_pass: list[Callable[[], object]] = []

    async def publish(subject: str, data: bytes, msg_id: str, expected: int) -> tuple[int, bool]:
        calls.append(msg_id)
        await gates[msg_id].wait()
        return await publish_chained(nc, subject, data, msg_id, expected)

    class Watched(Publisher):
        def _pass_turn(self, conv: str) -> None:
            super()._pass_turn(conv)
            while on_pass:
                on_pass.pop()()

    publisher = publisher_over(publish, Watched)
    sends = [asyncio.ensure_future(publisher.publish(CONV, payload(n), f"m{n}")) for n in range(4)]
    await eventually(lambda: calls == ["m0"], what="the first send in flight")
    sends[1].cancel()  # waiting: skipped when the turn passes
    gates["m0"].set()
    await eventually(lambda: calls == ["m0", "m2"], what="the third send's turn")
    on_pass.append(sends[3].cancel)  # the fourth, cancelled just as it is handed the turn: it must pass it on
    gates["m2"].set()
    for task in sends[1], sends[3]:
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
    assert calls == ["m0", "m2"]
    assert [pos_of_id((await task)[0]) for task in (sends[0], sends[2])] == [1, 2]
    await eventually(lambda: publisher.in_flight() == 0, what="the conversation idle")
    gates["m4"].set()
    id, _ = await publisher.publish(CONV, payload(4), "m4")  # the conversation is not left locked
    assert pos_of_id(id) == 3


async def test_the_stream_publish_is_awaited_one_publisher_coroutine_deep(nc):
    """Each coroutine between the lane's task and the PubAck's future is resumed again when the PubAck comes
    (ADR 0065): the publisher adds one, not two."""
    depths: list[int] = []

    async def publish(subject: str, data: bytes, msg_id: str, expected: int) -> tuple[int, bool]:
        depths.append(sum(1 for f in traceback.extract_stack() if f.filename.endswith("node/publisher.py")))
        return await publish_chained(nc, subject, data, msg_id, expected)

    publisher = publisher_over(publish)
    await publisher.publish(CONV, payload(0), "m0")
    assert depths == [1]
