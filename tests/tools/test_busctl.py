"""``parley bus status`` lines from a stream's info (pure), and the catalogue ``parley bus migrate`` applies."""

from __future__ import annotations

from nats.js.api import StreamInfo
from parley.tools.busctl import describe, streams_of

from parley.settings import Settings


def test_a_clustered_stream_shows_replicas_leader_and_each_replicas_state():
    info = StreamInfo.from_response({
        "config": {"name": "MSG", "num_replicas": 3},
        "state": {"messages": 10, "bytes": 1, "first_seq": 1, "last_seq": 10, "consumer_count": 1},
        "cluster": {"name": "parley", "leader": "nats-1", "replicas": [
            {"name": "nats-2", "current": True, "active": 120_000_000, "lag": 0},
            {"name": "nats-3", "current": False, "active": 2_500_000_000, "lag": 7, "offline": False}]},
    })
    lines = describe(info)
    assert lines[0] == "MSG: R3, 10 messages (seq 1..10), on cluster parley, leader nats-1"
    assert lines[1] == "  replica nats-2: current, lag 0, last heard 0.1s ago"
    assert lines[2] == "  replica nats-3: catching up, lag 7, last heard 2.5s ago"


def test_an_election_in_progress_shows_no_leader():
    info = StreamInfo.from_response({"config": {"name": "MSG", "num_replicas": 3},
                                     "state": {"messages": 0, "bytes": 0, "first_seq": 0, "last_seq": 0,
                                               "consumer_count": 0},
                                     "cluster": {"name": "parley", "replicas": []}})
    assert describe(info)[0].endswith("leader (none: electing)")


def test_migrate_covers_the_configured_message_stream():
    named = [s.name for s in streams_of(Settings(stream_name="MSG", stream_replicas=3, shards=2))]
    assert named == ["MSG_0", "MSG_1", "LIVE", "OBJ_attachments"]  # the shards, live rooms', attachments' store
    assert streams_of(Settings(stream_replicas=3))[-1].num_replicas == 3
    assert streams_of(Settings(stream_replicas=3))[0].num_replicas == 3
