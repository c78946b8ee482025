"""Where attachments' bytes live: a small interface (put/get/delete by name) and its NATS JetStream object
store adapter, the default (replicated with the cluster; no other server to run).

The object store ``attachments`` is the stream ``OBJ_attachments`` (chunks on ``$O.attachments.C.<nuid>``,
each object's info on ``$O.attachments.M.<name>``). A delete replaces the object's info by a deleted one and
its chunks by one empty message, both as a subject rollup (``Nats-Rollup: sub``): the bytes are gone from the
stream without the stream purge API, which only operators have (parley/bus/permissions.py). Another store (S3,
a disk) would implement ``Blobs`` the same way.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Protocol

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, ObjectInfo, ObjectMeta, Placement, StorageType, StreamConfig
from nats.js.errors import NotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore

from parley.bus.ensure import ensure_stream
from parley.layout import placement_tag
from parley.settings import Settings

BUCKET = "attachments"
STREAM = f"OBJ_{BUCKET}"
ROLLUP = {"Nats-Rollup": "sub"}
DUPLICATE_WINDOW_S = 120.0  # the server's default, said out loud: a stream created without it is checked against it


class Blobs(Protocol):
    async def put(self, name: str, data: bytes) -> None: ...

    async def get(self, name: str) -> bytes | None:
        """The bytes, or None when there is no such object (or it was deleted)."""

    async def delete(self, name: str) -> None:
        """Gone (a missing object is not an error: deletes are repeated by the sweep)."""


def stream_config(settings: Settings) -> StreamConfig:
    """The object store's stream, as nats-py's ``create_object_store`` lays it out."""
    region = settings.layout().control_region
    return StreamConfig(
        name=STREAM, subjects=[f"$O.{BUCKET}.C.>", f"$O.{BUCKET}.M.>"], max_consumers=0,
        storage=StorageType.FILE, num_replicas=settings.bucket_replicas(), discard=DiscardPolicy.NEW,
        allow_rollup_hdrs=True, allow_direct=True, duplicate_window=DUPLICATE_WINDOW_S,
        placement=Placement(tags=[placement_tag(region)]) if region else None,
    )


class NatsBlobs:
    """``Blobs`` in the JetStream object store ``attachments``."""

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js
        self._store = ObjectStore(BUCKET, STREAM, js)

    @classmethod
    async def open(cls, js: JetStreamContext, settings: Settings) -> NatsBlobs:
        await ensure_stream(js, stream_config(settings))
        return cls(js)

    async def put(self, name: str, data: bytes) -> None:
        await self._store.put(name, data, meta=ObjectMeta(name=name))

    async def get(self, name: str) -> bytes | None:
        try:
            return bytes((await self._store.get(name)).data or b"")
        except (ObjectNotFoundError, NotFoundError):
            return None

    async def delete(self, name: str) -> None:
        try:
            info = await self._store.get_info(name)
        except (ObjectNotFoundError, NotFoundError):
            return
        await self._js.publish(f"$O.{BUCKET}.M.{_encoded(name)}", _deleted(info), headers=ROLLUP)
        if info.nuid:
            await self._js.publish(f"$O.{BUCKET}.C.{info.nuid}", b"", headers=ROLLUP)


def _encoded(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode()


def _deleted(info: ObjectInfo) -> bytes:
    info.deleted, info.size, info.chunks, info.digest = True, 0, 0, ""
    info.mtime = datetime.now(UTC).isoformat()
    return json.dumps(info.as_dict()).encode()
