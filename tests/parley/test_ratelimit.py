import pytest

from parley.ratelimit import (
    Buckets,
    FrameBudget,
    FrameRates,
    Rate,
    TokenBucket,
    Window,
    retry_after_header,
    window_verdict,
)


def test_burst_then_steady_rate():
    bucket = TokenBucket(rate=10, burst=5)
    assert [bucket.take(0.0) for _ in range(6)] == [True] * 5 + [False]
    assert bucket.retry_after() == 0.1
    assert bucket.take(0.1) is True
    assert bucket.take(0.1) is False
    assert bucket.take(10.0) is True
    assert bucket.tokens == 4  # refill is capped at the burst


def test_a_cost_above_the_burst_waits_for_a_full_bucket():
    bucket = TokenBucket(rate=1, burst=2)
    assert bucket.take(0.0, cost=2) is True and bucket.take(0.0, cost=5) is False
    assert bucket.retry_after(cost=5) == 2.0  # capped at the burst: a full bucket


RATES = FrameRates({"sync": Rate(0.5, 2), "presence": Rate(10, 100), "cheap": Rate(10, 3)}, max_strikes=4,
                   strike_decay_per_s=1.0)


def test_each_frame_kind_has_its_own_budget():
    budget = FrameBudget(RATES)
    assert [budget.charge("sync", 0.0) for _ in range(3)] == [None, None, 2.0]
    assert budget.charge("cheap", 0.0) is None  # another kind's budget is untouched
    assert budget.charge("sync", 2.0) is None  # one token back after 1 / 0.5 s
    assert budget.charge("send", 0.0) is None  # no budget here: not limited by this object


def test_presence_is_charged_per_user_asked():
    budget = FrameBudget(RATES)
    assert budget.charge("presence", 0.0, cost=100) is None
    assert budget.charge("presence", 0.0, cost=1) == 0.1
    assert budget.charge("presence", 5.0, cost=60) == 1.0  # 50 back in 5 s: 10 short
    assert budget.charge("presence", 5.0, cost=50) is None


def test_strikes_fade_with_time_only():
    budget = FrameBudget(RATES)
    assert [budget.strike(0.0) for _ in range(3)] == [False, False, False]
    for _ in range(100):  # valid frames in between change nothing
        budget.charge("cheap", 0.0)
    assert budget.strikes(0.0) == 3
    assert budget.strike(0.0) is True and budget.out  # the 4th outstanding strike


def test_faded_strikes_do_not_count():
    budget = FrameBudget(RATES)
    for t in range(20):  # one strike a second, forgiven at one a second: never out
        assert budget.strike(float(t)) is False
    assert budget.strikes(20.0) <= 1


@pytest.mark.parametrize(("now", "previous", "current", "allowed", "retry_after"), [
    (0.0, 0, 4, True, 0.0),
    (0.0, 0, 5, False, 60 + 0.0),  # next window, and this one's weight must fade: 60 s × (1 − 5/5)
    (30.0, 0, 5, False, 30.0),
    (30.0, 10, 0, False, 0.0),  # 10 × ½ = 5, at the limit: below it a moment later
    (0.0, 10, 2, False, 60 * (1 - 3 / 10)),  # previous weighs 10, must fall to below 3
    (59.0, 10, 4, True, 0.0),
])
def test_sliding_window_verdicts(now, previous, current, allowed, retry_after):
    verdict = window_verdict(Window(5, 60.0), now, previous, current)
    assert verdict.allowed is allowed
    if not allowed:
        assert verdict.retry_after_s == pytest.approx(retry_after, abs=0.01)
        later = window_verdict(Window(5, 60.0), now + verdict.retry_after_s, *(
            (previous, current) if now + verdict.retry_after_s < 60 else (current, 0)))
        assert later.allowed  # waiting as told is enough


def test_retry_after_header_is_whole_seconds():
    assert [retry_after_header(s) for s in (0.0, 0.2, 1.0, 1.01)] == ["1", "1", "1", "2"]


def test_buckets_by_key_are_bounded():
    buckets = Buckets(Rate(1, 2), max_keys=3)
    for key in "abc":
        assert buckets.take(key, 0.0) is None
    assert buckets.take("a", 0.0) is None and buckets.take("a", 0.0) == 1.0  # "a" is out of tokens
    assert buckets.take("d", 0.0) is None and len(buckets) == 3  # the oldest went to make room
