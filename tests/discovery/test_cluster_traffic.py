"""discovery/traffic.py: rates from counter deltas (restarts included), p99 from bucket deltas, gaps."""

import pytest
from parley.discovery.traffic import (
    API_5XX,
    DELIVERED,
    ERRORS,
    PUBLISHED,
    PUSHES_GAVE_UP,
    History,
    Reading,
    bucket_increase,
    increase,
    node_traffic,
    parse,
    quantile,
    worker_lag,
)

INF = float("inf")
PAGE = """\
# HELP parley_node_messages_delivered_total Messages handed to devices
# TYPE parley_node_messages_delivered_total counter
parley_node_messages_delivered_total 120.0
# HELP parley_node_frames_out_total Server frames written to devices
# TYPE parley_node_frames_out_total counter
parley_node_frames_out_total{type="msg"} 7.0
parley_node_frames_out_total{type="ack"} 3.0
# HELP parley_node_delivery_seconds From the sending node's clock to delivery here (live messages)
# TYPE parley_node_delivery_seconds histogram
parley_node_delivery_seconds_bucket{le="0.01"} 90.0
parley_node_delivery_seconds_bucket{le="0.1"} 118.0
parley_node_delivery_seconds_bucket{le="+Inf"} 120.0
parley_node_delivery_seconds_count 120.0
parley_node_delivery_seconds_sum 1.5
"""


def reading(at, delivered=0.0, published=0.0, buckets=(), epoch=None):
    return Reading(at, {DELIVERED: delivered, PUBLISHED: published}, tuple(buckets), epoch)


def hist(a, b, c):
    """Cumulative counts for le 0.01, 0.1, +Inf."""
    return ((0.01, a), (0.1, b), (INF, c))


def test_a_metrics_page_parses_to_counters_summed_over_labels_and_the_delivery_buckets():
    r = parse(PAGE, at=5.0, epoch=1.0)
    assert r.values[DELIVERED] == 120 and r.values["parley_node_frames_out_total"] == 10
    assert r.buckets == hist(90, 118, 120) and r.at == 5.0 and r.epoch == 1.0


@pytest.mark.parametrize("prev, cur, grown", [
    (reading(0, delivered=100), reading(2, delivered=140), 40),  # plain delta
    (reading(0, delivered=100), reading(2, delivered=100), 0),  # idle
    (reading(0, delivered=100), reading(2, delivered=30), 30),  # counter went down: restarted, counts from 0
    (reading(0, delivered=10, epoch=1), reading(2, delivered=25, epoch=2), 25),  # new start time: restarted
    (reading(0), reading(2, delivered=5), 5),  # a counter that appears counts from 0
])
def test_counter_increase_handles_restarts(prev, cur, grown):
    assert increase(prev, cur, DELIVERED) == grown


@pytest.mark.parametrize("buckets, q, expected", [
    (hist(0, 0, 0), 0.99, None),  # nothing observed
    ((), 0.99, None),
    (hist(100, 100, 100), 0.99, 0.0099),  # all in the first bucket: interpolated from 0
    (hist(50, 100, 100), 0.5, 0.01),  # rank exactly at a bound
    (hist(0, 100, 100), 0.5, 0.055),  # linear within (0.01, 0.1]
    (hist(0, 0, 10), 0.99, 0.1),  # in +Inf: the highest finite bound
])
def test_quantile_is_prometheus_histogram_quantile(buckets, q, expected):
    got = quantile(q, buckets)
    assert got == pytest.approx(expected) if expected is not None else got is None


def test_p99_comes_from_the_bucket_deltas_not_the_totals():
    # before: 1000 slow deliveries (all above 0.01); since: 100 fast ones
    prev, cur = reading(0, buckets=hist(0, 1000, 1000)), reading(2, buckets=hist(100, 1100, 1100))
    assert bucket_increase(prev, cur) == hist(100, 100, 100)
    assert quantile(0.99, bucket_increase(prev, cur)) == pytest.approx(0.0099)


def test_bucket_counts_that_went_down_mean_a_restart_and_count_from_zero():
    prev, cur = reading(0, buckets=hist(500, 900, 1000)), reading(2, buckets=hist(3, 4, 4))
    assert bucket_increase(prev, cur) == hist(3, 4, 4)


