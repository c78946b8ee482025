"""The message streams in JetStream: their configuration, the archiver's consumers, the reads sync needs.

There is one stream per shard (``parley.shards``): ``MSG_<i>`` captures ``msg.<i>.>`` (one subject per
conversation homed there) and republishes every stored message to ``dlv.<conv>`` in stream order, with
headers ``Nats-Stream`` and ``Nats-Sequence`` (together: the message id). ``JetStreamReads`` is the
node's ``StreamReads``: a shard's bounds, the archiver's ack floor there, a conversation's last id and a
filtered range (an ephemeral consumer per read). ``publish_chained`` is the node's publish of a message: its
dedup id and the subject's expected last sequence in a header block made in one format, the PubAck read
raw (``BusClient.request_raw``).
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
    Placement,
    RePublish,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.client import JetStreamContext
from nats.js.errors import APIError, NoStreamResponseError

from parley.bus import ensure
from parley.bus.ordered import NO_RESPONDERS, BusClient
from parley.bus.outage import TRANSIENT, is_transient, unavailable
from parley.bus.port import StreamRow
from parley.errors import Unavailable
from parley.ids import DELIVERY_PREFIX
from parley.layout import placement_tag
from parley.settings import Settings
from parley.shards import message_subject, pack, shard_subjects, stream_of

log = logging.getLogger("parley.bus")

ARCHIVER = "archiver"
WRONG_LAST_SEQUENCE = 10071


def stream_config(settings: Settings, shard: int) -> StreamConfig:
    """Shard ``shard``'s stream: captures ``msg.<shard>.>``, republishes each message to ``dlv.<conv>``."""
    return StreamConfig(
        name=stream_of(settings.stream_name, shard),
        subjects=[shard_subjects(shard)],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=float(settings.stream_max_age_s),
        duplicate_window=float(settings.dedup_window_s),
        num_replicas=settings.stream_replicas,
        allow_direct=True,
        republish=RePublish(src=shard_subjects(shard), dest=DELIVERY_PREFIX + ">"),
        placement=_placement(settings.layout().region_of(shard)),
    )


def _placement(region: str | None) -> Placement | None:
    """A region's streams live on its NATS cluster (servers tagged ``region:<name>``)."""
    return Placement(tags=[placement_tag(region)]) if region else None


def local_shards(settings: Settings) -> range:
    """The shards this process's region homes (every shard without regions): the streams it creates and
    its workers consume."""
    return settings.layout().shards_in(settings.region)


async def ensure_stream(js: JetStreamContext, settings: Settings) -> None:
    """Every shard stream of this region: created if absent; a process refuses to start (``ConfigDrift``)
    if one differs from the settings — never rewrite a live stream here (``parley bus migrate`` does, on
    request). Another region's streams are that region's to create (a process starts while the link to
    it is down)."""
    for shard in local_shards(settings):
        await ensure.ensure_stream(js, stream_config(settings, shard))


def message_streams(settings: Settings) -> list[str]:
    """The streams holding this region's messages (one per shard; every shard without regions): the
    workers run one consumer on each, so a region's workers archive and push its own shards."""
    return [stream_of(settings.stream_name, shard) for shard in local_shards(settings)]


async def ensure_archiver_consumer(js: JetStreamContext, settings: Settings, stream: str | None = None) -> None:
    """The durable all archivers share on each shard stream (or on ``stream`` alone): each message goes to
    one of them at a time."""
    for shard in local_shards(settings):
        name = stream_of(settings.stream_name, shard)
        if stream is not None and stream != name:
            continue
        await js.add_consumer(
            name,
            ConsumerConfig(
                durable_name=ARCHIVER,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=settings.archiver_ack_wait_s,
                max_ack_pending=20000,
                filter_subject=shard_subjects(shard),
            ),
        )


API_TIMEOUT_S = 5.0


