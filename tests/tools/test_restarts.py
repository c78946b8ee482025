"""When ``parley up`` restarts a crashed process and when it gives up (pure: times passed in)."""

from __future__ import annotations

import pytest
from parley.tools.restarts import GiveUp, Policy, Record, Restart, Supervision, after_exit, describe_exit

POLICY = Policy(first_delay_s=0.5, max_delay_s=10.0, stable_after_s=30.0, crash_limit=5, crash_window_s=60.0)


@pytest.mark.parametrize(("record", "now", "delay"), [
    (Record(started_at=0.0), 5.0, 0.5),  # first crash: the first delay
    (Record(started_at=10.0, delay_s=0.5), 11.0, 1.0),  # crashed again soon: doubled
    (Record(started_at=10.0, delay_s=4.0), 11.0, 8.0),
    (Record(started_at=10.0, delay_s=8.0), 11.0, 10.0),  # capped
    (Record(started_at=10.0, delay_s=10.0), 11.0, 10.0),
    (Record(started_at=10.0, delay_s=8.0), 39.9, 10.0),  # up just under stable_after_s: still a streak
    (Record(started_at=10.0, delay_s=8.0), 40.0, 0.5),  # up 30 s: the streak is over
])
def test_the_delay_doubles_while_crashes_follow_each_other_and_resets_after_a_stable_run(record, now, delay):
    updated, decision = after_exit(record, now, POLICY)
    assert decision == Restart(at=now + delay, delay_s=delay, crashes=len(record.crashes) + 1)
    assert updated.delay_s == delay and updated.crashes[-1] == now


@pytest.mark.parametrize(("earlier", "now", "verdict"), [
    ((), 1.0, Restart(at=1.5, delay_s=0.5, crashes=1)),
    ((1.0, 2.0, 3.0), 4.0, Restart(at=4.5, delay_s=0.5, crashes=4)),
    ((1.0, 2.0, 3.0, 4.0), 5.0, GiveUp(crashes=5, window_s=4.0)),  # the fifth within a minute
    ((1.0, 2.0, 3.0, 4.0), 61.0, Restart(at=61.5, delay_s=0.5, crashes=4)),  # the first fell out of the window
    ((0.0, 20.0, 40.0, 59.0), 59.5, GiveUp(crashes=5, window_s=59.5)),
])
def test_a_process_that_crashes_crash_limit_times_within_the_window_is_given_up_on(earlier, now, verdict):
    record = Record(started_at=now - 100, crashes=earlier)  # long up each time: the delay stays the first
    assert after_exit(record, now, POLICY)[1] == verdict


def test_a_planned_exit_restarts_at_once_and_counts_no_crash():
    record = Record(started_at=0.0, delay_s=4.0, crashes=(1.0, 2.0))
    updated, decision = after_exit(record, 3.0, POLICY, planned=True)
    assert decision == Restart(at=3.0, delay_s=0.0, crashes=2)
    assert updated.crashes == (1.0, 2.0) and updated.delay_s == 0.0


def test_supervision_holds_a_restart_until_it_is_due_and_counts_restarts():
    sup = Supervision(POLICY)
    sup.track("archiver", 0.0)
    sup.track("node1", 0.0)
    assert sup.exited("archiver", 10.0) == Restart(at=10.5, delay_s=0.5, crashes=1)
    assert sup.waiting("archiver") and not sup.waiting("node1")
    assert sup.due(10.4) == []
    assert sup.due(10.5) == ["archiver"] and not sup.waiting("archiver")
    assert sup.started("archiver", 10.6).restarts == 1
    assert sup.exited("archiver", 11.0).delay_s == 1.0  # up 0.4 s: the streak goes on
    assert sup.due(12.0) == ["archiver"]
    sup.started("archiver", 12.0)
    assert sup.restarts("archiver") == 2 and sup.restarts("node1") == 0 and sup.restarts("unknown") == 0


def test_supervision_gives_up_on_the_fifth_crash_in_a_row():
    sup, now, decisions = Supervision(POLICY), 0.0, []
    sup.track("presence", now)
    for _ in range(5):
        now += 0.2  # exits at once after each start
        decisions.append(sup.exited("presence", now))
        if isinstance(decisions[-1], Restart):
            now = decisions[-1].at
            assert sup.due(now) == ["presence"]
            sup.started("presence", now)
    assert [d.delay_s for d in decisions[:4]] == [0.5, 1.0, 2.0, 4.0]  # type: ignore[union-attr]
    assert isinstance(decisions[-1], GiveUp) and decisions[-1].crashes == 5
    assert not sup.waiting("presence")


@pytest.mark.parametrize(("code", "text"), [
    (1, "exit code 1"), (0, "exit code 0"), (-9, "killed by SIGKILL"), (-15, "killed by SIGTERM"),
    (None, "still running"), (-200, "killed by signal 200"),
])
def test_an_exit_is_described_by_its_code_or_signal(code, text):
    assert describe_exit(code) == text
