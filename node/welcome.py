"""A connection's ``welcome`` (docs/protocol.md §2): sent once its hello's session was found live, from the cursor
the device starts at, with the node's limits; a cursor that cannot be opened is told after it (``bad_cursor``) and
the device syncs as a new one. It is written with the first frames that follow it (the first sync's), within a
cursor round (``PARLEY_CURSOR_EVERY_S``) at the latest (ADR 0063)."""

from __future__ import annotations

from collections.abc import Callable

from parley.node.link import DeviceLink
from parley.node.session import SyncFrom

from parley import protocol
from parley.cursor import BadCursor, open_cursor
from parley.errors import BadRequest
from parley.settings import Settings
from parley.shards import Vector


def welcome(link: DeviceLink, token: str, *, key: bytes, seal: Callable[[Vector], str], node: str,
            limits: dict[str, object]) -> SyncFrom:
    """Accept ``link`` from the cursor ``token`` ("" for none): the welcome goes out now; its first sync."""
    cursor: Vector = {}
    bad: BadCursor | None = None
    if token:
        try:
            cursor = open_cursor(key, token)
        except BadCursor as err:
            bad = err
    frame = protocol.frame_bytes(protocol.welcome_frame(user=link.user, device=link.device, node=node,
                                                        cursor=seal(cursor), limits=limits))
    first_sync = link.core.accept(cursor, frame)  # welcome first: presence, group and receipt frames follow
    if bad is not None:  # after the welcome: the device syncs as a new one
        link.send(protocol.error_bytes(BadRequest(f"cursor not accepted ({bad}); syncing from the start",
                                                  code="bad_cursor")))
    # with the first sync's frames (an idle device's ``synced``: one write, not two), or at the node's next cursor
    # round if that sync waits longer (an unreachable shard, a slow store): never held past it (ADRs 0039, 0063)
    link.wake_later()
    return first_sync


def welcome_limits(s: Settings) -> dict[str, object]:
    """The limits a welcome tells (the settings do not change: worked out once, not per connect)."""
    rates = s.frame_rates()
    return {"max_body_bytes": s.max_body_bytes, "max_frame_bytes": s.max_frame_bytes, "rate_per_s": s.rate_per_s,
            "rate_burst": s.rate_burst, "heartbeat_s": s.heartbeat_s, "idle_timeout_s": s.idle_timeout_s,
            "frames": {kind: {"per_s": r.per_s, "burst": r.burst} for kind, r in rates.rates.items()},
            "max_strikes": rates.max_strikes, "strike_decay_per_s": rates.strike_decay_per_s}
