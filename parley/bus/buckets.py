"""Every KV bucket Parley keeps in NATS, with its configuration (the one place ``parley bus migrate`` and
the processes read it from).

``nodes``: the edge-node registry (memory, TTL: a node that stops beating disappears). ``presence`` and
``last_seen``: the presence worker's state (``presence`` with a TTL of ``presence_ttl_s``, at least
``PRESENCE_TTL_MIN_S``: each online user's entry is rewritten once per third of it, docs/adr/0046;
``last_seen`` with a TTL of ``PARLEY_LAST_SEEN_TTL_S``: a user not seen for that long has no "last seen",
and the bucket holds only the users active within it).
``pushed``: pushes already sent, one claim per (message, device). ``auth_limits``: the API's brute-force
counters (memory; an entry lives two of the longest window, so a window's count is still there while the
next one is judged). ``banned_words``: the banned-word lists, one key per entry (``parley.live.banned``;
written by the API, watched by every node; file storage, no TTL, bounded in bytes). ``live_mod``: live
rooms' warnings, time-outs, bans and slow modes (``parley.live.board``; no bucket TTL: each standing carries
its own per-message TTL, a ban none). ``live_viewers``: a live room's viewers across the cluster, written by
one of the nodes following it (docs/adr/0021) for the API's ``GET /v1/live/{room}``; memory, a TTL, so a
room nobody watches any more drops out. Replicas are ``PARLEY_KV_REPLICAS``, or the stream's when that is 0.
With regions (``PARLEY_REGIONS``) every bucket lives in the first region (``Layout.control_region``): while
the link between regions is down, the other region's processes cannot reach them (docs/regions.md).
"""

from __future__ import annotations

from nats.js.api import KeyValueConfig, Placement, StorageType

from parley.layout import placement_tag
from parley.settings import Settings

NODES, PRESENCE, LAST_SEEN, PUSHED, AUTH_LIMITS = "nodes", "presence", "last_seen", "pushed", "auth_limits"
BANNED_WORDS, LIVE_MOD = "banned_words", "live_mod"
LIVE_VIEWERS = "live_viewers"
LIVE_VIEWERS_TTL_S = 15.0  # parley.node.live.audience.STALE_S: a count no node refreshed is gone as stale
AUTH_LIMITS_BYTES = 64 * 1024 * 1024  # past it new counters are refused (and the API lets attempts through)
BANNED_WORDS_BYTES = 256 * 1024 * 1024  # about a million entries; past it an add is refused (bus error, 503)
BANNED_WORD_VALUE_BYTES = 4096  # one entry's JSON (a word is at most 100 characters)
# an online user's entry lives this long at least: rewritten once per third of it (ADR 0046), not every timeout
PRESENCE_TTL_MIN_S = 600.0


def _placement(settings: Settings) -> Placement | None:
    region = settings.layout().control_region
    return Placement(tags=[placement_tag(region)]) if region else None


def nodes(settings: Settings) -> KeyValueConfig:
    return KeyValueConfig(bucket=NODES, history=1, ttl=settings.node_ttl_s * 2, storage=StorageType.MEMORY,
                          replicas=settings.bucket_replicas(), placement=_placement(settings))


def presence_ttl_s(settings: Settings) -> float:
    """The ``presence`` bucket's TTL: how long an online user's entry outlives its last write."""
    return max(3 * settings.presence_timeout_s, PRESENCE_TTL_MIN_S)


def presence_refresh_s(settings: Settings) -> float:
    """Each online user's entry is rewritten this often (``parley.presence_refresh``): a third of the TTL,
    so a refresh lost to an election, or a takeover's read-back, still lands inside it."""
    return presence_ttl_s(settings) / 3


def presence(settings: Settings) -> KeyValueConfig:
    return KeyValueConfig(bucket=PRESENCE, history=1, ttl=presence_ttl_s(settings), storage=StorageType.FILE,
                          replicas=settings.bucket_replicas(), placement=_placement(settings))


def last_seen(settings: Settings) -> KeyValueConfig:
    return KeyValueConfig(bucket=LAST_SEEN, history=1, ttl=settings.last_seen_ttl_s, storage=StorageType.FILE,
                          replicas=settings.bucket_replicas(), placement=_placement(settings))


def pushed(settings: Settings) -> KeyValueConfig:
    return KeyValueConfig(bucket=PUSHED, history=1, ttl=2 * 86400, storage=StorageType.FILE,
                          replicas=settings.bucket_replicas(), placement=_placement(settings))


def auth_limits(settings: Settings) -> KeyValueConfig:
    longest = max(settings.login_account_window_s, settings.auth_address_window_s, settings.signup_address_window_s)
    return KeyValueConfig(bucket=AUTH_LIMITS, history=1, ttl=2 * longest, storage=StorageType.MEMORY,
                          max_bytes=AUTH_LIMITS_BYTES, replicas=settings.bucket_replicas(),
                          placement=_placement(settings))


def banned_words(settings: Settings) -> KeyValueConfig:
    return KeyValueConfig(bucket=BANNED_WORDS, history=1, storage=StorageType.FILE, max_bytes=BANNED_WORDS_BYTES,
                          max_value_size=BANNED_WORD_VALUE_BYTES, replicas=settings.bucket_replicas(),
                          placement=_placement(settings))


def live_viewers(settings: Settings) -> KeyValueConfig:
    return KeyValueConfig(bucket=LIVE_VIEWERS, history=1, ttl=LIVE_VIEWERS_TTL_S, storage=StorageType.MEMORY,
                          replicas=settings.bucket_replicas(), placement=_placement(settings))


def live_mod(settings: Settings) -> KeyValueConfig:
    # an expired standing leaves a delete marker (for a minute) so watchers drop it from their mirrors
    return KeyValueConfig(bucket=LIVE_MOD, history=1, ttl=0, storage=StorageType.FILE, limit_marker_ttl=60.0,
                          replicas=settings.bucket_replicas(), placement=_placement(settings))


def all_buckets(settings: Settings) -> list[KeyValueConfig]:
    return [nodes(settings), presence(settings), last_seen(settings), pushed(settings), auth_limits(settings),
            banned_words(settings), live_mod(settings), live_viewers(settings)]
