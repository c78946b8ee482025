"""The ``last_seen`` bucket forgets a user after ``PARLEY_LAST_SEEN_TTL_S`` (docs/adr/0016): it holds only the
users active within that time, and a forgotten one reads as never seen. A real nats-server."""

from __future__ import annotations

import nats
import orjson

from parley.bus import buckets
from parley.presence_bus import open_buckets, read_presence
from parley.settings import Settings
from tests.poll import eventually


def test_the_bucket_has_the_configured_ttl():
    assert buckets.last_seen(Settings()).ttl == 365 * 86400
    assert buckets.last_seen(Settings(last_seen_ttl_s=60.0)).ttl == 60.0


async def test_a_user_not_seen_within_the_ttl_reads_as_never_seen(nats_url):
    nc = await nats.connect(nats_url)
    try:
        online, seen = await open_buckets(nc.jetstream(), Settings(nats_url=nats_url, last_seen_ttl_s=1.0))
        await seen.put("alice", orjson.dumps({"last_active_at": 1795344391200}))
        assert await read_presence(online, seen, ["alice"]) == [
            {"user": "alice", "online": False, "last_active_at": 1795344391200}]

        async def forgotten() -> bool:
            return (await read_presence(online, seen, ["alice"]))[0]["last_active_at"] is None

        await eventually(forgotten, what="alice forgotten by the last_seen bucket", timeout=15)
    finally:
        await nc.close()
