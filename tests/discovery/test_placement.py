import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from parley.discovery.placement import SURGE, place_client, rank_nodes
from parley.discovery.reservations import Reservations

from parley.registry import NodeRecord

NOW = 1000.0
SEEDS = range(200)


def node(id, region="eu", connections=0, draining=False, age=0.0, cap=100):
    return NodeRecord(id, f"ws://{id}/ws", region, connections, cap, draining, NOW - age, 0.0)


def ids(nodes):
    return [n.id for n in nodes]


def place(nodes, region="eu", seed=0, **kw):
    return place_client(nodes, region, now=NOW, ttl=6, rng=random.Random(seed), **kw)


def burst(nodes, count, seed, beat_every=0):
    """``count`` placements one after another as discovery makes them, reserving each pick; with
    ``beat_every``, every node beats after that many (its count then includes what was placed on it)."""
    rng, res, nodes = random.Random(seed), Reservations(hold_s=6, window_s=2), {n.id: n for n in nodes}
    got: Counter[str] = Counter()
    for i in range(count):
        now = NOW + i * 0.001
        if beat_every and i and i % beat_every == 0:
            nodes = {k: NodeRecord(n.id, n.url, n.region, n.connections + res.held([n], now)[k], n.max_connections,
                                   n.draining, now, n.started_at) for k, n in nodes.items()}
        pick = place_client(nodes.values(), "eu", now=now, ttl=6, rng=rng, held=res.held(nodes.values(), now),
                            recent=res.recent(now))[0]
        res.reserve(pick, now)
        got[pick.id] += 1
    return got


# ---- which nodes, in which order --------------------------------------------------------------------


@pytest.mark.parametrize("nodes, region, pick, fallbacks", [
    # two nodes: both are drawn, the less loaded one is taken
    ([node("a", connections=50), node("b", connections=10)], "eu", "b", ["a"]),
    # the region first, other regions only as fallbacks after it
    ([node("a", connections=50), node("c", "us", 0)], "eu", "a", ["c"]),
    # no eligible node in the region: any region
    ([node("a", draining=True), node("b", age=10), node("c", "us", 5), node("d", "ap", 1)], "eu", "d", ["c"]),
    # one node left: it, whatever its load
    ([node("a", connections=99), node("full", connections=100)], "eu", "a", []),
])
def test_pick_and_fallbacks(nodes, region, pick, fallbacks):
    for seed in range(20):
        got = place(nodes, region, seed)
        assert (got[0].id, ids(got[1:])) == (pick, fallbacks)


def test_of_three_nodes_the_most_loaded_is_never_picked_and_fallbacks_are_ranked():
    nodes = [node("a", connections=50), node("b", connections=10), node("c", "us", 0), node("d", connections=30)]
    picks = Counter(place(nodes, seed=s)[0].id for s in SEEDS)
    assert set(picks) == {"b", "d"} and picks["b"] > picks["d"]  # b wins every draw it is in
    for seed in range(20):
        pick, *fallbacks = ids(place(nodes, seed=seed))
        assert fallbacks == [n for n in ["b", "d", "a"] if n != pick][:2]
    assert ids(rank_nodes(nodes, "eu", now=NOW, ttl=6)) == ["b", "d", "a", "c"]


def test_dead_draining_and_full_nodes_are_never_picked():
    nodes = [node("dead", age=6.0), node("drain", draining=True), node("full", connections=100)]
    assert place(nodes) == []
    for seed in SEEDS:
        assert place([*nodes, node("ok", connections=90)], seed=seed)[0].id == "ok"


def test_held_slots_count_as_load_and_a_node_full_by_estimate_is_drawn_last():
    nodes = [node("a", connections=10), node("b", connections=5)]
    assert place(nodes, held={"b": 10})[0].id == "a"
    three = [node("a", connections=10), node("b", connections=5), node("c", connections=60)]
    assert all(place(three, seed=s, held={"a": 90, "b": 95})[0].id == "c" for s in range(20))


def test_the_record_round_trips_through_json_and_reports_load():
    n = node("a", connections=25)
    assert NodeRecord.from_json(n.as_json()) == n
    assert n.public()["load"] == 0.25


def test_when_the_registry_goes_quiet_for_everyone_the_nodes_fresh_then_are_still_offered():
    """A NATS election stalls every node's beat at once: logins keep being placed on the nodes that were
    alive when it went quiet (not on one that had died before), for a bounded while."""
    quiet = [node("a", age=20, connections=5), node("b", age=20.5), node("gone", age=40)]
    assert ids(place(quiet)) == ["b", "a"]
    assert place([node("a", age=70), node("b", age=70.5)]) == []


