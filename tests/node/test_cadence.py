"""The duties' periods in the node's one loop: the registry put every ``node_beat_s``, not at every wakeup."""

from __future__ import annotations

import pytest
from parley.node.cadence import Cadence


def runs(every_s: float, wakeup_s: float, late_s: float, seconds: float) -> list[int]:
    """The wakeups (numbered) at which a duty of ``every_s`` runs, each wakeup ``late_s`` later than planned."""
    cadence, now, out = Cadence(every_s, wakeup_s), 0.0, []
    for i in range(int(seconds / wakeup_s)):
        if cadence.due(now):
            out.append(i)
        now += wakeup_s + late_s
    return out


@pytest.mark.parametrize("late_s", [0.0, 0.003, 0.2])
def test_the_registry_put_runs_every_node_beat_not_every_wakeup(late_s):
    assert runs(2.0, 1.0, late_s, 10) == [0, 2, 4, 6, 8]  # node_beat_s 2, the loop's wakeup 1 s


def test_the_presence_beat_runs_every_fifth_wakeup_and_a_duty_as_often_as_the_loop_at_every_one():
    assert runs(5.0, 1.0, 0.003, 12) == [0, 5, 10]
    assert runs(1.0, 1.0, 0.0, 4) == [0, 1, 2, 3]


def test_a_period_between_two_wakeups_runs_at_the_earlier_never_less_often_than_asked():
    assert runs(1.5, 1.0, 0.0, 6) == [0, 1, 2, 3, 4, 5]  # due after 1.5 - 0.5 s of slack
