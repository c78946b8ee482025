"""Escalation (parley/live/standing.py): warnings → time-out → ban, pure."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from parley.live.standing import CLEAR, Escalation, Standing, banned_by, keep_s, offend, timed_out_by

RULES = Escalation(warnings=3, warning_window_s=300, timeout_s=60, timeouts_to_ban=2, timeout_window_s=3600)


def run(times: list[float], standing: Standing = CLEAR) -> tuple[Standing, list[str]]:
    steps = []
    for now in times:
        standing, step = offend(standing, now, RULES)
        steps.append(step)
    return standing, steps


def test_warnings_then_a_timeout_then_a_ban():
    standing, steps = run([0, 1, 2])
    assert steps == ["warning", "warning", "timeout"]
    assert standing.timed_out(30) and not standing.timed_out(62) and standing.until == 62
    standing, steps = run([100, 101, 102], standing)
    assert steps == ["warning", "warning", "ban"]
    assert standing.banned


def test_warnings_older_than_the_window_are_forgotten():
    _, steps = run([0, 1, 400, 401, 402])
    assert steps == ["warning", "warning", "warning", "warning", "timeout"]


def test_timeouts_older_than_their_window_do_not_ban():
    standing, steps = run([0, 1, 2, 5000, 5001, 5002])
    assert steps[-1] == "timeout" and not standing.banned


def test_how_long_a_standing_matters():
    assert keep_s(CLEAR, 0, RULES) == 0
    standing, _ = run([0])
    assert keep_s(standing, 10, RULES) == 290
    standing, _ = run([0, 1, 2])
    assert keep_s(standing, 2, RULES) == 3600  # the time-out counts towards a ban for the window
    assert keep_s(banned_by(CLEAR), 0, RULES) is None


def test_moderators_time_out_and_ban_directly():
    assert timed_out_by(CLEAR, 100, 600).timed_out(699)
    assert banned_by(CLEAR).banned and not banned_by(CLEAR).timed_out(0)


def test_json_round_trip():
    standing, _ = run([0, 1, 2, 3])
    assert Standing.from_json(standing.to_json()) == standing


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=2000, allow_nan=False), min_size=1, max_size=40))
def test_a_ban_needs_enough_timeouts_and_a_timeout_enough_warnings(gaps):
    standing, now, warned, timeouts = CLEAR, 0.0, [], []
    for gap in gaps:
        now += gap
        if standing.banned or standing.timed_out(now):
            continue  # the screen refuses before any rule: no offence while timed out or banned
        standing, step = offend(standing, now, RULES)
        if step == "warning":
            warned.append(now)
        elif step == "timeout":
            assert sum(1 for t in warned if t > now - RULES.warning_window_s) >= RULES.warnings - 1
            timeouts.append(now)
            warned = []
        else:
            recent = [t for t in timeouts if t > now - RULES.timeout_window_s]
            assert len(recent) >= RULES.timeouts_to_ban - 1 and standing.banned
        assert len(standing.warnings) < RULES.warnings  # bounded: spent on each time-out
