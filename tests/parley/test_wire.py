"""Bus messages: every kind round-trips through the one codec; malformed ones are refused, never half-read."""

from __future__ import annotations

import orjson
import pytest

from parley import wire

EXAMPLES = [
    wire.Revoke("s1"),
    wire.FriendChange("u2", True),
    wire.FriendChange("u2", False, "incoming"),
    wire.ProfileChange("u2", "Ann", ""),
    wire.GroupChange("g.x", "joined", since=0),
    wire.GroupChange("g.x", "members", added=("u1", "u2")),
    wire.GroupChange("g.x", "roles", user_id="u1", role="owner"),
    wire.ReceiptNotice("u1", "delivered", 12, conv="g.x"),
    wire.ReceiptNotice("u1", "read", 12),
    wire.ReceiptBatch((("g.x", "u1", 12), ("g.y", "u2", 7))),
    wire.TypingNotice("u1", "d1", "start"),
    wire.Heartbeats((("u1", "d1", 1700000000000),)),
    wire.DeviceHeld("n1", 1700000000000000, 3, "u1", "d1", False, 1700000000000),
    wire.StillHeld("n1", 1700000000000000, 3, 1700000000000),
    wire.HeldReport("n1", 1700000000000000, 3, 1700000000000, (("u1", "d1"), ("u2", "d1")), 1, 2),
    wire.HeldReport("n1", 1700000000000000, 0, 1700000000000, ()),
    wire.ReportAsk(4),
    wire.PresenceChange("u1", False, None),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: m.kind)
def test_round_trip(message):
    assert wire.decode(wire.encode(message)) == message


def test_what_the_api_published_before_the_codec_still_decodes():
    assert wire.decode(b'{"kind":"group","conv":"g.x","event":"renamed","name":"n"}') == \
        wire.GroupChange("g.x", "renamed", name="n")
    assert wire.decode(b'{"kind":"revoke","session":"s"}') == wire.Revoke("s")


def test_a_group_frame_carries_only_the_fields_set():
    assert wire.GroupChange("g.x", "members", removed=("u",)).details() == \
        {"conv": "g.x", "event": "members", "removed": ["u"]}


@pytest.mark.parametrize("data", [
    b"nope", b"[]", b'{"kind":"unknown"}', b'{"kind":"revoke"}', b'{"kind":"revoke","session":5}',
    b'{"kind":"friend","user_id":"u","friends":"yes"}', b'{"kind":"friend","user_id":"u","friends":false,"state":"x"}',
    b'{"kind":"group","conv":"g","event":"exploded"}',
    b'{"kind":"receipt","user":"u","status":"read","upto":true}', b'{"kind":"beats","beats":[["u","d"]]}',
    b'{"kind":"typing","user":"u","device":"d","state":"maybe"}',
    b'{"kind":"receipts","delivered":[["g","u"]]}', b'{"kind":"receipts","delivered":[["g","u",true]]}',
    b'{"kind":"receipts","delivered":{"g":1}}', b'{"kind":"receipts"}',
    b'{"kind":"held","node":"n","inc":1,"seq":"2","at":3}', b'{"kind":"ask"}',
    b'{"kind":"device","node":"n","inc":1,"seq":2,"user":"u","device":"d","here":1,"at":3}',
    b'{"kind":"report","node":"n","inc":1,"seq":2,"at":3,"devices":[["u","d",3]],"part":0,"parts":1}',
    b'{"kind":"report","node":"n","inc":1,"seq":2,"at":3,"devices":[],"part":1,"parts":1}',
])
def test_malformed_messages_are_refused(data):
    with pytest.raises(wire.WireError):
        wire.decode(data)


def test_encoding_names_the_kind_and_leaves_out_unset_fields():
    assert orjson.loads(wire.encode(wire.ReceiptNotice("u", "read", 3))) == \
        {"kind": "receipt", "user": "u", "status": "read", "upto": 3}


def test_a_receipt_batch_is_a_list_of_rows_on_the_wire():
    assert orjson.loads(wire.encode(wire.ReceiptBatch((("g.x", "u1", 12),)))) == \
        {"kind": "receipts", "delivered": [["g.x", "u1", 12]]}
