"""JetStream publishes sent together, acks read together (``parley.bus.acked``) against a real nats-server: each
publish's outcome in the batch's order, and the errors nats-py's ``js.publish`` raised for the same publish (the
presence worker's error handling, ``parley.bus.outage``, relies on them): no stream, the stream's refusal, no
answer in time, a key a KV bucket refuses. Overlapping batches each get their own answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import StreamConfig
from nats.js.errors import APIError, InvalidKeyError, KeyNotFoundError, NoStreamResponseError

from parley import bus
from parley.bus.acked import KV_DELETE, AckedPublishes, Publish, kv_subject, pub_ack
from parley.presence_bus import ONLINE_BUCKET, open_buckets
from parley.settings import Settings


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[bus.BusClient]:
    client = await bus.connect(Settings(nats_url=nats_url), "test")
    await client.jetstream().add_stream(StreamConfig(name="ACKED", subjects=["acked.>"]))
    yield client
    await client.close()


def test_an_ack_is_read_as_js_publish_reads_it():
    assert pub_ack(None, b'{"stream":"S","seq":7}') == 7
    assert isinstance(pub_ack(b"NATS/1.0 503\r\n\r\n", b""), NoStreamResponseError)
    refused = pub_ack(None, b'{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"}}')
    assert isinstance(refused, APIError) and refused.err_code == 10071
    assert isinstance(pub_ack(None, b"not json"), APIError)


def test_a_kv_subject_refuses_the_keys_the_bucket_refuses():
    assert kv_subject("presence", "u-1_a=b/c.d") == "$KV.presence.u-1_a=b/c.d"
    for bad in ("", ".a", "a.", "a@b", "a b", "a*", "a>"):
        with pytest.raises(InvalidKeyError):
            kv_subject("presence", bad)


async def test_a_batch_is_stored_in_order_and_each_outcome_is_its_sequence(nc):
    writes = AckedPublishes(nc)
    outcomes = await writes.send([Publish(f"acked.{i}", b"%d" % i) for i in range(100)])
    assert all(isinstance(o, int) for o in outcomes)
    assert outcomes == sorted(outcomes) and len(set(outcomes)) == 100
    last = await nc.jetstream().get_msg("ACKED", outcomes[-1])
    assert last.subject == "acked.99" and last.data == b"99"
    assert await writes.send([]) == []


async def test_each_publish_gets_the_error_js_publish_raised(nc):
    writes = AckedPublishes(nc, timeout=0.5)
    silent = await nc.subscribe("silent.>")  # a subscriber that never answers: no ack in time
    stored = await writes.send([Publish("acked.x", b"1")])
    outcomes = await writes.send([
        Publish("nostream.x", b"1"),
        Publish("acked.x", b"2", {"Nats-Expected-Last-Subject-Sequence": str(stored[0] + 9)}),  # refused
        Publish("silent.x", b"3"),
        Publish("acked.x", b"4", {"Nats-Expected-Last-Subject-Sequence": str(stored[0])}),
    ])
    assert isinstance(outcomes[0], NoStreamResponseError)
    assert isinstance(outcomes[1], APIError) and outcomes[1].err_code == 10071
    assert isinstance(outcomes[2], NatsTimeout)
    assert isinstance(outcomes[3], int) and outcomes[3] > stored[0]
    await silent.unsubscribe()


async def test_overlapping_batches_each_get_their_own_answers(nc):
    writes = AckedPublishes(nc)
    a, b = await asyncio.gather(writes.send([Publish(f"acked.a{i}", b"a") for i in range(50)]),
                                writes.send([Publish(f"acked.b{i}", b"b") for i in range(50)]))
    for batch, name in ((a, "acked.a"), (b, "acked.b")):
        for seq in (batch[0], batch[-1]):
            assert isinstance(seq, int)
            assert (await nc.jetstream().get_msg("ACKED", seq)).subject.startswith(name)


async def test_a_kv_put_and_delete_marker_read_back_as_the_buckets_own(nats_url, nc):
    online, _ = await open_buckets(nc.jetstream(), Settings(nats_url=nats_url))
    writes = AckedPublishes(nc)
    put, = await writes.send([Publish(kv_subject(ONLINE_BUCKET, "acked-u1"), b'{"last_active_at":1}')])
    assert (await online.get("acked-u1")).value == b'{"last_active_at":1}'
    deleted, = await writes.send([Publish(kv_subject(ONLINE_BUCKET, "acked-u1"), headers=KV_DELETE)])
    assert isinstance(put, int) and isinstance(deleted, int) and deleted > put
    with pytest.raises(KeyNotFoundError):
        await online.get("acked-u1")
