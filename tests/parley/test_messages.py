"""A message's payload decodes to the same stored message and frame whether it takes the plain message's
short way or the general one (docs/adr/0026): the short way is only a shortcut."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from parley.actions import extras_json
from parley.ids import ConversationId, DeviceId, UserId
from parley.messages import (
    NO_STATE,
    attachments_json,
    decode_payload,
    decode_row,
    encode_payload,
    frame_of,
    live_delivery,
)
from parley.protocol import message_frame
from parley.store import AttachmentRef, StoredMessage
from parley.store.columns import message_of, row_of
from parley.store.records import MessageState

CONV = ConversationId("dm.alice.bob")
BASE = {"sender": UserId("alice"), "device": DeviceId("d1"), "cid": "c1", "body": "hello", "ts": 1_700_000_000_000,
        "prev": 41}
FILE = AttachmentRef("f1", "image/png", "cat.png", 1234, 10, 20, True)


def general(m: StoredMessage) -> bytes:
    """The frame as it was always made: the base fields, the entry's extras, the attachments."""
    return orjson.dumps(message_frame(id=m.id, conv=m.conv, prev=m.prev, sender=m.sender, device=m.device, cid=m.cid,
                                      body=m.body, ts=m.ts) | extras_json(m) | attachments_json(m))


@pytest.mark.parametrize(("extra", "attachments"), [
    ({}, ()),
    ({"kind": "react", "target": 40, "target_ts": 5, "emoji": "👍"}, ()),
    ({"kind": "edit", "target": 40, "target_ts": 5}, ()),
    ({"reply_to": 40, "target_ts": 5, "quote_from": "bob", "quote": "hi"}, ()),
    ({}, (FILE,)),
])
def test_a_payload_decodes_to_its_message_and_frame_the_same_either_way(extra, attachments):
    data = encode_payload(**BASE, attachments=attachments, **extra)
    m = decode_payload(42, CONV, data)
    assert (m.id, m.conv, m.prev, m.sender, m.device, m.cid, m.body, m.ts) == (
        42, CONV, 41, "alice", "d1", "c1", "hello", 1_700_000_000_000)
    assert {f: getattr(m, f) for f in extra} == extra and m.attachments == attachments
    assert m.state == MessageState()
    assert frame_of(m) == general(m)
    assert live_delivery(42, CONV, data) == (41, "alice", 1_700_000_000_000, general(m))  # the node's way (ADR 0033)


def test_a_plain_message_acted_on_is_framed_with_what_the_actions_made_of_it():
    m = decode_payload(42, CONV, encode_payload(**BASE))
    assert m.state is NO_STATE
    edited = replace(m, state=MessageState(edit_id=50, edited_at=9))
    assert orjson.loads(frame_of(edited))["edited"] is True
    assert frame_of(edited) == general(edited)


@pytest.mark.parametrize(("extra", "attachments"), [
    ({}, ()),
    ({"kind": "react", "target": 40, "target_ts": 5, "emoji": "👍"}, ()),
    ({"reply_to": 40, "target_ts": 5, "quote_from": "bob", "quote": "hi"}, ()),
    ({}, (FILE,)),
])
def test_the_archivers_row_of_a_payload_is_the_row_of_its_decoded_message(extra, attachments):
    """``decode_row`` (ADR 0069): a plain message straight to its row, never a ``StoredMessage``; anything else the
    message ``decode_payload`` makes. Either way the row written is the one ``put_messages`` writes."""
    data = encode_payload(**BASE, attachments=attachments, **extra)
    got = decode_row(42, CONV, data)
    expected = decode_payload(42, CONV, data)
    if extra or attachments:
        assert got == expected
    else:
        assert type(got) is tuple and got == row_of(expected) == (
            42, CONV, 41, "alice", "d1", "c1", "hello", 1_700_000_000_000, "", "")
        assert message_of(got) == expected
    assert message_of(row_of(expected)) == expected


@pytest.mark.parametrize("data", [b"[1,2,3,4,5,6]", b"7", b"{",
                                  b'{"from":"a","device":"d","cid":"c","body":"b","ts":1,"x":2}',
                                  b'{"from":"a","device":"d","cid":"c","body":"b","ts":"soon","prev":0}'])
def test_a_payload_no_node_wrote_fails_the_archivers_row_as_it_fails_the_decode(data):
    with pytest.raises((ValueError, KeyError, TypeError)) as plain:
        decode_payload(42, CONV, data)
    with pytest.raises(plain.type):
        decode_row(42, CONV, data)