async def _api(nc: Client, subject: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    payload = orjson.dumps(body) if body else b""
    try:
        if isinstance(nc, BusClient):  # the reply as it came: no ``Msg``, no hop through nats-py's inbox; a shard
            # reading's requests, made side by side, leave in one write (ADR 0063)
            status, data = await nc.request_raw(subject, b"", payload, API_TIMEOUT_S, alone=False)
            if status is not None and status.startswith(NO_RESPONDERS):
                raise NoRespondersError
        else:
            data = (await nc.request(subject, payload, timeout=API_TIMEOUT_S)).data
    except TRANSIENT as err:
        raise unavailable(err, subject) from err
    return orjson.loads(data)  # type: ignore[no-any-return]


async def stream_bounds(nc: Client, settings: Settings, shard: int) -> tuple[int, int]:
    """The first and last sequences shard ``shard``'s stream holds now."""
    info = await _api(nc, f"$JS.API.STREAM.INFO.{stream_of(settings.stream_name, shard)}")
    if "error" in info:
        raise Unavailable(f"stream info: {info['error']}", code="bus_unavailable")
    return int(info["state"]["first_seq"]), int(info["state"]["last_seq"])


async def archived_through(nc: Client, settings: Settings, shard: int) -> int:
    """Every message of the shard with a sequence at or below this is in the store (the ack floor)."""
    info = await _api(nc, f"$JS.API.CONSUMER.INFO.{stream_of(settings.stream_name, shard)}.{ARCHIVER}")
    if "error" in info:
        return 0
    return int(info["ack_floor"]["stream_seq"])


async def last_of_subject(nc: Client, settings: Settings, shard: int, subject: str) -> tuple[int, bytes | None]:
    """The last sequence on ``subject`` in the shard's stream and its payload ((0, None) if none)."""
    try:
        msg = await nc.request(f"$JS.API.DIRECT.GET.{stream_of(settings.stream_name, shard)}",
                               orjson.dumps({"last_by_subj": subject}), timeout=5)
    except TRANSIENT as err:
        raise unavailable(err, "direct get") from err
    headers = msg.headers or {}
    if headers.get("Status") == "404":
        return 0, None
    if "Nats-Sequence" not in headers:
        raise Unavailable(f"direct get failed: {headers}", code="bus_unavailable")
    return int(headers["Nats-Sequence"]), msg.data


async def last_id_of(nc: Client, settings: Settings, shard: int, conv: str) -> int:
    """The id of ``conv``'s last message still in the stream (0 if none)."""
    seq, _ = await last_of_subject(nc, settings, shard, message_subject(shard, conv))
    return pack(shard, seq) if seq else 0


async def read_stream(
    js: JetStreamContext, settings: Settings, shard: int, filters: Iterable[str], *, start: int, end: int
) -> list[tuple[int, str, bytes]]:
    """Messages of the shard with sequences in [start, end] on any of ``filters``, in order."""
    out: list[tuple[int, str, bytes]] = []
    async for batch in stream_batches(js, settings, shard, filters, start=start, end=end):
        out.extend(batch)
    return out


async def stream_batches(
    js: JetStreamContext, settings: Settings, shard: int, filters: Iterable[str], *, start: int, end: int,
    size: int = 500,
) -> AsyncIterator[list[tuple[int, str, bytes]]]:
    """Like ``read_stream`` but a batch at a time, so a caller can wait for room between batches.
    Rows are (id, subject, payload) with ids packed (``parley.shards``)."""
    if start > end:
        return
    stream = stream_of(settings.stream_name, shard)
    try:
        info = await js.add_consumer(
            stream,
            ConsumerConfig(
                filter_subjects=list(filters),
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=start,
                ack_policy=AckPolicy.NONE,
                inactive_threshold=30.0,
                mem_storage=True,
            ),
        )
    except Exception as err:
        if not is_transient(err):
            raise
        raise unavailable(err, "reading the stream") from err
    sub = await js.pull_subscribe_bind(consumer=info.name, stream=stream)
    try:
        pending = info.num_pending or 0
        while pending > 0:
            try:
                msgs = await sub.fetch(batch=min(pending, size), timeout=2)
            except (NatsTimeout, TimeoutError) as err:  # nats-py raises either, depending on where it timed out
                # messages are pending and none came (an election): stopping here would skip them
                raise unavailable(err, "reading the stream") from err
            batch = [(m.metadata.sequence.stream, m.subject, m.data) for m in msgs]
            pending = msgs[-1].metadata.num_pending if msgs else 0
            within = [(pack(shard, seq), subject, data) for seq, subject, data in batch if seq <= end]
            if within:
                yield within
            if len(within) < len(batch):
                return
    finally:
        await sub.unsubscribe()
        try:
            await js.delete_consumer(stream, info.name)
        except Exception:  # it expires by itself after inactive_threshold
            pass


PUBLISH_TIMEOUT_S = 5.0


async def publish_chained(nc: BusClient, subject: str, payload: bytes, msg_id: str, expected: int,
                          timeout: float = PUBLISH_TIMEOUT_S) -> tuple[int, bool]:
    """Store ``payload`` on ``subject`` if the subject's last sequence is ``expected`` (headers
    ``Nats-Msg-Id``, ``Nats-Expected-Last-Subject-Sequence``): (its sequence, whether it was a duplicate of
    ``msg_id``). Raises as nats-py's ``js.publish`` does: ``APIError`` (a wrong last sequence among them),
    ``NoStreamResponseError`` (no stream leader answered), nats-py's ``TimeoutError``."""
    headers = b"NATS/1.0\r\nNats-Msg-Id: %b\r\nNats-Expected-Last-Subject-Sequence: %d\r\n\r\n" % (
        msg_id.encode(), expected)
    status, data = await nc.request_raw(subject, headers, payload, timeout)
    if status is not None and status.startswith(NO_RESPONDERS):
        raise NoStreamResponseError
    ack = orjson.loads(data)
    if "error" in ack:
        raise APIError.from_error(ack["error"])
    return int(ack["seq"]), bool(ack.get("duplicate"))


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

    @property
    def shards(self) -> int:
        return self._settings.shards

    async def bounds(self, shard: int) -> tuple[int, int]:
        return await stream_bounds(self._nc, self._settings, shard)

    async def archived_through(self, shard: int) -> int:
        return await archived_through(self._nc, self._settings, shard)

    async def last_of(self, shard: int, conv: str) -> int:
        return await last_id_of(self._nc, self._settings, shard, conv)

    def batches(self, shard: int, filters: Iterable[str], *, start: int, end: int,
                size: int) -> AsyncIterator[list[StreamRow]]:
        return stream_batches(self._js, self._settings, shard, filters, start=start, end=end, size=size)
