"""The node's stream publish (``publish_chained`` over ``BusClient.request_raw``) against a real nats-server:
the chain rule, a resend answered as a duplicate, and the errors nats-py's ``js.publish`` raised (the
publisher and ``parley.bus.outage`` rely on them): a wrong last sequence naming the real one, no stream
(``NoStreamResponseError``), no answer (nats-py's ``TimeoutError``). Replies to requests in flight at once
each reach their own caller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import StreamConfig
from nats.js.errors import APIError, NoStreamResponseError

from parley import bus
from parley.bus.stream import WRONG_LAST_SEQUENCE, parse_wrong_last_sequence, publish_chained
from parley.settings import Settings


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[bus.BusClient]:
    client = await bus.connect(Settings(nats_url=nats_url), "test")
    await client.jetstream().add_stream(StreamConfig(name="CHAIN", subjects=["chain.>"], duplicate_window=60))
    yield client
    await client.close()


async def test_each_message_names_the_last_one_and_a_resend_is_the_first_ones_duplicate(nc):
    assert await publish_chained(nc, "chain.a", b"1", "m1", 0) == (1, False)
    assert await publish_chained(nc, "chain.b", b"2", "m2", 0) == (2, False)
    assert await publish_chained(nc, "chain.a", b"3", "m3", 1) == (3, False)
    assert await publish_chained(nc, "chain.a", b"3", "m3", 3) == (3, True)  # the dedup window answers first
    msg = await nc.jetstream().get_msg("CHAIN", 3)
    assert msg.data == b"3" and msg.headers is not None and msg.headers["Nats-Msg-Id"] == "m3"


async def test_a_stale_expectation_is_refused_with_the_subjects_real_last_sequence(nc):
    await publish_chained(nc, "chain.a", b"1", "m1", 0)
    await publish_chained(nc, "chain.a", b"2", "m2", 1)
    with pytest.raises(APIError) as refused:
        await publish_chained(nc, "chain.a", b"3", "m3", 1)
    assert refused.value.err_code == WRONG_LAST_SEQUENCE and parse_wrong_last_sequence(refused.value) == 2


async def test_a_subject_no_stream_captures_is_no_stream_response(nc):
    with pytest.raises(NoStreamResponseError):
        await publish_chained(nc, "nowhere.a", b"1", "m1", 0)


async def test_a_request_nobody_answers_times_out(nc):
    sub = await nc.subscribe("silent")  # someone listens, no one replies
    with pytest.raises(NatsTimeout):
        await nc.request_raw("silent", b"", b"hello", timeout=0.2)
    await sub.unsubscribe()


async def test_requests_in_flight_together_each_get_their_own_reply(nc):
    results = await asyncio.gather(*(publish_chained(nc, f"chain.c{i}", b"x", f"m{i}", 0) for i in range(50)))
    assert sorted(seq for seq, _ in results) == list(range(1, 51))
    assert not any(duplicate for _, duplicate in results)
