from parley.discovery.placement import place_client

from parley.registry import NodeRecord

NOW = 1000.0


def node(id, region="eu", connections=0, draining=False, age=0.0, cap=100):
    return NodeRecord(id, f"ws://{id}/ws", region, connections, cap, draining, NOW - age, 0.0)


def ids(nodes):
    return [n.id for n in nodes]


def test_least_loaded_node_in_region_first_then_fallbacks():
    nodes = [node("a", connections=50), node("b", connections=10), node("c", "us", 0), node("d", connections=30)]
    assert ids(place_client(nodes, "eu", now=NOW, ttl=6)) == ["b", "d", "a"]


def test_other_region_when_the_region_has_no_eligible_node():
    nodes = [node("a", draining=True), node("b", age=10), node("c", "us", 5), node("d", "ap", 1)]
    assert ids(place_client(nodes, "eu", now=NOW, ttl=6)) == ["d", "c"]


def test_dead_draining_and_full_nodes_are_never_picked():
    nodes = [node("dead", age=6.0), node("drain", draining=True), node("full", connections=100)]
    assert place_client(nodes, "eu", now=NOW, ttl=6) == []


def test_the_record_round_trips_through_json_and_reports_load():
    n = node("a", connections=25)
    assert NodeRecord.from_json(n.as_json()) == n
    assert n.public()["load"] == 0.25


def test_when_the_registry_goes_quiet_for_everyone_the_nodes_fresh_then_are_still_offered():
    """A NATS election stalls every node's beat at once: logins keep being placed on the nodes that were
    alive when it went quiet (not on one that had died before), for a bounded while."""
    quiet = [node("a", age=20, connections=5), node("b", age=20.5), node("gone", age=40)]
    assert ids(place_client(quiet, "eu", now=NOW, ttl=6)) == ["b", "a"]
    assert place_client([node("a", age=70), node("b", age=70.5)], "eu", now=NOW, ttl=6) == []