def test_points_give_rates_per_step_and_p99_over_the_trailing_span():
    h = History(keep=10, span=2)
    h.record("n", reading(0, 0, 0, hist(0, 0, 0)))
    h.record("n", reading(2, 20, 10, hist(0, 20, 20)))  # 20 slow
    h.record("n", reading(4, 60, 30, hist(40, 60, 60)))  # 40 fast
    h.record("n", reading(6, 60, 30, hist(40, 60, 60)))  # idle: the span still holds the fast ones
    h.record("n", reading(8, 60, 30, hist(40, 60, 60)))  # idle for a whole span
    pts = h.points("n")
    assert [(p.at, p.delivered_per_s, p.published_per_s) for p in pts] == [
        (2, 10, 5), (4, 20, 10), (6, 0, 0), (8, 0, 0)]
    assert pts[0].p99_s == pytest.approx(0.01 + 0.09 * 0.99)
    assert pts[2].p99_s is not None and pts[2].p99_s < 0.01
    assert pts[3].p99_s is None
    assert h.window_p99("n") == pytest.approx(0.01 + 0.09 * (0.99 * 60 - 40) / 20)


def test_a_restart_between_scrapes_gives_the_new_counts_not_a_negative_rate():
    h = History()
    h.record("n", reading(0, delivered=1000, epoch=1))
    h.record("n", reading(2, delivered=8, epoch=2))
    assert [p.delivered_per_s for p in h.points("n")] == [4]


def test_a_failed_scrape_leaves_a_gap_and_the_node_shows_unscraped():
    h = History()
    for r in (reading(0, 0), reading(2, 10), None, reading(6, 50), reading(8, 60)):
        h.record("n", r)
    assert [(p.at, p.delivered_per_s) for p in h.points("n")] == [(2, 5), (8, 5)]
    h.record("n", None)
    view = node_traffic(h, "n")
    assert view["scraped"] is False and view["delivered_per_s"] == 5


def test_a_node_never_scraped_has_no_numbers_and_an_empty_series():
    view = node_traffic(History(), "missing")
    assert view == {"scraped": False, "delivered_per_s": None, "published_per_s": None, "errors_per_s": None,
                    "p99_ms": None, "p99_window_ms": None, "series": []}


API_PAGE = """\
# TYPE parley_api_requests_total counter
parley_api_requests_total{route="/v1/login",method="POST",status="200"} 90.0
parley_api_requests_total{route="/v1/login",method="POST",status="503"} 4.0
parley_api_requests_total{route="/v1/me",method="GET",status="500"} 1.0
parley_api_requests_total{route="/v1/me",method="GET",status="404"} 5.0
"""


def test_the_api_5xx_count_is_kept_beside_the_total():
    r = parse(API_PAGE, at=1.0)
    assert r.values["parley_api_requests_total"] == 100 and r.values[API_5XX] == 5


def test_the_pushes_given_up_are_kept_beside_the_total():
    page = ('parley_pushes_total{outcome="sent"} 40.0\nparley_pushes_total{outcome="gave_up"} 2.0\n'
            'parley_pushes_total{outcome="token_rejected"} 1.0\n')
    r = parse(page, at=1.0)
    assert r.values["parley_pushes_total"] == 43 and r.values[PUSHES_GAVE_UP] == 2


def test_errors_per_second_per_step_and_the_latest_rate():
    h = History()
    for at, errors in ((0, 0), (2, 4), (4, 10)):
        h.record("n", Reading(at, {ERRORS: errors}))
    assert [p.errors_per_s for p in h.points("n")] == [2, 3]
    assert h.rate("n", ERRORS) == 3 and node_traffic(h, "n")["errors_per_s"] == 3
    h.record("n", None)
    assert h.rate("n", ERRORS) is None  # the last scrape failed: no rate rather than a stale one


def test_the_ring_keeps_only_the_window_and_forgets_targets_that_left():
    h = History(keep=3)
    for t in range(5):
        h.record("a", reading(t, t))
        h.record("b", reading(t, t))
    assert [r.at for r in h.rings["a"] if r] == [2, 3, 4]
    h.forget_all_but(["a"])
    assert set(h.rings) == {"a"}


@pytest.mark.parametrize("ring, off_when_absent, state, lag", [
    ([], False, "waiting", None),
    ([None], True, "off", None),  # push is off: no pusher is normal
    ([None], False, "down", None),
    ([Reading(1, {"parley_archiver_lag": 7})], False, "ok", 7),
])
def test_worker_lag_states(ring, off_when_absent, state, lag):
    h = History()
    for r in ring:
        h.record("w", r)
    view = worker_lag(h, "w", "parley_archiver_lag", off_when_absent=off_when_absent)
    assert (view["state"], view["lag"]) == (state, lag)
