"""Graceful drain: move every client of this node elsewhere, then let the node exit.

The node is first marked draining in the registry (discovery stops placing clients here and the
node's ``/readyz`` turns 503). Then each connection gets a ``moved`` frame naming the node to go to
and is closed with 4010 after the frames already queued for it, so the client leaves holding
everything it was sent and resumes from its cursor on the next node. Connections are moved in waves
over ``drain_spread_s`` rather than all at once, so the other nodes see a ramp, not a stampede. The
drain ends when the last connection is gone or after ``drain_timeout_s``, whichever comes first.

Where clients go: the eligible nodes (fresh, not draining, not full) of this node's region, or of any
region when this one has no other, each client to the next one in turn, weighted by free capacity.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence

import orjson
from parley.discovery.placement import rank_nodes
from parley.node.link import DeviceLink

from parley import protocol
from parley.errors import CLOSE_DRAINING
from parley.registry import NodeRecord

log = logging.getLogger("parley.node")


def destinations(records: Iterable[NodeRecord], me: str, region: str, now: float, ttl: float) -> list[NodeRecord]:
    """Where this node's clients may go, best first: eligible nodes other than ``me``, same region first."""
    return rank_nodes((r for r in records if r.id != me), region, now=now, ttl=ttl)


def assign(count: int, targets: Sequence[NodeRecord]) -> list[int]:
    """Spread ``count`` clients over ``targets`` (indexes into it), in proportion to each one's free
    capacity and interleaved, so consecutive waves reach every target. Pure, for tests."""
    if not targets or count <= 0:
        return []
    free = [max(t.max_connections - t.connections, 0) for t in targets]
    if sum(free) == 0:
        free = [1] * len(targets)
    given = [0] * len(targets)
    out = []
    for _ in range(count):
        # the target furthest below its share so far (smallest given/free), ties to the better-ranked one
        i = min((i for i in range(len(targets)) if free[i] > 0), key=lambda i: ((given[i] + 1) / free[i], i))
        given[i] += 1
        out.append(i)
    return out


async def drain(
    links: Callable[[], Sequence[DeviceLink]],
    targets: Sequence[NodeRecord],
    *,
    spread_s: float,
    timeout_s: float,
    gone: Callable[[], Awaitable[None]],
) -> int:
    """Move the connections ``links()`` returns; returns how many were still open at the deadline
    (the caller closes those). ``gone`` resolves when the node has no connection left."""
    deadline = time.monotonic() + timeout_s
    current = list(links())
    order = assign(len(current), targets)
    public = [t.public() for t in targets]
    waves = max(1, min(len(current), int(spread_s / 0.1) or 1))  # at most one wave per 100 ms
    per_wave = -(-len(current) // waves) if current else 0
    log.info("draining %d connections to %s over %.1f s", len(current), [t.id for t in targets] or "nowhere",
             spread_s)
    for start in range(0, len(current), max(per_wave, 1)):
        for i in range(start, min(start + per_wave, len(current))):
            move(current[i], public, order[i] if order else None)
        if start + per_wave < len(current):
            await asyncio.sleep(spread_s / waves)
    for link in links():  # connections that arrived while we were moving the others
        move(link, public, None if not public else 0)
    try:
        await asyncio.wait_for(gone(), timeout=max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        pass
    return len(links())


def move(link: DeviceLink, public: list[dict[str, object]], pick: int | None) -> None:
    if link.closed:
        return
    node = public[pick] if pick is not None else None
    fallbacks = [p for p in public if p is not node][:2]
    link.offer_cursor()  # so the device resumes exactly where this connection left it
    link.send(orjson.dumps(protocol.moved_frame(node, fallbacks)))
    link.close(CLOSE_DRAINING, "node is draining")
