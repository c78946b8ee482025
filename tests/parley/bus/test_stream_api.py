"""A shard's bounds and floor over the node's ``BusClient`` (``parley/bus/stream.py`` ``_api``, ADR 0063), against a
real nats-server with JetStream: the JetStream API's replies are read raw (``request_raw``: nats-py's request and its
its ``Msg`` are not used), and the requests a shard reading makes side by side leave in one write."""

from __future__ import annotations

import asyncio
import time

import pytest

from parley import bus
from parley.bus import JetStreamReads, stream
from parley.errors import Unavailable
from parley.settings import Settings
from tests.parley.bus.test_ordered import recorded_writes

SHARDS = 4


async def test_a_readings_requests_leave_in_one_write_and_their_replies_are_read_raw(nats_url):
    settings = Settings(nats_url=nats_url, shards=SHARDS)
    nc = await bus.connect(settings, "stream api test")
    try:
        await bus.ensure_stream(nc.jetstream(), settings)
        reads = JetStreamReads(nc, settings)
        await reads.bounds(0)  # the raw replies' subscription made
        await nc.flush()
        writes, raw = recorded_writes(nc), nc._reply_count
        got = await asyncio.gather(*(reads.bounds(s) for s in range(SHARDS)),
                                   *(reads.archived_through(s) for s in range(SHARDS)))
        assert got == [(0, 0)] * SHARDS + [0] * SHARDS  # empty streams, nothing archived
        assert len(writes) == 1, writes  # one send for the reading's 8 requests
        assert writes[0].count(b"$JS.API.STREAM.INFO.") == SHARDS, writes
        assert writes[0].count(b"$JS.API.CONSUMER.INFO.") == SHARDS, writes
        assert nc._reply_count - raw == 2 * SHARDS  # each through ``request_raw``, none through nats-py's request
    finally:
        await nc.close()


async def test_a_request_nobody_answers_is_the_bus_unavailable_at_once(nats_url):
    """No responder behind an API subject (a server without JetStream, a cut-off region): the server's "no
    responders" status, told as ``bus_unavailable`` at once, as nats-py's request told it, not after the timeout."""
    nc = await bus.connect(Settings(nats_url=nats_url), "stream api test")
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable) as raised:
            await stream._api(nc, "$JS.NOBODY.INFO")
        assert raised.value.code == "bus_unavailable"
        assert time.monotonic() - started < stream.API_TIMEOUT_S / 2
    finally:
        await nc.close()
