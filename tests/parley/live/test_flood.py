"""The flood rules one node applies (parley/live/flood.py), pure: time passed in."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from parley.live.flood import FloodRules, FloodTracker
from parley.live.screening import Attempt

OLD = 10 * 86400.0  # an account well past the new-account rules
WORDS = ["what a save", "offside surely", "the crowd is loud", "come on blue", "that was a foul", "half time soon",
         "great pass there", "ref, really?"]  # unlike each other: the duplicate rule stays out of the way


def attempt(text: str, now: float, *, user: str = "u1", room: str = "r1", age: float = OLD) -> Attempt:
    return Attempt(room=room, user=user, text=text, now=now, account_age_s=age, moderator=False)


def send(tracker: FloodTracker, text: str, now: float, **kw: object) -> str:
    """The code the message is refused with, or "" when it is accepted (and then counted)."""
    a = attempt(text, now, **kw)  # type: ignore[arg-type]
    offence = tracker.check(a)
    if offence is None:
        tracker.count(a, text)
        return ""
    return offence.code


def test_the_rate_allows_the_burst_then_refuses_until_the_window_passes():
    t = FloodTracker(FloodRules(rate_messages=5, rate_window_s=10))
    assert [send(t, WORDS[i], i * 0.1) for i in range(6)] == [""] * 5 + ["flooding"]
    offence = t.check(attempt("another one", 0.6))
    assert offence is not None and abs(offence.retry_after_s - 9.4) < 1e-9  # when the first leaves the window
    assert send(t, "later on", 10.01) == ""


def test_new_accounts_have_the_lower_rate_and_no_links():
    t = FloodTracker(FloodRules(new_account_s=3600, new_rate_messages=2))
    assert [send(t, WORDS[i], i, age=60) for i in range(3)] == ["", "", "flooding"]
    assert send(t, "see https://x.example.com/a", 100, age=60, user="u2") == "links"
    assert send(t, "see https://x.example.com/a", 100, age=OLD, user="u3") == ""


def test_other_users_and_rooms_have_their_own_counts():
    t = FloodTracker(FloodRules(rate_messages=1, rate_window_s=10))
    assert send(t, "one", 0) == ""
    assert send(t, "two", 1, user="u2") == ""
    assert send(t, "three", 1, room="r2") == ""
    assert send(t, "four", 1) == "flooding"


def test_repeats_and_near_repeats_are_refused_within_the_window():
    t = FloodTracker(FloodRules(duplicate_window_s=60))
    assert send(t, "GOAL!!! what a strike by number nine", 0) == ""
    assert send(t, "goal!!!   What a strike by number nine", 5) == "duplicate"
    assert send(t, "goal!!! what a strike by number nine!", 6) == "duplicate"  # one character more
    assert send(t, "the referee should have seen that", 7) == ""
    assert send(t, "GOAL!!! what a strike by number nine", 61) == ""  # out of the window


def test_link_flooding_per_message_and_per_window():
    t = FloodTracker(FloodRules(links_per_message=2, links_per_window=3, links_window_s=60, rate_messages=50))
    assert send(t, "a.com b.com c.com", 0) == "links"
    assert send(t, "look http://a.example.com and www.b.org", 1) == ""
    assert send(t, "and http://c.example.net", 2) == ""
    assert send(t, "more https://d.example.io please", 3) == "links"  # 4 in the window
    assert send(t, "more https://d.example.io please", 62) == ""


def test_slow_mode_waits_without_being_a_flood_offence():
    t = FloodTracker(FloodRules())
    a = attempt("first", 0)
    t.count(a, "first")
    offence = t.check(attempt("second", 4), slow_mode_s=30)
    assert offence is not None and offence.code == "slow_mode" and offence.retry_after_s == 26
    assert not offence.escalates
    assert t.check(attempt("second", 30), slow_mode_s=30) is None


def test_memory_is_bounded_by_tracked_pairs():
    t = FloodTracker(FloodRules(tracked=100))
    for i in range(1000):
        send(t, "hi", i, user=f"u{i}")
    assert len(t) == 100


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=5, allow_nan=False), min_size=1, max_size=60),
       st.integers(min_value=1, max_value=6), st.floats(min_value=0.5, max_value=20))
def test_never_more_than_the_rate_in_any_window(gaps, limit, window):
    rules = FloodRules(rate_messages=limit, rate_window_s=window, duplicate_history=1, duplicate_window_s=0.001)
    t = FloodTracker(rules)
    now, accepted = 0.0, []
    for i, gap in enumerate(gaps):
        now += gap
        if send(t, f"message {i} with its own words {i * 7919}", now) == "":
            accepted.append(now)
    for i, start in enumerate(accepted):
        assert sum(1 for t2 in accepted[i:] if t2 < start + window) <= limit
