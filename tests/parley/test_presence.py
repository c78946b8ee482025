"""The presence state machine, step by step: (action, user, device, time ms) → transitions."""

import pytest

from parley.presence import PresenceBook, Transition

T = 30_000  # offline timeout


def run(steps):
    book, out = PresenceBook(timeout_ms=T), []
    for step in steps:
        if step[0] == "beat":
            _, user, device, at = step
            change = book.heartbeat(user, device, at)
            out += [change] if change else []
        else:
            out += book.tick(step[1])
    return out, book


@pytest.mark.parametrize(("steps", "expected"), [
    pytest.param([("beat", "u", "d1", 0), ("tick", 29_999)], [Transition("u", True, 0)], id="first heartbeat"),
    pytest.param([("beat", "u", "d1", 0), ("tick", 30_000)],
                 [Transition("u", True, 0), Transition("u", False, 0)], id="silent past the timeout"),
    pytest.param([("beat", "u", "d1", 0), ("beat", "u", "d1", 5_000), ("beat", "u", "d1", 10_000),
                  ("tick", 39_000), ("tick", 40_000)],
                 [Transition("u", True, 0), Transition("u", False, 10_000)], id="heartbeats keep it online"),
    pytest.param([("beat", "u", "d1", 0), ("beat", "u", "d1", 8_000),  # disconnect: the last beat at 8 s
                  ("beat", "u", "d1", 20_000),  # reconnected within the timeout
                  ("tick", 38_000), ("tick", 50_000)],
                 [Transition("u", True, 0), Transition("u", False, 20_000)], id="reconnect within timeout: no flap"),
    pytest.param([("beat", "u", "phone", 0), ("beat", "u", "laptop", 25_000), ("tick", 40_000),
                  ("tick", 55_000)],
                 [Transition("u", True, 0), Transition("u", False, 25_000)], id="second device keeps it online"),
    pytest.param([("beat", "u", "d1", 0), ("beat", "v", "d2", 1_000),
                  ("tick", 30_500),  # a node died at 1 s holding both: u gone first
                  ("tick", 31_000)],
                 [Transition("u", True, 0), Transition("v", True, 1_000), Transition("u", False, 0),
                  Transition("v", False, 1_000)], id="node loss: each user at their own timeout"),
    pytest.param([("beat", "u", "d1", 0), ("tick", 30_000), ("beat", "u", "d1", 31_000)],
                 [Transition("u", True, 0), Transition("u", False, 0), Transition("u", True, 31_000)],
                 id="back after going offline"),
    pytest.param([("beat", "u", "d1", 10_000), ("beat", "u", "d1", 4_000), ("tick", 39_000)],
                 [Transition("u", True, 10_000)], id="a late batch never moves time back"),
])
def test_presence_transitions(steps, expected):
    assert run(steps)[0] == expected


def test_restore_after_a_restart_needs_no_new_announcement():
    book = PresenceBook(timeout_ms=T)
    book.restore("u", 5_000)
    assert book.is_online("u") and book.last_active("u") == 5_000
    assert book.heartbeat("u", "d1", 6_000) is None
    assert book.tick(36_000) == [Transition("u", False, 6_000)]
    assert not book.is_online("u") and book.online_users() == []
