from parley.ratelimit import TokenBucket


def test_burst_then_steady_rate():
    bucket = TokenBucket(rate=10, burst=5)
    assert [bucket.take(0.0) for _ in range(6)] == [True] * 5 + [False]
    assert bucket.retry_after() == 0.1
    assert bucket.take(0.1) is True
    assert bucket.take(0.1) is False
    assert bucket.take(10.0) is True
    assert bucket.tokens == 4  # refill is capped at the burst