nodes_st = st.lists(st.builds(
    lambda i, region, conns, draining, age, cap: node(f"n{i}", region, min(conns, cap), draining, age, cap),
    st.integers(0, 5), st.sampled_from(["eu", "us"]), st.integers(0, 120), st.booleans(),
    st.sampled_from([0.0, 1.0, 5.9, 6.0, 30.0]), st.integers(1, 100)), max_size=6, unique_by=lambda n: n.id)


@settings(max_examples=300, deadline=None)
@given(nodes=nodes_st, held=st.dictionaries(st.sampled_from([f"n{i}" for i in range(6)]), st.integers(0, 150)),
       recent=st.dictionaries(st.sampled_from([f"n{i}" for i in range(6)]), st.integers(0, 50)),
       seed=st.integers(0, 2**32))
def test_the_pick_is_always_an_offered_node_of_the_region_when_it_has_one(nodes, held, recent, seed):
    got = place(nodes, "eu", seed, held=held, recent=recent)
    offered = rank_nodes(nodes, "eu", now=NOW, ttl=6, held=held)  # the fallbacks rank by estimated load
    if not offered:
        assert got == []
        return
    pick, *fallbacks = ids(got)
    assert fallbacks == [n for n in ids(offered) if n != pick][:2]  # the rest in the fixed ranking
    assert got[0].region == "eu" or all(n.region != "eu" for n in offered)
    assert all(not n.draining and n.connections < n.max_connections for n in got)


# ---- bursts --------------------------------------------------------------------------------------


@pytest.mark.parametrize("beat_every", [0, 7, 50])
def test_a_burst_over_two_equal_nodes_ends_within_20_percent_of_even(beat_every):
    for seed in SEEDS:
        got = burst([node("a", cap=10_000), node("b", cap=10_000)], 200, seed, beat_every)
        assert 80 <= got["a"] <= 120 and got["a"] + got["b"] == 200, (seed, got)


def test_a_burst_over_four_equal_nodes_spreads_over_all_of_them():
    for seed in SEEDS:
        got = burst([node(c, cap=10_000) for c in "abcd"], 200, seed)
        assert all(40 <= got[c] <= 60 for c in "abcd"), (seed, got)


@pytest.mark.parametrize("busy", [5_000, 9_000])
def test_a_fresh_node_beside_a_busy_one_gets_most_of_a_burst_but_not_all(busy):
    for seed in SEEDS:
        got = burst([node("busy", connections=busy, cap=10_000), node("fresh", cap=10_000)], 200, seed)
        assert 0.6 * 200 <= got["fresh"] <= SURGE / 2 * 200 + 1, (seed, got)


def test_spread_holds_in_the_region_and_never_leaks_to_another():
    nodes = [node("a", cap=10_000), node("b", cap=10_000), node("us", "us", cap=10_000)]
    for seed in range(20):
        got = burst(nodes, 100, seed)
        assert got["us"] == 0 and got["a"] == got["b"] == 50


# ---- reservations --------------------------------------------------------------------------------


def test_a_beat_replaces_the_reservations_made_before_it():
    res, a = Reservations(hold_s=6, window_s=2), node("a")
    res.reserve(a, NOW)
    res.reserve(a, NOW + 0.1)
    assert res.held([a], NOW + 0.2) == {"a": 2}
    beaten = node("a", connections=1, age=-0.3)  # its entry rewritten at NOW + 0.3
    res.reserve(beaten, NOW + 0.4)
    assert res.held([beaten], NOW + 0.5) == {"a": 1}
    assert res.recent(NOW + 0.5) == {"a": 3}  # the share window counts placements, beats or not


def test_reservations_lapse_when_no_beat_comes_and_the_window_slides():
    res, a, b = Reservations(hold_s=6, window_s=2), node("a"), node("b")
    res.reserve(a, NOW)
    res.reserve(b, NOW + 3)
    assert res.held([a, b], NOW + 4) == {"a": 1, "b": 1} and res.recent(NOW + 4) == {"a": 0, "b": 1}
    assert res.held([a, b], NOW + 6) == {"a": 0, "b": 1}
    assert res.held([a, b], NOW + 9) == {"a": 0, "b": 0} and res.recent(NOW + 9) == {}
