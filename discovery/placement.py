"""Choosing a node for a client. Pure: nodes and ``now`` come in, an ordered choice comes out.

A node is eligible when its entry is fresher than ``ttl``, it is not draining and not full. The pick
is the least-loaded eligible node in the client's region, or in any region when that has none;
fallbacks follow in the same order (same region first), so a client can try them in turn.

When no node is fresh but the registry's newest entry is less than ``SILENCE_GRACE_S`` old, the registry
went quiet for everyone at once — a NATS election stalls every node's beat, while nodes die one by one —
so the nodes that were fresh when it went quiet are still offered (a client tries the fallbacks if one is
really gone) rather than refusing every login with ``no_node`` for the length of the election.
"""

from __future__ import annotations

from collections.abc import Iterable

from parley.registry import NodeRecord


def eligible(nodes: Iterable[NodeRecord], *, now: float, ttl: float) -> list[NodeRecord]:
    return [n for n in nodes if now - n.updated_at < ttl and not n.draining and n.connections < n.max_connections]


SILENCE_GRACE_S = 60.0


def place_client(
    nodes: Iterable[NodeRecord], region: str | None, *, now: float, ttl: float, fallbacks: int = 2
) -> list[NodeRecord]:
    """Nodes in the order the client should try them; empty when none is eligible."""
    nodes = list(nodes)
    candidates = eligible(nodes, now=now, ttl=ttl)
    if not candidates and nodes:
        quiet_since = max(n.updated_at for n in nodes)
        if now - quiet_since < SILENCE_GRACE_S:  # the registry went quiet: as it stood then
            candidates = eligible(nodes, now=quiet_since, ttl=ttl)
    ranked = sorted(candidates, key=lambda n: (n.region != region, n.load, n.id))
    return ranked[: fallbacks + 1]
