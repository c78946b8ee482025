import orjson
import pytest

from parley.errors import BadRequest
from parley.protocol import Ack, Hello, Ping, Send, Sync, parse_client_frame

CONV = "dm.aaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbb"


def parse(frame: object, max_body: int = 100):
    raw = frame if isinstance(frame, (str, bytes)) else orjson.dumps(frame)
    return parse_client_frame(raw, max_body=max_body)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ({"type": "hello", "token": "t"}, Hello(token="t")),
        ({"type": "hello", "token": "t", "v": 1, "cursor": 7, "client": "x/1"}, Hello("t", 1, 7, "x/1")),
        ({"type": "send", "cid": "c-1_A", "conv": CONV, "body": "hi"}, Send("c-1_A", CONV, "hi")),
        ({"type": "ack", "id": 5}, Ack(5)),
        ({"type": "sync", "after": 0}, Sync(0)),
        ({"type": "ping"}, Ping(None)),
        ({"type": "ping", "ts": 12}, Ping(12)),
    ],
)
def test_valid_frames(frame, expected):
    assert parse(frame) == expected


@pytest.mark.parametrize(
    ("raw", "code", "field"),
    [
        ("{not json", "bad_json", None),
        ("[1,2]", "bad_json", None),
        ({"type": "dance"}, "unknown_type", None),
        ({"kind": "send"}, "unknown_type", None),
        ({"type": 3}, "unknown_type", None),
        ({"type": "hello"}, "bad_field", "token"),
        ({"type": "hello", "token": 5}, "bad_field", "token"),
        ({"type": "hello", "token": "t", "cursor": -1}, "bad_field", "cursor"),
        ({"type": "hello", "token": "t", "cursor": "7"}, "bad_field", "cursor"),
        ({"type": "hello", "token": "t", "cursor": True}, "bad_field", "cursor"),
        ({"type": "send", "conv": CONV, "body": "x"}, "bad_field", "cid"),
        ({"type": "send", "cid": "has space", "conv": CONV, "body": "x"}, "bad_field", "cid"),
        ({"type": "send", "cid": "c" * 65, "conv": CONV, "body": "x"}, "bad_field", "cid"),
        ({"type": "send", "cid": "c", "conv": "dm.x.y", "body": "x"}, "bad_field", "conv"),
        ({"type": "send", "cid": "c", "conv": CONV, "body": ""}, "bad_field", "body"),
        ({"type": "send", "cid": "c", "conv": CONV, "body": "   "}, "bad_field", "body"),
        ({"type": "send", "cid": "c", "conv": CONV, "body": 5}, "bad_field", "body"),
        ({"type": "ack"}, "bad_field", "id"),
        ({"type": "ack", "id": 2**53}, "bad_field", "id"),
        ({"type": "sync", "after": 1.5}, "bad_field", "after"),
    ],
)
def test_bad_frames_say_what_is_wrong(raw, code, field):
    with pytest.raises(BadRequest) as info:
        parse(raw)
    assert info.value.code == code
    assert info.value.details.get("field") == field
    assert info.value.peer_fault


def test_oversized_body_is_too_large_and_names_the_send():
    with pytest.raises(BadRequest) as info:
        parse({"type": "send", "cid": "c9", "conv": CONV, "body": "é" * 51}, max_body=100)
    assert info.value.code == "too_large"
    assert info.value.details == {"limit": 100, "ref": "c9"}
    assert parse({"type": "send", "cid": "c9", "conv": CONV, "body": "é" * 50}, max_body=100).body == "é" * 50


def test_a_bad_send_field_still_names_the_send():
    with pytest.raises(BadRequest) as info:
        parse({"type": "send", "cid": "c7", "conv": "nope", "body": "x"})
    assert info.value.details["ref"] == "c7"
