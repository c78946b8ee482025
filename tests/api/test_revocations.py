"""The retry schedule of revocation announcements (api/revocations.py): pure."""

from parley.api.revocations import GIVE_UP_S, LONGEST_PAUSE_S, retry_pauses


def test_pauses_double_up_to_the_longest_and_stop_at_the_give_up_time():
    pauses = list(retry_pauses(first=0.5, longest=4, give_up=20))
    assert pauses == [0.5, 1, 2, 4, 4, 4, 4]  # 19.5 s in all; one more would pass 20
    assert sum(pauses) <= 20


def test_the_default_schedule_is_bounded_and_keeps_trying_for_minutes():
    pauses = list(retry_pauses())
    assert max(pauses) == LONGEST_PAUSE_S and sum(pauses) <= GIVE_UP_S
    assert sum(pauses) > GIVE_UP_S - LONGEST_PAUSE_S and len(pauses) < 40
