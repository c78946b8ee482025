"""The presence state machine, step by step: (action, user, device, time ms) → transitions."""

import random

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


def naive_tick(online: dict[str, tuple[int, int]], now: int) -> list[Transition]:
    """The rule itself, every user walked: offline once silent for the timeout and past any restore hold."""
    gone = [u for u, (last, hold) in online.items() if last <= now - T and hold <= now]
    return [Transition(u, False, online.pop(u)[0]) for u in gone]


@pytest.mark.parametrize("seed", range(30))
def test_a_tick_that_skips_the_walk_takes_the_same_users_offline_as_walking_every_user(seed):
    """``tick`` walks the users only once one can be due (ADR 0043): the same transitions at the same ticks as
    the rule applied to every user at every tick, whatever the beats, restores, forgets and ticks in between."""
    rng = random.Random(seed)
    book, online, now = PresenceBook(timeout_ms=T), {}, 1_000_000
    for _ in range(400):
        now += rng.choice((0, 100, 500, 5_000, 20_000))
        user, action = f"u{rng.randrange(8)}", rng.random()
        if action < 0.35:
            at = now - rng.choice((0, 0, 3_000, 40_000))  # a late batch now and then
            change = book.heartbeat(user, "d", at)
            expected = None
            if user not in online:
                online[user], expected = (at, 0), Transition(user, True, at)
            elif at > online[user][0]:
                online[user] = (at, online[user][1])
            assert change == expected
        elif action < 0.45:
            last = now - rng.choice((0, 10_000, 60_000))
            book.restore(user, last, now)
            online.setdefault(user, (last, now + T))
        elif action < 0.5:
            book.forget([user])
            online.pop(user, None)
        else:
            assert book.tick(now) == naive_tick(online, now)
        assert sorted(book.online_users()) == sorted(online)
