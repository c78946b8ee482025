"""The attachments' records (``AttachmentMeta``) in the KV bucket ``attachments``, one key per attachment id.

The API creates a record once the bytes are stored (nothing half-way: a failed upload deletes what it had
put) and the sweep deletes it after them (``parley.attachments.sweep``).
A node claims an attachment for a message by a compare-and-set on the record's revision: two messages
racing for one upload cannot both win.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, Placement, StorageType
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

from parley.attachments.records import AttachmentMeta
from parley.bus.ensure import open_bucket
from parley.errors import Conflict
from parley.layout import placement_tag
from parley.settings import Settings

BUCKET = "attachments"
RECORD_BYTES = 4096


def bucket_config(settings: Settings) -> KeyValueConfig:
    region = settings.layout().control_region
    return KeyValueConfig(bucket=BUCKET, history=1, storage=StorageType.FILE, max_value_size=RECORD_BYTES,
                          replicas=settings.bucket_replicas(),
                          placement=Placement(tags=[placement_tag(region)]) if region else None)


class Catalog:
    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext, settings: Settings) -> Catalog:
        return cls(await open_bucket(js, bucket_config(settings)))

    async def get(self, id: str) -> tuple[AttachmentMeta, int] | None:
        """The record and its revision, or None."""
        try:
            entry = await self._kv.get(id)
        except (KeyNotFoundError, BucketNotFoundError):
            return None
        if entry.value is None or not entry.value:
            return None
        return AttachmentMeta.decode(entry.value), entry.revision or 0

    async def create(self, meta: AttachmentMeta) -> None:
        await self._kv.create(meta.id, meta.encode())

    async def replace(self, meta: AttachmentMeta, revision: int) -> None:
        """Write ``meta`` if the record is still at ``revision`` (``Conflict`` otherwise: read it again)."""
        try:
            await self._kv.update(meta.id, meta.encode(), last=revision)
        except KeyWrongLastSequenceError:
            raise Conflict("the attachment changed meanwhile; try again", code="conflict") from None

    async def delete(self, id: str) -> None:
        await self._kv.purge(id)

    async def ids(self) -> AsyncIterator[str]:
        try:
            keys = await self._kv.keys()
        except NoKeysError:
            return
        for key in keys:
            yield key
