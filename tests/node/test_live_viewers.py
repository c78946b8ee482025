"""Live-room bookkeeping: first and last viewer, the joining window, forgetting a connection."""

from __future__ import annotations

from parley.node.live.viewers import Viewers


def test_first_and_last_viewer_of_a_room() -> None:
    v: Viewers[str] = Viewers()
    assert v.expect("r", "a") is True
    assert v.expect("r", "b") is False
    assert v.expect("r", "a") is False  # joined already: nothing changes
    assert v.count("r") == 2 and v.total == 2
    assert v.leave("r", "a") is False
    assert v.leave("r", "a") is False  # not in it any more
    assert v.leave("r", "b") is True
    assert not v.has("r") and v.total == 0 and v.rooms() == []


def test_frames_during_the_join_are_kept_and_the_backlog_is_not_repeated() -> None:
    v: Viewers[str] = Viewers()
    v.expect("r", "a")
    v.keep("r", 5, b"m5")
    v.keep("r", 0, b"event")
    v.keep("r", 7, b"m7")
    assert list(v.of("r")) == []  # not yet handed frames directly
    assert v.admit("r", "a", after=5) == [b"event", b"m7"]
    assert list(v.of("r")) == ["a"]
    v.keep("r", 8, b"m8")  # nobody waits: nothing kept
    assert v.admit("r", "a", after=0) == []


def test_leaving_while_joining_and_forgetting_a_connection() -> None:
    v: Viewers[str] = Viewers()
    v.expect("r", "a")
    assert v.leave("r", "a") is True
    assert v.admit("r", "a", after=0) == [] and list(v.of("r")) == []
    for room in ("x", "y"):
        v.expect(room, "a")
        v.admit(room, "a", after=0)
    v.expect("y", "b")
    assert v.forget("a") == ["x"]
    assert v.rooms() == ["y"] and v.total == 1
