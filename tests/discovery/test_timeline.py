"""discovery/timeline.py: nodes that drain, leave or fall silent stay shown with that state for a while."""

import pytest
from parley.discovery.timeline import NodeTimeline, live_state

from parley.registry import NodeRecord

TTL, LINGER, T0 = 6.0, 300.0, 1_000_000.0


def rec(id="n1", *, at=T0, draining=False, connections=1, max_connections=10, region="eu"):
    return NodeRecord(id, f"ws://{id}/ws", region, connections, max_connections, draining, at, T0 - 100)


@pytest.mark.parametrize("record, now, state", [
    (rec(), T0, "eligible"),
    (rec(connections=10), T0, "full"),
    (rec(draining=True, connections=10), T0, "draining"),  # draining wins over full
    (rec(draining=True), T0 + TTL, "stale"),  # silent wins over everything
])
def test_live_state(record, now, state):
    assert live_state(record, now=now, ttl=TTL) == state


def states(t, current, now):
    return [(v.record.id, v.state) for v in t.view(current, now=now, ttl=TTL)]


def test_a_drained_node_stays_shown_as_drained_for_the_linger_window_then_goes():
    t = NodeTimeline(LINGER)
    t.seen(rec())
    t.seen(rec(at=T0 + 2, draining=True))
    t.seen(rec(at=T0 + 4, draining=True))
    view = t.view({"n1": rec(at=T0 + 4, draining=True)}, now=T0 + 5, ttl=TTL)
    assert [(v.state, v.since, v.hides_at, v.gone) for v in view] == [("draining", T0 + 2, None, False)]
    t.deleted(rec(at=T0 + 4, draining=True), now=T0 + 10)
    view = t.view({}, now=T0 + 11, ttl=TTL)
    assert [(v.state, v.since, v.hides_at, v.gone) for v in view] == [("drained", T0 + 10, T0 + 10 + LINGER, True)]
    assert states(t, {}, T0 + 10 + LINGER - 1) == [("n1", "drained")]
    assert states(t, {}, T0 + 10 + LINGER) == []
    t.prune(T0 + 10 + LINGER)
    assert t.departed == {} and t.draining_since == {}


def test_a_node_that_stopped_without_draining_shows_left():
    t = NodeTimeline(LINGER)
    t.seen(rec())
    t.deleted(rec(), now=T0 + 1)
    assert states(t, {}, T0 + 2) == [("n1", "left")]


def test_a_silent_node_shows_stale_from_its_ttl_for_the_linger_window():
    t = NodeTimeline(LINGER)
    t.seen(rec())
    current = {"n1": rec()}
    (v,) = t.view(current, now=T0 + TTL + 1, ttl=TTL)
    assert (v.state, v.since, v.hides_at) == ("stale", T0 + TTL, T0 + TTL + LINGER)
    assert states(t, current, T0 + TTL + LINGER) == []


def test_a_node_back_under_the_same_id_is_live_again():
    t = NodeTimeline(LINGER)
    t.seen(rec(draining=True))
    t.deleted(rec(draining=True), now=T0 + 1)
    t.seen(rec(at=T0 + 5))
    assert states(t, {"n1": rec(at=T0 + 5)}, T0 + 6) == [("n1", "eligible")]
    assert t.departed == {} and t.draining_since == {}


def test_nodes_are_listed_by_region_then_id_live_and_gone_together():
    t = NodeTimeline(LINGER)
    for r in (rec("b", region="us"), rec("c", region="eu"), rec("a", region="us")):
        t.seen(r)
    t.deleted(rec("a", region="us"), now=T0 + 1)
    current = {"b": rec("b", region="us"), "c": rec("c", region="eu")}
    assert states(t, current, T0 + 2) == [("c", "eligible"), ("a", "left"), ("b", "eligible")]


def test_the_directory_feeds_the_timeline_and_placement_sees_current_entries_only():
    from parley.discovery.app import NodeDirectory

    d = NodeDirectory(linger_s=LINGER)
    d.apply("n1", rec(draining=True).as_json(), now=T0)
    d.apply("n1", None, now=T0 + 1)
    d.apply("ghost", None, now=T0 + 1)  # never seen: nothing to remember
    assert d.nodes == {}
    assert [(v.record.id, v.state) for v in d.shown(T0 + 2, TTL)] == [("n1", "drained")]
    assert d.shown(T0 + 1 + LINGER, TTL) == []
