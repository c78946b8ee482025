"""A kept run dir's bus brought to the configured streams and buckets (``parley.tools.bus_upgrade``), against a
real nats-server: a bucket made with another last-seen TTL is changed, and the change is said."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
import pytest
from parley.tools import bus_upgrade

from parley.bus import buckets, ensure
from parley.settings import Settings


def test_a_run_dir_is_kept_once_it_holds_a_jetstream_store(tmp_path: Path):
    assert not bus_upgrade.kept(tmp_path)
    (tmp_path / "nats").mkdir()
    assert not bus_upgrade.kept(tmp_path)  # made, never used
    (tmp_path / "nats" / "jetstream").mkdir()
    assert bus_upgrade.kept(tmp_path)


async def made_with(nats_url: str, settings: Settings) -> None:
    nc = await nats.connect(nats_url)
    try:
        await ensure.ensure_bucket(nc.jetstream(), buckets.last_seen(settings))
    finally:
        await nc.close()


async def refused(nats_url: str, settings: Settings) -> bool:
    """Whether a process configured with ``settings`` would refuse the last-seen bucket (``ConfigDrift``)."""
    nc = await nats.connect(nats_url)
    try:
        await ensure.ensure_bucket(nc.jetstream(), buckets.last_seen(settings))
    except ensure.ConfigDrift:
        return True
    finally:
        await nc.close()
    return False


@pytest.mark.integration
def test_a_bucket_made_with_another_ttl_is_brought_to_the_configured_one_and_said(nats_url: str):
    earlier, now = Settings(nats_url=nats_url, last_seen_ttl_s=86400), Settings(nats_url=nats_url)
    asyncio.run(made_with(nats_url, earlier))
    assert asyncio.run(refused(nats_url, now))  # what the roles would meet
    said: list[str] = []
    lines = bus_upgrade.upgrade(now, said.append)
    assert [line for line in lines if line.startswith(f"bucket {buckets.LAST_SEEN}:")], lines
    assert said == ["parley up: applied to the run dir's bus: " + "; ".join(lines)]
    assert not asyncio.run(refused(nats_url, now))
    assert bus_upgrade.upgrade(now, said.append) == [] and len(said) == 1  # nothing: quiet
