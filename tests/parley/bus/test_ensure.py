"""Streams and buckets are created if absent and refused on drift, never changed at start; ``parley bus
migrate`` applies the configuration. Pure drift tables, then a real 3-server JetStream cluster."""

from __future__ import annotations

import dataclasses
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client
from nats.js.api import DiscardPolicy, KeyValueConfig, RePublish, StorageType, StreamConfig

from parley.bus import ensure, stream_config
from parley.bus.ensure import ConfigDrift, Drift, bucket_stream, stream_drift
from parley.settings import Secret, Settings

BASE = StreamConfig(name="S", subjects=["a.>"], num_replicas=3, max_age=60.0, duplicate_window=30.0,
                    storage=StorageType.FILE, discard=DiscardPolicy.OLD, allow_direct=True,
                    republish=RePublish(src="a.>", dest="b.>"))


def with_(**changes: object) -> StreamConfig:
    return dataclasses.replace(BASE, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(("live", "fields"), [
    (BASE, []),
    (with_(num_replicas=1), ["num_replicas"]),
    (with_(max_age=120.0), ["max_age"]),
    (with_(subjects=["a.>", "c.>"]), ["subjects"]),
    (with_(duplicate_window=300.0, num_replicas=1), ["num_replicas", "duplicate_window"]),
    (with_(republish=RePublish(src="a.>", dest="x.>")), ["republish"]),
    (with_(max_msgs=-1, max_bytes=-1, description="server-side fields we do not manage"), []),
])
def test_drift_names_each_managed_field_that_differs(live, fields):
    assert [d.field for d in stream_drift(live, BASE)] == fields


def test_unset_replicas_mean_one():
    assert [d.field for d in stream_drift(with_(num_replicas=3), with_(num_replicas=None))] == ["num_replicas"]


def test_the_refusal_names_the_stream_the_field_and_the_command():
    err = ConfigDrift([Drift("MSG", "num_replicas", 1, 3)])
    assert "MSG.num_replicas: is 1, configured 3" in err.message
    assert "parley bus migrate" in err.message and err.code == "bus_config_drift"


def test_a_bucket_stream_has_what_nats_py_creates():
    s = bucket_stream(KeyValueConfig(bucket="b", history=1, ttl=9.0, replicas=3, storage=StorageType.MEMORY))
    assert (s.name, s.subjects, s.num_replicas, s.max_age, s.duplicate_window) == ("KV_b", ["$KV.b.>"], 3, 9.0, 9.0)


@pytest.fixture
async def nc(nats_cluster) -> AsyncIterator[Client]:
    client = await nats.connect(**nats_cluster.admin_connect_options())
    yield client
    await client.close()


def settings_for(nats_cluster, name: str, replicas: int) -> Settings:
    return Settings(nats_url=nats_cluster.url_list(), stream_name=name, stream_replicas=replicas, shards=1,
                    **nats_cluster.auth.settings_for("system"))


async def test_a_process_configured_r3_refuses_an_r1_stream_until_migrate(nats_cluster, nc, tmp_path):
    name = f"T{secrets.token_hex(3)}"
    js = nc.jetstream()
    await ensure.ensure_stream(js, stream_config(settings_for(nats_cluster, name, 1), 0))
    shard = f"{name}_0"  # the one shard stream of a one-shard deployment
    try:
        r3 = settings_for(nats_cluster, name, 3)
        with pytest.raises(ConfigDrift, match="num_replicas"):
            await ensure.ensure_stream(js, stream_config(r3, 0))
        assert (await js.stream_info(shard)).config.num_replicas == 1, "the refusal changed nothing"
        env = {**os.environ, **r3.replace(secret=Secret("s" * 40), sqlite_path=str(tmp_path / "p.db"),
                                          archiver_port=0).as_env()}
        archiver = subprocess.run([sys.executable, "-m", "parley", "archiver"], env=env, capture_output=True,
                                  text=True, timeout=180)
        assert archiver.returncode == 2
        assert "num_replicas: is 1, configured 3" in archiver.stderr and "parley bus migrate" in archiver.stderr
        migrate = subprocess.run([sys.executable, "-m", "parley", "bus", "migrate"], env=env, capture_output=True,
                                 text=True, timeout=180)
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        assert f"stream {shard}: num_replicas 1 -> 3" in migrate.stdout
        assert (await js.stream_info(shard)).config.num_replicas == 3
        assert await ensure.ensure_stream(js, stream_config(r3, 0)) == []
    finally:
        await js.delete_stream(shard)


async def test_a_stream_is_created_with_the_configured_replicas_and_left_alone_when_equal(nats_cluster, nc):
    name = f"T{secrets.token_hex(3)}"
    js = nc.jetstream()
    config = stream_config(settings_for(nats_cluster, name, 3), 0)
    try:
        assert await ensure.ensure_stream(js, config) == []
        assert await ensure.ensure_stream(js, config) == []
        info = await js.stream_info(f"{name}_0")
        assert info.config.num_replicas == 3 and info.cluster is not None and len(info.cluster.replicas or []) == 2
    finally:
        await js.delete_stream(f"{name}_0")


async def test_kv_buckets_get_the_configured_replicas_and_refuse_other_ones(nats_cluster, nc):
    bucket = f"b{secrets.token_hex(3)}"
    js = nc.jetstream()
    r3 = KeyValueConfig(bucket=bucket, history=1, ttl=30.0, storage=StorageType.FILE, replicas=3)
    try:
        kv = await ensure.open_bucket(js, r3)
        await kv.put("k", b"v")
        info = await js.stream_info(f"KV_{bucket}")
        assert info.config.num_replicas == 3 and len(info.cluster.replicas or []) == 2
        r1 = KeyValueConfig(bucket=bucket, history=1, ttl=30.0, storage=StorageType.FILE, replicas=1)
        with pytest.raises(ConfigDrift, match=f"KV_{bucket}.num_replicas: is 3, configured 1"):
            await ensure.open_bucket(js, r1)
        assert [d.field for d in await ensure.ensure_bucket(js, r1, migrate=True)] == ["num_replicas"]
        assert (await js.stream_info(f"KV_{bucket}")).config.num_replicas == 1
        assert (await (await js.key_value(bucket)).get("k")).value == b"v", "migrating kept the data"
    finally:
        await js.delete_key_value(bucket)
