"""Every KV bucket Parley keeps in NATS, with its configuration (the one place ``parley bus migrate`` and
the processes read it from).

``nodes``: the edge-node registry (memory, TTL: a node that stops beating disappears). ``presence`` and
``last_seen``: the presence worker's state. ``pushed``: pushes already sent, one claim per (message,
device). Replicas are ``PARLEY_KV_REPLICAS``, or the stream's when that is 0. With regions
(``PARLEY_REGIONS``) every bucket lives in the first region (``Layout.control_region``): while the link
between regions is down, the other region's processes cannot reach them (docs/regions.md).
"""

from __future__ import annotations

from nats.js.api import KeyValueConfig, Placement, StorageType

from parley.layout import placement_tag
from parley.settings import Settings

NODES, PRESENCE, LAST_SEEN, PUSHED = "nodes", "presence", "last_seen", "pushed"


def _placement(settings: Settings) -> Placement | None:
    region = settings.layout().control_region
    return Placement(tags=[placement_tag(region)]) if region else None


def nodes(settings: Settings) -> KeyValueConfig:
    return KeyValueConfig(bucket=NODES, history=1, ttl=settings.node_ttl_s * 2, storage=StorageType.MEMORY,
                          replicas=settings.bucket_replicas(), placement=_placement(settings))


def presence(settings: Settings) -> KeyValueConfig:
    return KeyValueConfig(bucket=PRESENCE, history=1, ttl=settings.presence_timeout_s * 3, storage=StorageType.FILE,
                          replicas=settings.bucket_replicas(), placement=_placement(settings))


def last_seen(settings: Settings) -> KeyValueConfig:
    return KeyValueConfig(bucket=LAST_SEEN, history=1, storage=StorageType.FILE, replicas=settings.bucket_replicas(),
                          placement=_placement(settings))


def pushed(settings: Settings) -> KeyValueConfig:
    return KeyValueConfig(bucket=PUSHED, history=1, ttl=2 * 86400, storage=StorageType.FILE,
                          replicas=settings.bucket_replicas(), placement=_placement(settings))


def all_buckets(settings: Settings) -> list[KeyValueConfig]:
    return [nodes(settings), presence(settings), last_seen(settings), pushed(settings)]
