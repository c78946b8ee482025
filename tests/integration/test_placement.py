"""Placement on a real cluster: a burst of logins between two heartbeats spreads over the nodes.

Discovery learns the nodes' connection counts only from their beats; before each placement reserved a
slot on its node, every login of a burst went to the node least loaded at the last beat (12 on node1,
0 on node2, seen in a test). A correctness check of spreading, not a timing figure: the benchmark is
``loadtest/placement_burst.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from tests.poll import eventually

pytestmark = pytest.mark.integration

BURST = 40


async def beaten_since(world, since: float) -> dict[str, int]:
    """The connections node1 and node2 report in a beat written after ``since``."""
    async def fresh() -> dict[str, int] | None:
        async with world.http.get(f"{world.cluster.discovery_url}/v1/nodes") as r:
            nodes = {n["id"]: n for n in (await r.json())["nodes"] if n["id"] in ("node1", "node2")}
        now = time.time()
        beaten = len(nodes) == 2 and all(now - n["age_s"] > since for n in nodes.values())
        return {k: n["connections"] for k, n in nodes.items()} if beaten else None

    return await eventually(fresh, timeout=10 * world.cluster.settings.node_ttl_s, every=0.05,
                            what="a beat from node1 and node2")


async def test_a_burst_of_logins_spreads_over_the_two_nodes(world):
    people = [await world.person("burst") for _ in range(BURST)]  # each logs in once: placed, never connected
    before = await beaten_since(world, time.time())  # those placements' reservations replaced by the beat
    devices = await asyncio.gather(*(p.device() for p in people))
    landed = Counter(d.welcome["node"] for d in devices)
    assert set(landed) <= {"node1", "node2"} and sum(landed.values()) == BURST
    # placement evens out the estimated load: the burst fills the gap first, then splits what is left
    gap = before["node2"] - before["node1"]
    expected = min(max((BURST + gap) / 2, 0), BURST)
    assert abs(landed["node1"] - expected) <= BURST / 5, (landed, before)
