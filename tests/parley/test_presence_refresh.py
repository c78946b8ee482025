"""The presence bucket's refresh schedule (``parley.presence_refresh``): a slice of the users per tick, each user
once per period, and never an entry left past a period — whatever the churn, takeovers and failed writes."""

from __future__ import annotations

import random

import pytest

from parley.presence_refresh import Refreshes

PERIOD = 200_000  # ms: a 600 s TTL's third
TICK = 500


def run(r: Refreshes, start: int, end: int, tick: int = TICK) -> dict[int, list[str]]:
    """``take`` every ``tick`` ms from ``start`` to ``end``: what each one handed out."""
    return {now: r.take(now) for now in range(start, end, tick)}


def test_a_steady_crowd_is_refreshed_a_slice_per_tick_each_user_once_per_period():
    r = Refreshes(PERIOD)
    for i in range(10_000):  # all online within the same 20 s, as after a connect storm
        r.written(f"u{i}", i * 2)
    takes = run(r, 20_000, 20_000 + 3 * PERIOD)
    sizes = [len(users) for now, users in takes.items() if now > 20_000]
    assert max(sizes) <= 26  # 10,000 × 0.5 s / 200 s = 25 a tick: a trickle, never a burst
    last: dict[str, int] = {f"u{i}": i * 2 for i in range(10_000)}
    for now, users in takes.items():
        for user in users:
            assert now - last[user] <= PERIOD + TICK
            last[user] = now
    assert all(20_000 + 2 * PERIOD - TICK <= at for at in last.values())  # every one taken again in the last period


@pytest.mark.parametrize("count", [1, 3, 40])
def test_a_few_users_are_not_rewritten_more_often_than_once_per_period(count):
    r = Refreshes(PERIOD)
    for i in range(count):
        r.written(f"u{i}", 0)
    taken = [u for users in run(r, 0, 4 * PERIOD).values() for u in users]
    assert len(taken) <= 4 * count + count  # four periods: each user about four times, not every tick


def test_a_period_old_entry_is_taken_whatever_the_share():
    r = Refreshes(PERIOD)
    r.written("old", 0)
    for i in range(1_000):
        r.written(f"new{i}", PERIOD - 1)
    r.take(PERIOD - 1)
    for i in range(1_000):  # the crowd goes offline: the share left is tiny
        r.forget(f"new{i}")
    assert r.take(PERIOD) == ["old"]


def test_a_restored_user_goes_first_and_no_later_than_a_period():
    r = Refreshes(PERIOD)
    for i in range(100):
        r.written(f"u{i}", 1_000 + i)
    r.take(1_000)
    r.restored("back", 50_000)
    r.restored("u5", 50_000)  # already known here: its own write stands
    taken = [u for users in run(r, 50_500, 50_500 + 10 * TICK).values() for u in users]
    assert taken[:1] == ["back"]
    assert "u5" not in taken[:1]


def test_a_failed_write_is_due_at_the_next_take():
    r = Refreshes(PERIOD)
    for i in range(100):
        r.written(f"u{i}", 0)
    r.take(0)
    r.unwritten("u42", 1_000)
    r.unwritten("stranger", 1_000)  # not online here: nothing to write
    assert r.take(1_000) == ["u42"]


def test_random_churn_never_leaves_an_online_users_entry_a_period_old():
    rng = random.Random(46)
    r = Refreshes(PERIOD)
    entry: dict[str, int] = {}  # what the bucket would hold: user → its entry's last write
    for now in range(0, 6 * PERIOD, TICK):
        for _ in range(rng.randrange(0, 30)):
            user = f"u{rng.randrange(3_000)}"
            if user in entry and rng.random() < 0.5:
                del entry[user]
                r.forget(user)
            elif user not in entry:
                entry[user] = now
                r.written(user, now)
        if rng.random() < 0.01:  # a takeover: users whose entries a period and a lease old are read back
            for i in range(rng.randrange(50)):
                user = f"t{now}-{i}"
                entry[user] = now - PERIOD - 6_000
                r.restored(user, now)
        if rng.random() < 0.01 and entry:
            user = rng.choice(sorted(entry))
            entry[user] = now - PERIOD * 2  # its put never landed: the write before it (or none) stands
            r.unwritten(user, now)
        for user in r.take(now):
            entry[user] = now
        assert len(r) == len(entry)
        # a third period of margin left: an entry of a 3-period TTL never expires while its user is online
        assert all(now - at < 3 * PERIOD - PERIOD // 2 for at in entry.values())
