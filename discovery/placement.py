"""Choosing a node for a client. Pure: nodes, ``now``, this process's reservations and a ``random.Random``
come in, an ordered choice comes out.

A node is eligible when its entry is fresher than ``ttl``, it is not draining and not full; drained,
stale and full nodes are never chosen. The client's region is tried first, any region when it has none.

The pick is the power of two choices over the nodes' *estimated* load: two distinct eligible nodes drawn
at random, the one with the lower (connections + held) / max_connections taken (a tie: the first drawn).
``held`` is this process's placements the node has not reported yet (``reservations.Reservations``):
a node's count arrives only with its heartbeat, so without them a burst of logins between two beats all
sees the same counts and lands on one node. With several discovery processes each holds its own
reservations and spreads its own share of a burst; the next beat brings them all back to the counts.
Nodes whose estimate is full are drawn only when no other is left. With two nodes both are always
drawn: the pick alternates and a burst splits evenly.

A node far below the others (one that just started) would win every draw until it caught up — every
login of a burst. So a node's share of the placements over the last beat interval (``recent``) is
capped at ``SURGE`` times its fair share (one over the nodes drawn from): over that, the other node drawn
is taken instead (unless it is over its own cap too). Beside one busy node a fresh node gets 3/4 of a
burst: most of it, so it fills up, but not all of it.

Fallbacks follow in a fixed order, same region first, then by estimated load and id, so a client can try
them in turn; ``rank_nodes`` is that order alone (a draining node sharing its clients out uses it).

When no node is fresh but the registry's newest entry is less than ``SILENCE_GRACE_S`` old, the registry
went quiet for everyone at once — a NATS election stalls every node's beat, while nodes die one by one —
so the nodes that were fresh when it went quiet are still offered (a client tries the fallbacks if one is
really gone) rather than refusing every login with ``no_node`` for the length of the election.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence

from parley.registry import NodeRecord

SILENCE_GRACE_S = 60.0
SURGE = 1.5  # a node takes at most this many times its fair share of the last beat interval's placements
NONE_HELD: Mapping[str, int] = {}


def eligible(nodes: Iterable[NodeRecord], *, now: float, ttl: float) -> list[NodeRecord]:
    return [n for n in nodes if now - n.updated_at < ttl and not n.draining and n.connections < n.max_connections]


def offered(nodes: Iterable[NodeRecord], *, now: float, ttl: float) -> list[NodeRecord]:
    """The eligible nodes; when the whole registry went quiet (within the grace), those eligible then."""
    nodes = list(nodes)
    candidates = eligible(nodes, now=now, ttl=ttl)
    if not candidates and nodes:
        quiet_since = max(n.updated_at for n in nodes)
        if now - quiet_since < SILENCE_GRACE_S:  # the registry went quiet: as it stood then
            candidates = eligible(nodes, now=quiet_since, ttl=ttl)
    return candidates


def estimated_load(n: NodeRecord, held: Mapping[str, int]) -> float:
    return (n.connections + held.get(n.id, 0)) / max(n.max_connections, 1)


def rank_nodes(nodes: Iterable[NodeRecord], region: str | None, *, now: float, ttl: float,
               held: Mapping[str, int] = NONE_HELD) -> list[NodeRecord]:
    """Every offered node, best first: same region first, then by estimated load, then id."""
    return sorted(offered(nodes, now=now, ttl=ttl), key=lambda n: (n.region != region, estimated_load(n, held), n.id))


def place_client(
    nodes: Iterable[NodeRecord], region: str | None, *, now: float, ttl: float, rng: random.Random,
    held: Mapping[str, int] = NONE_HELD, recent: Mapping[str, int] = NONE_HELD, fallbacks: int = 2,
) -> list[NodeRecord]:
    """Nodes in the order the client should try them (the pick, then fallbacks); empty when none is offered."""
    ranked = rank_nodes(nodes, region, now=now, ttl=ttl, held=held)
    if not ranked:
        return []
    tier = [n for n in ranked if n.region == ranked[0].region] if ranked[0].region == region else ranked
    pick = choose(tier, held, recent, rng)
    return [pick, *(n for n in ranked if n is not pick)][: fallbacks + 1]


def choose(tier: Sequence[NodeRecord], held: Mapping[str, int], recent: Mapping[str, int],
           rng: random.Random) -> NodeRecord:
    """Power of two choices over ``tier`` (non-empty), with the cap on a node's share of a burst."""
    pool = [n for n in tier if estimated_load(n, held) < 1] or list(tier)
    if len(pool) == 1:
        return pool[0]
    first, second = rng.sample(pool, 2)
    better, other = (second, first) if estimated_load(second, held) < estimated_load(first, held) else (first, second)
    if over_share(better, pool, recent) and not over_share(other, pool, recent):
        return other
    return better


def over_share(node: NodeRecord, pool: Sequence[NodeRecord], recent: Mapping[str, int]) -> bool:
    """Would one more placement take ``node`` past ``SURGE`` times its fair share of the recent ones?"""
    total = sum(recent.get(n.id, 0) for n in pool) + 1
    return recent.get(node.id, 0) + 1 > math.ceil(SURGE * total / len(pool))
