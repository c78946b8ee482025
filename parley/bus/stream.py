"""The message stream in JetStream: its configuration, the archiver's consumer, and the reads sync needs.

The ``MSG`` stream captures ``msg.>`` (one subject per conversation) and republishes every stored
message to ``dlv.>`` in stream order, with headers ``Nats-Sequence`` (the message id) and
``Nats-Last-Sequence``. ``JetStreamReads`` is the node's ``StreamReads``: the stream's bounds, the
archiver's ack floor, a subject's last id and a filtered range (an ephemeral consumer per read).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RePublish,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.client import JetStreamContext
from nats.js.errors import APIError, NotFoundError

from parley.bus.port import StreamRow
from parley.errors import Unavailable
from parley.ids import DELIVERY_PREFIX, MSG_PREFIX
from parley.settings import Settings

log = logging.getLogger("parley.bus")

ARCHIVER = "archiver"
WRONG_LAST_SEQUENCE = 10071


def stream_config(settings: Settings) -> StreamConfig:
    return StreamConfig(
        name=settings.stream_name,
        subjects=[MSG_PREFIX + ">"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=float(settings.stream_max_age_s),
        duplicate_window=float(settings.dedup_window_s),
        num_replicas=settings.stream_replicas,
        allow_direct=True,
        republish=RePublish(src=MSG_PREFIX + ">", dest=DELIVERY_PREFIX + ">"),
    )


async def ensure_stream(js: JetStreamContext, settings: Settings) -> None:
    config = stream_config(settings)
    try:
        await js.stream_info(settings.stream_name)
    except NotFoundError:
        try:
            await js.add_stream(config)
            return
        except APIError as err:
            if err.err_code != 10058:  # created meanwhile by another process
                raise
    await js.update_stream(config)


def message_streams(settings: Settings) -> list[str]:
    """Every stream that holds messages in this deployment: the workers run one consumer on each."""
    return [settings.stream_name]


async def ensure_archiver_consumer(js: JetStreamContext, settings: Settings, stream: str | None = None) -> None:
    """The durable all archivers share on ``stream``: each message goes to one of them at a time."""
    await js.add_consumer(
        stream or settings.stream_name,
        ConsumerConfig(
            durable_name=ARCHIVER,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=settings.archiver_ack_wait_s,
            max_ack_pending=20000,
            filter_subject=MSG_PREFIX + ">",
        ),
    )


async def _api(nc: Client, subject: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    try:
        msg = await nc.request(subject, orjson.dumps(body) if body else b"", timeout=5)
    except (TimeoutError, NatsTimeout, NoRespondersError) as err:
        raise Unavailable(f"NATS did not answer {subject}", code="bus_unavailable") from err
    return orjson.loads(msg.data)  # type: ignore[no-any-return]


async def stream_bounds(nc: Client, settings: Settings) -> tuple[int, int]:
    """The first and last ids the stream holds now."""
    info = await _api(nc, f"$JS.API.STREAM.INFO.{settings.stream_name}")
    if "error" in info:
        raise Unavailable(f"stream info: {info['error']}", code="bus_unavailable")
    return int(info["state"]["first_seq"]), int(info["state"]["last_seq"])


async def archived_through(nc: Client, settings: Settings) -> int:
    """Every message with an id at or below this has been written to the store (the ack floor)."""
    info = await _api(nc, f"$JS.API.CONSUMER.INFO.{settings.stream_name}.{ARCHIVER}")
    if "error" in info:
        return 0
    return int(info["ack_floor"]["stream_seq"])


async def last_seq_of_subject(nc: Client, settings: Settings, subject: str) -> int:
    try:
        msg = await nc.request(
            f"$JS.API.DIRECT.GET.{settings.stream_name}", orjson.dumps({"last_by_subj": subject}), timeout=5
        )
    except (TimeoutError, NatsTimeout, NoRespondersError) as err:
        raise Unavailable("NATS did not answer a direct get", code="bus_unavailable") from err
    headers = msg.headers or {}
    if headers.get("Status") == "404":
        return 0
    if "Nats-Sequence" not in headers:
        raise Unavailable(f"direct get failed: {headers}", code="bus_unavailable")
    return int(headers["Nats-Sequence"])


async def read_stream(
    js: JetStreamContext, settings: Settings, filters: Iterable[str], *, start: int, end: int
) -> list[tuple[int, str, bytes]]:
    """Messages with ids in [start, end] on any of ``filters``, in id order."""
    out: list[tuple[int, str, bytes]] = []
    async for batch in stream_batches(js, settings, filters, start=start, end=end):
        out.extend(batch)
    return out


async def stream_batches(
    js: JetStreamContext, settings: Settings, filters: Iterable[str], *, start: int, end: int, size: int = 500
) -> AsyncIterator[list[tuple[int, str, bytes]]]:
    """Like ``read_stream`` but a batch at a time, so a caller can wait for room between batches."""
    if start > end:
        return
    info = await js.add_consumer(
        settings.stream_name,
        ConsumerConfig(
            filter_subjects=list(filters),
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=30.0,
            mem_storage=True,
        ),
    )
    sub = await js.pull_subscribe_bind(consumer=info.name, stream=settings.stream_name)
    try:
        pending = info.num_pending or 0
        while pending > 0:
            try:
                msgs = await sub.fetch(batch=min(pending, size), timeout=2)
            except (NatsTimeout, TimeoutError):  # nats-py raises either, depending on where it timed out
                break
            batch = [(m.metadata.sequence.stream, m.subject, m.data) for m in msgs]
            pending = msgs[-1].metadata.num_pending if msgs else 0
            within = [row for row in batch if row[0] <= end]
            if within:
                yield within
            if len(within) < len(batch):
                return
    finally:
        await sub.unsubscribe()
        try:
            await js.delete_consumer(settings.stream_name, info.name)
        except Exception:  # it expires by itself after inactive_threshold
            pass


def parse_wrong_last_sequence(err: APIError) -> int | None:
    """The stream's real last sequence for the subject, from a 'wrong last sequence: N' error."""
    if err.err_code != WRONG_LAST_SEQUENCE or not err.description:
        return None
    tail = err.description.rsplit(":", 1)[-1].strip()
    return int(tail) if tail.isdigit() else None


class JetStreamReads:
    """``StreamReads`` over a NATS connection."""

    def __init__(self, nc: Client, settings: Settings) -> None:
        self._nc, self._js, self._settings = nc, nc.jetstream(), settings

    async def bounds(self) -> tuple[int, int]:
        return await stream_bounds(self._nc, self._settings)

    async def archived_through(self) -> int:
        return await archived_through(self._nc, self._settings)

    async def last_of(self, subject: str) -> int:
        return await last_seq_of_subject(self._nc, self._settings, subject)

    def batches(self, filters: Iterable[str], *, start: int, end: int, size: int) -> AsyncIterator[list[StreamRow]]:
        return stream_batches(self._js, self._settings, filters, start=start, end=end, size=size)
