"""Frames written are counted in a plain dict on the hot path and read into the counter when scraped
(docs/adr/0027), and the other per-message counts in tallies (docs/adr/0037): the exposition is exact at every
scrape."""

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from parley.metrics import LATENCY, NodeMetrics, Tally, TallyHistogram, TallyLabels


def frames_out(m: NodeMetrics) -> dict[str, float]:
    out = {}
    for line in generate_latest(m.registry).decode().splitlines():
        if line.startswith("parley_node_frames_out_total{"):
            name, value = line.split(" ")
            out[name.split('"')[1]] = float(value)
    return out


def test_frames_out_are_exact_at_every_scrape():
    m = NodeMetrics()
    msg = b'{"type":"msg","id":1}'
    m.frames_sent([msg] * 5 + [b'{"type":"ack"}', b'{"type":"invented"}', b"[]", msg])
    assert frames_out(m) == {"msg": 6, "ack": 1, "other": 2}
    m.frames_sent([b'{"type":"ack"}'])
    assert frames_out(m) == {"msg": 6, "ack": 2, "other": 2}
    assert frames_out(m) == {"msg": 6, "ack": 2, "other": 2}


def test_a_write_of_several_frames_is_counted_in_one_call_as_one_call_per_frame_would():
    """ADR 0053: a device's write hands its frames to ``frames_sent`` together."""
    one, batch = NodeMetrics(), NodeMetrics()
    msg = b'{"type":"msg","id":1}'
    frames = [msg, msg, b'{"type":"cursor"}', b"[]", msg, b'{"type":"receipt"}']
    for frame in frames:
        one.frames_sent([frame])
    batch.frames_sent(frames[:2])
    batch.frames_sent(frames[2:])
    assert frames_out(batch) == frames_out(one) == {"msg": 3, "cursor": 1, "receipt": 1, "other": 1}
    batch.frames_sent([msg])  # the last frame's type is remembered across calls
    assert frames_out(batch) == {"msg": 4, "cursor": 1, "receipt": 1, "other": 1}


def exposition(registry: CollectorRegistry) -> tuple[list[str], list[float]]:
    """The page's lines, sums apart (added in another order, they may differ in the last bit)."""
    lines = [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]
    sums = [float(line.split()[1]) for line in lines if "_sum " in line]
    return [line for line in lines if "_sum " not in line], sums


def test_tallies_expose_exactly_what_the_prometheus_metrics_would_at_every_scrape():
    """The per-message counts are tallies folded in at the scrape (docs/adr/0037); the page is the same as
    prometheus_client's own ``inc`` and ``observe`` would make it — bucket edges, +Inf and label children too."""
    r = CollectorRegistry()
    counter = Counter("c", "c", registry=r)
    labelled = Counter("l", "l", ["type"], registry=r)
    histogram = Histogram("h", "h", buckets=LATENCY, registry=r)
    t = CollectorRegistry()
    tally, tally_labels = Tally(Counter("c", "c", registry=t)), TallyLabels(Counter("l", "l", ["type"], registry=t))
    tally_histogram = TallyHistogram(Histogram("h", "h", buckets=LATENCY, registry=t))
    rounds = [[0.0, 0.001, 0.0011, 0.05, 10, 11, 1e9], [], [0.0025, 0.0025, 7.3]]
    for amounts in rounds:
        for amount in amounts:
            counter.inc(2)
            tally.inc(2)
            labelled.labels("msg" if amount < 1 else "ack").inc()
            tally_labels.labels("msg" if amount < 1 else "ack").inc()
            histogram.observe(amount)
            tally_histogram.observe(amount)
        for folded in (tally, tally_labels, tally_histogram):
            folded.fold()
        (tallied, tallied_sums), (direct, direct_sums) = exposition(t), exposition(r)
        assert tallied == direct
        assert tallied_sums == pytest.approx(direct_sums, rel=1e-12)


def test_node_metrics_fold_their_tallies_before_every_scrape():
    m = NodeMetrics()
    m.delivered.inc(3)
    m.e2e_seconds.observe(0.002)
    m.frames_in.labels("send").inc()
    m.published.inc()
    m.publish_seconds.observe(0.3)
    m.send_wait_seconds.observe(0.004)
    for _ in range(2):  # a second scrape finds the same (nothing folded twice)
        assert m.registry.get_sample_value("parley_node_messages_delivered_total") == 3
        assert m.registry.get_sample_value("parley_node_delivery_seconds_bucket", {"le": "0.0025"}) == 1
        assert m.registry.get_sample_value("parley_node_delivery_seconds_count") == 1
        assert m.registry.get_sample_value("parley_node_frames_in_total", {"type": "send"}) == 1
        assert m.registry.get_sample_value("parley_node_messages_published_total") == 1
        assert m.registry.get_sample_value("parley_node_publish_seconds_sum") == 0.3
        assert m.registry.get_sample_value("parley_node_send_wait_seconds_bucket", {"le": "0.005"}) == 1
        assert m.registry.get_sample_value("parley_node_send_wait_seconds_bucket", {"le": "0.0025"}) == 0
