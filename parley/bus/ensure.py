"""Making sure a stream or KV bucket exists as configured — without ever changing a live one by surprise.

At start a process calls ``ensure_stream`` / ``ensure_bucket`` for what it uses: absent → created with
the configured replicas and limits; present and equal on every field we manage → used as it is;
present and different (replicas, limits, subjects…) → ``ConfigDrift``, which names each differing field
and the command that applies the configuration (``parley bus migrate``). Before this, any process
started with other settings rewrote the stream (an R3 stream went to R1 when one process had the
default), and buckets never got new replicas at all. ``migrate=True`` is the explicit path that command
takes: it updates what differs and returns the changes.

``stream_drift`` is pure (two ``StreamConfig`` in, differences out); the rest is a thin JetStream shell.
Both work on any stream config, so a deployment with several message streams (shards) ensures each.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from nats.js.api import DiscardPolicy, KeyValueConfig, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import APIError, NotFoundError
from nats.js.kv import KeyValue

from parley.bus.outage import is_transient
from parley.errors import ParleyError

log = logging.getLogger("parley.bus")
T = TypeVar("T")
START_PATIENCE_S = 30.0
KV_DUPLICATE_WINDOW_S = 120.0  # nats-py's, capped by the bucket's TTL
MIGRATE_COMMAND = "parley bus migrate"
STREAM_NAME_IN_USE = 10058  # created meanwhile by another process
# the fields a deployment configures; others (server-assigned, or placement) are left alone
MANAGED = ("subjects", "num_replicas", "max_age", "max_msgs", "max_bytes", "max_msgs_per_subject",
           "max_msg_size", "duplicate_window", "storage", "retention", "discard", "allow_direct", "republish")
UNLIMITED = (None, -1)  # what "no limit" looks like on each side


@dataclass(frozen=True)
class Drift:
    """One field of a stream that differs from what this process is configured for."""

    stream: str
    field: str
    have: Any
    want: Any

    def __str__(self) -> str:
        return f"{self.stream}.{self.field}: is {self.have!r}, configured {self.want!r}"


class ConfigDrift(ParleyError):
    """A stream or bucket exists with other replicas/limits than configured: refuse to start."""

    default_code = "bus_config_drift"

    def __init__(self, drift: list[Drift]) -> None:
        names = ", ".join(sorted({d.stream for d in drift}))
        lines = "; ".join(str(d) for d in drift)
        super().__init__(f"{names} exists with a different configuration ({lines}). Nothing was changed. "
                         f"Run `{MIGRATE_COMMAND}` to apply the configured settings, or configure the "
                         f"existing values", drift=[str(d) for d in drift])
        self.drift = drift


def _comparable(field: str, value: Any) -> Any:
    if field == "subjects":
        return sorted(value or [])
    if field == "republish" and value is not None:
        return (value.src, value.dest, bool(value.headers_only))
    if field in ("max_age", "duplicate_window"):
        return round(float(value or 0), 3)
    if field in ("max_msgs", "max_bytes", "max_msgs_per_subject", "max_msg_size") and value in UNLIMITED:
        return -1
    if hasattr(value, "value"):  # an enum
        return value.value
    return value


def stream_drift(have: StreamConfig, want: StreamConfig) -> list[Drift]:
    """The managed fields on which ``have`` (the live stream) differs from ``want``; ``want``'s unset
    (None) fields are not compared, except that replicas default to 1."""
    out = []
    for field in MANAGED:
        wanted = getattr(want, field)
        if field == "num_replicas" and wanted is None:
            wanted = 1
        if wanted is None:
            continue
        if _comparable(field, getattr(have, field)) != _comparable(field, wanted):
            out.append(Drift(want.name or "?", field, getattr(have, field), wanted))
    return out


def bucket_stream(config: KeyValueConfig) -> StreamConfig:
    """The stream behind a KV bucket, with the managed fields a ``KeyValueConfig`` sets (as nats-py
    creates it: history → max msgs per subject, ttl → max age, replicas, storage, size limits)."""
    return StreamConfig(
        name=f"KV_{config.bucket}", subjects=[f"$KV.{config.bucket}.>"], discard=DiscardPolicy.NEW,
        max_age=config.ttl or 0.0, max_msgs_per_subject=config.history, num_replicas=config.replicas,
        storage=config.storage, max_bytes=config.max_bytes, max_msg_size=config.max_value_size,
        duplicate_window=min(config.ttl, KV_DUPLICATE_WINDOW_S) if config.ttl else KV_DUPLICATE_WINDOW_S,
    )


async def _live(js: JetStreamContext, name: str) -> StreamConfig | None:
    try:
        return (await js.stream_info(name)).config
    except NotFoundError:
        return None


async def _apply(js: JetStreamContext, live: StreamConfig, want: StreamConfig, migrate: bool) -> list[Drift]:
    drift = stream_drift(live, want)
    if drift and not migrate:
        raise ConfigDrift(drift)
    if drift:
        changes = {d.field: d.want for d in drift}
        await js.update_stream(dataclasses.replace(live, **changes))
    return drift


async def _patiently(attempt: Callable[[], Awaitable[T]], timeout: float = START_PATIENCE_S) -> T:
    """``attempt`` again while the cluster is electing (a process started with its servers, or during a
    restart); any other error at once."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await attempt()
        except Exception as err:
            if not is_transient(err) or time.monotonic() > deadline:
                raise
            log.info("JetStream is not ready (%s); trying again", type(err).__name__)
            await asyncio.sleep(0.5)


async def ensure_stream(js: JetStreamContext, want: StreamConfig, *, migrate: bool = False) -> list[Drift]:
    """Create ``want`` if absent; refuse (``ConfigDrift``) if it differs, unless ``migrate``: then
    update it. Returns what was (or, refusing, would be) changed."""
    return await _patiently(lambda: _ensure_stream(js, want, migrate))


async def _ensure_stream(js: JetStreamContext, want: StreamConfig, migrate: bool) -> list[Drift]:
    assert want.name, "a stream config needs a name"
    live = await _live(js, want.name)
    if live is None:
        try:
            await js.add_stream(want)
            return []
        except APIError as err:
            if err.err_code != STREAM_NAME_IN_USE:
                raise
        live = await _live(js, want.name)
        assert live is not None
    return await _apply(js, live, want, migrate)


async def ensure_bucket(js: JetStreamContext, config: KeyValueConfig, *, migrate: bool = False) -> list[Drift]:
    """``ensure_stream`` for a KV bucket: created with nats-py's own layout, checked like a stream."""
    return await _patiently(lambda: _ensure_bucket(js, config, migrate))


async def _ensure_bucket(js: JetStreamContext, config: KeyValueConfig, migrate: bool) -> list[Drift]:
    want = bucket_stream(config)
    assert want.name
    live = await _live(js, want.name)
    if live is None:
        try:
            await js.create_key_value(config)
            return []
        except APIError as err:
            if err.err_code != STREAM_NAME_IN_USE:
                raise
        live = await _live(js, want.name)
        assert live is not None
    return await _apply(js, live, want, migrate)


async def open_bucket(js: JetStreamContext, config: KeyValueConfig) -> KeyValue:
    """The bucket, created if absent; ``ConfigDrift`` if it exists with other replicas or limits."""
    await ensure_bucket(js, config)
    return await js.key_value(config.bucket)
