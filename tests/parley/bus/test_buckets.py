"""The ``presence`` bucket's TTL (docs/adr/0046): the larger of three presence timeouts and ten minutes, the refresh a
third of it; a bucket left by an earlier release (three timeouts) is refused until ``parley bus migrate``. A real
nats-server."""

from __future__ import annotations

import dataclasses

import nats
import pytest

from parley.bus import buckets
from parley.bus.ensure import ConfigDrift, ensure_bucket
from parley.settings import Settings


@pytest.mark.parametrize("timeout_s, ttl_s", [(30.0, 600.0), (3.0, 600.0), (200.0, 600.0), (300.0, 900.0)])
def test_the_presence_ttl_is_three_timeouts_or_ten_minutes_and_the_refresh_a_third_of_it(timeout_s, ttl_s):
    settings = Settings(presence_timeout_s=timeout_s)
    assert buckets.presence(settings).ttl == buckets.presence_ttl_s(settings) == ttl_s
    assert buckets.presence_refresh_s(settings) == ttl_s / 3
    assert buckets.presence_refresh_s(settings) >= timeout_s  # never rewritten more often than it was before


async def test_a_presence_bucket_with_the_old_ttl_is_refused_until_migrated(nats_url):
    settings = Settings(nats_url=nats_url)
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await js.create_key_value(dataclasses.replace(buckets.presence(settings), ttl=90.0))  # before ADR 0046
        with pytest.raises(ConfigDrift) as refused:
            await ensure_bucket(js, buckets.presence(settings))
        assert "KV_presence.max_age: is 90.0, configured 600.0" in str(refused.value)
        applied = await ensure_bucket(js, buckets.presence(settings), migrate=True)
        assert sorted(d.field for d in applied) == ["duplicate_window", "max_age"]  # the window follows the TTL
        assert await ensure_bucket(js, buckets.presence(settings)) == []
    finally:
        await nc.close()
