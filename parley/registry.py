"""The node registry: one entry per edge node in the NATS KV bucket ``nodes``.

A node rewrites its entry every ``node_beat_s``; the bucket's TTL removes the entry of a node that
stopped beating, and readers also ignore an entry older than ``node_ttl_s`` by its own timestamp, so a
dead node drops out of placement within the TTL even before the server expires it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import orjson
from nats.js.client import JetStreamContext
from nats.js.errors import NoKeysError
from nats.js.kv import KeyValue

from parley.bus import buckets, ensure
from parley.settings import Settings

BUCKET = buckets.NODES


@dataclass(frozen=True, slots=True)
class NodeRecord:
    id: str
    url: str
    region: str
    connections: int
    max_connections: int
    draining: bool
    updated_at: float  # unix seconds
    started_at: float

    @property
    def load(self) -> float:
        return self.connections / max(self.max_connections, 1)

    def as_json(self) -> bytes:
        return orjson.dumps({**asdict(self), "load": self.load})

    @classmethod
    def from_json(cls, raw: bytes) -> NodeRecord:
        d = orjson.loads(raw)
        d.pop("load", None)
        return cls(**d)

    def public(self) -> dict[str, object]:
        return {"id": self.id, "url": self.url, "region": self.region, "load": round(self.load, 4)}


async def open_bucket(js: JetStreamContext, settings: Settings) -> KeyValue:
    return await ensure.open_bucket(js, buckets.nodes(settings))


async def read_all(kv: KeyValue) -> list[NodeRecord]:
    """Every entry in the registry now (a one-off read; discovery watches instead)."""
    try:
        keys = await kv.keys()
    except NoKeysError:
        return []
    out = []
    for key in keys:
        try:
            entry = await kv.get(key)
        except Exception:  # expired or deleted since the listing
            continue
        if entry.value:
            out.append(NodeRecord.from_json(entry.value))
    return out
