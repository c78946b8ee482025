"""Frames written are counted in a plain dict on the hot path and read into the counter when scraped
(docs/adr/0027): the exposition is exact at every scrape."""

from prometheus_client import generate_latest

from parley.metrics import NodeMetrics


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
    for frame in [msg] * 5 + [b'{"type":"ack"}', b'{"type":"invented"}', b"[]", msg]:
        m.frame_out(frame)
    assert frames_out(m) == {"msg": 6, "ack": 1, "other": 2}
    m.frame_out(b'{"type":"ack"}')
    assert frames_out(m) == {"msg": 6, "ack": 2, "other": 2}
    assert frames_out(m) == {"msg": 6, "ack": 2, "other": 2}
