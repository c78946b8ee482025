"""Live rooms on the bus: the ``LIVE`` stream, the ``live_rooms`` bucket of room meta, the live archiver's
consumer (ADR 0018).

``LIVE`` captures ``live.msg.>`` (one subject per room), deduplicates sends by ``<user>.<cid>`` within
``PARLEY_DEDUP_WINDOW_S``, keeps ``PARLEY_LIVE_STREAM_MAX_AGE_S`` (the store keeps every message) and
republishes each stored message to ``live.dlv.<room>`` with ``Nats-Sequence``: the message id. Its own
limits, apart from the conversation shards, so a hot room never ages a DM out.
``live_rooms``: one key per room, its meta as JSON (``parley.live.rooms``), written by the API only, with
compare-and-set on the revision so two moderators' changes never overwrite each other.
"""

from __future__ import annotations

from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    RePublish,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.client import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from parley.bus import ensure
from parley.errors import NotFound
from parley.live.rooms import DLV, MSG, RoomMeta, decode_meta
from parley.settings import Settings

STREAM, BUCKET, ARCHIVER = "LIVE", "live_rooms", "live_archiver"
MAX_ESCAPED = 6  # a body byte is at most 6 in its JSON payload (a control character: \u001f)


def stream_config(settings: Settings) -> StreamConfig:
    return StreamConfig(
        name=STREAM, subjects=[MSG + ">"], retention=RetentionPolicy.LIMITS, storage=StorageType.FILE,
        discard=DiscardPolicy.OLD, max_age=float(settings.live_stream_max_age_s),
        duplicate_window=float(settings.dedup_window_s), num_replicas=settings.stream_replicas, allow_direct=True,
        max_msg_size=MAX_ESCAPED * settings.max_body_bytes + 1024, republish=RePublish(src=MSG + ">", dest=DLV + ">"),
    )


def rooms_bucket(settings: Settings) -> KeyValueConfig:
    return KeyValueConfig(bucket=BUCKET, history=1, storage=StorageType.FILE, replicas=settings.bucket_replicas())


async def ensure_live(js: JetStreamContext, settings: Settings) -> KeyValue:
    """The stream and the rooms bucket, created if absent (``ConfigDrift`` if they differ)."""
    await ensure.ensure_stream(js, stream_config(settings))
    return await ensure.open_bucket(js, rooms_bucket(settings))


async def ensure_archiver_consumer(js: JetStreamContext, settings: Settings) -> None:
    await js.add_consumer(STREAM, ConsumerConfig(
        durable_name=ARCHIVER, ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
        ack_wait=settings.archiver_ack_wait_s, max_ack_pending=20000, filter_subject=MSG + ">"))


class Rooms:
    """Room meta in the ``live_rooms`` bucket (read side; the API writes: ``parley.api.live``)."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def get(self, room: str) -> tuple[RoomMeta, int]:
        """The room's meta and its revision; ``unknown_room`` if there is none."""
        try:
            entry = await self.kv.get(room)
        except KeyNotFoundError:
            raise NotFound("no such live room", code="unknown_room", room=room) from None
        if entry.value is None:
            raise NotFound("no such live room", code="unknown_room", room=room)
        return decode_meta(entry.value), entry.revision or 0
