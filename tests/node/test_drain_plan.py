"""Where a draining node sends its clients: eligible nodes only, same region first, by free capacity."""

from __future__ import annotations

from collections import Counter

from parley.node.drain import assign, destinations

from parley.registry import NodeRecord

NOW = 1000.0


def node(id: str, region: str = "eu", connections: int = 0, cap: int = 100, draining: bool = False,
         age: float = 0.0) -> NodeRecord:
    return NodeRecord(id, f"ws://{id}/ws", region, connections, cap, draining, NOW - age, 0.0)


def test_destinations_skip_self_draining_stale_and_full_nodes_and_prefer_the_region():
    records = [node("me", draining=True), node("a"), node("b", draining=True), node("c", age=60),
               node("d", connections=100), node("e", region="us"), node("f", connections=50)]
    picked = destinations(records, "me", "eu", NOW, ttl=6.0)
    assert [n.id for n in picked] == ["a", "f", "e"]


def test_destinations_without_another_node_is_empty():
    assert destinations([node("me")], "me", "eu", NOW, ttl=6.0) == []


def test_assign_follows_free_capacity_and_interleaves():
    targets = [node("a", connections=0, cap=300), node("b", connections=200, cap=300)]  # free 300 : 100
    order = assign(400, targets)
    counts = Counter(order)
    assert counts == {0: 300, 1: 100}
    assert set(order[:8]) == {0, 1}  # the first wave already reaches both


def test_assign_even_split_and_edge_cases():
    targets = [node("a"), node("b"), node("c")]
    assert Counter(assign(9, targets)) == {0: 3, 1: 3, 2: 3}
    assert assign(5, []) == []
    assert assign(0, targets) == []
    full = [node("a", connections=100), node("b", connections=100)]  # no room anywhere: spread anyway
    assert Counter(assign(4, full)) == {0: 2, 1: 2}


def test_discovery_forgets_nodes_that_stopped_beating_long_ago():
    from parley.discovery.app import NodeDirectory

    d = NodeDirectory(forget_s=600)
    d.apply("dead", node("dead", age=0).as_json(), now=NOW)
    d.apply("alive", node("alive", age=0).as_json(), now=NOW + 599)
    assert set(d.nodes) == {"dead", "alive"}  # stale but remembered: shown as such
    d.apply("alive", NodeRecord("alive", "ws://alive/ws", "eu", 0, 100, False, NOW + 601, 0.0).as_json(),
            now=NOW + 601)
    assert set(d.nodes) == {"alive"}
    d.apply("alive", None, now=NOW + 602)  # a node that left deletes its entry
    assert d.nodes == {}
