import orjson
import pytest

from parley import protocol
from parley.errors import BadRequest, PeerError
from parley.protocol import Ack, Hello, Ping, Send, Sync, Typing, parse_client_frame, parse_first_frame, too_big

CONV = "dm.aaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbb"


def parse(frame: object, max_body: int = 100):
    raw = frame if isinstance(frame, (str, bytes)) else orjson.dumps(frame)
    return parse_client_frame(raw, max_body=max_body)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ({"type": "hello", "token": "t"}, Hello(token="t")),
        ({"type": "hello", "token": "t", "v": 2, "cursor": "c1.AA.BB", "client": "x/1"},
         Hello("t", 2, "c1.AA.BB", "x/1")),
        ({"type": "hello", "token": "t", "cursor": ""}, Hello("t", 2, None)),
        ({"type": "send", "cid": "c-1_A", "conv": CONV, "body": "hi"}, Send("c-1_A", CONV, "hi")),
        ({"type": "ack", "cursor": "c1.AA.BB"}, Ack("c1.AA.BB")),
        ({"type": "sync", "cursor": "c1.AA.BB"}, Sync("c1.AA.BB")),
        ({"type": "sync"}, Sync(None)),
        ({"type": "ping"}, Ping(None)),
        ({"type": "ping", "ts": 12}, Ping(12)),
        ({"type": "ping", "ts": None}, Ping(None)),  # null is the same as absent, for every field
        ({"type": "hello", "token": "t", "v": None, "cursor": None}, Hello("t", 2, None)),
        ({"type": "typing", "conv": CONV}, Typing(CONV, "start")),
        ({"type": "typing", "conv": CONV, "state": None}, Typing(CONV, "start")),
        ({"type": "typing", "conv": CONV, "state": "stop"}, Typing(CONV, "stop")),
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
        ({"type": "hello", "token": "t", "cursor": 7}, "bad_field", "cursor"),
        ({"type": "hello", "token": "t", "cursor": True}, "bad_field", "cursor"),
        ({"type": "hello", "token": "t", "cursor": "c" * 1025}, "bad_field", "cursor"),
        ({"type": "send", "conv": CONV, "body": "x"}, "bad_field", "cid"),
        ({"type": "send", "cid": "has space", "conv": CONV, "body": "x"}, "bad_field", "cid"),
        ({"type": "send", "cid": "c" * 65, "conv": CONV, "body": "x"}, "bad_field", "cid"),
        ({"type": "send", "cid": "c", "conv": "dm.x.y", "body": "x"}, "bad_field", "conv"),
        ({"type": "send", "cid": "c", "conv": CONV, "body": ""}, "bad_field", "body"),
        ({"type": "send", "cid": "c", "conv": CONV, "body": "   "}, "bad_field", "body"),
        ({"type": "send", "cid": "c", "conv": CONV, "body": 5}, "bad_field", "body"),
        ({"type": "send", "cid": "c", "conv": CONV, "body": None}, "bad_field", "body"),
        ({"type": "send", "cid": None, "conv": CONV, "body": "x"}, "bad_field", "cid"),
        ({"type": "send", "cid": 5, "conv": CONV, "body": "x"}, "bad_field", "cid"),
        ({"type": "send", "cid": "c", "conv": 5, "body": "x"}, "bad_field", "conv"),
        ({"type": "send", "cid": "c", "conv": "dm." + CONV[20:] + CONV[2:19], "body": "x"}, "bad_field", "conv"),
        ({"type": "ack"}, "bad_field", "cursor"),
        ({"type": "ack", "id": 5}, "bad_field", "cursor"),
        ({"type": "ack", "cursor": 5}, "bad_field", "cursor"),
        ({"type": "sync", "cursor": 1.5}, "bad_field", "cursor"),
        ({"type": "typing", "conv": CONV, "state": ""}, "bad_field", "state"),
        ({"type": "typing", "conv": CONV, "state": "START"}, "bad_field", "state"),
        ({"type": "hello", "token": "t", "v": "1"}, "bad_field", "v"),
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


def test_a_plain_send_checks_its_three_fields_and_builds_nothing_else(monkeypatch):
    """The common send (type, cid, conv, body; ADR 0065): no field looked up by name one at a time, no
    attachment ids or action fields worked out; any other shape goes the general way."""
    looked_up: list[str] = []
    general = protocol._str

    def counted(data: dict[str, object], name: str, **kw: bool) -> str | None:
        looked_up.append(name)
        return general(data, name, **kw)

    monkeypatch.setattr(protocol, "_str", counted)
    assert parse({"type": "send", "cid": "c1", "conv": CONV, "body": "hi"}) == Send("c1", CONV, "hi")
    assert looked_up == []
    assert parse({"type": "send", "cid": "c2", "conv": CONV, "body": "hi", "reply_to": 5}) == Send(
        "c2", CONV, "hi", reply_to=5)
    assert "cid" in looked_up


def test_a_bad_send_field_still_names_the_send():
    with pytest.raises(BadRequest) as info:
        parse({"type": "send", "cid": "c7", "conv": "nope", "body": "x"})
    assert info.value.details["ref"] == "c7"


@pytest.mark.parametrize(
    ("raw", "code", "field"),
    [
        ("{not json", "bad_json", None),
        ({"type": "dance"}, "hello_required", None),
        ({"type": "send", "cid": 5}, "hello_required", None),
        ({"kind": "hello"}, "hello_required", None),
        ({"type": "hello"}, "bad_field", "token"),
        ({"type": "hello", "token": "t", "v": "1"}, "bad_field", "v"),
    ],
)
def test_a_first_frame_that_is_not_a_good_hello_has_one_code(raw, code, field):
    with pytest.raises(PeerError) as info:
        parse_first_frame(raw if isinstance(raw, str) else orjson.dumps(raw), max_body=100)
    assert (info.value.code, info.value.details.get("field")) == (code, field)


def test_a_first_frame_hello_is_parsed():
    assert parse_first_frame(orjson.dumps({"type": "hello", "token": "t", "v": 1}), max_body=100) == Hello("t", 1)


@pytest.mark.parametrize(("raw", "big"), [("x" * 10, False), ("x" * 11, True), ("é" * 5, False), ("é" * 6, True),
                                          ("€" * 3, False), ("€" * 4, True), ("", False)])
def test_too_big_counts_utf8_bytes(raw, big):
    assert too_big(raw, 10) is big


C = "dm.aaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbb"


@pytest.mark.parametrize(("frame", "expected"), [
    ({"cid": "a", "conv": C, "body": "yes", "reply_to": 7}, Send("a", C, "yes", reply_to=7)),
    ({"cid": "a", "conv": C, "body": "new", "kind": "edit", "target": 7},
     Send("a", C, "new", kind="edit", target=7)),
    ({"cid": "a", "conv": C, "kind": "delete", "target": 7, "body": "ignored"},
     Send("a", C, "", kind="delete", target=7)),
    ({"cid": "a", "conv": C, "kind": "react", "target": 7, "emoji": "👍"},
     Send("a", C, "", kind="react", target=7, emoji="👍")),
    ({"cid": "a", "conv": C, "kind": "unreact", "target": 7, "emoji": "👍", "reply_to": 3},
     Send("a", C, "", kind="unreact", target=7, emoji="👍")),
    ({"cid": "a", "conv": C, "body": "x", "kind": None, "reply_to": None}, Send("a", C, "x")),
])
def test_actions_and_replies_are_sends(frame, expected):
    assert parse({"type": "send", **frame}) == expected


@pytest.mark.parametrize(("frame", "field"), [
    ({"kind": "pin", "target": 7}, "kind"),
    ({"kind": "delete"}, "target"),
    ({"kind": "delete", "target": 0}, "target"),
    ({"kind": "delete", "target": "7"}, "target"),
    ({"kind": "edit", "target": 7}, "body"),
    ({"kind": "edit", "target": 7, "body": " "}, "body"),
    ({"kind": "react", "target": 7}, "emoji"),
    ({"kind": "react", "target": 7, "emoji": "a b"}, "emoji"),
    ({"kind": "react", "target": 7, "emoji": "x" * 33}, "emoji"),
    ({"body": "x", "reply_to": 0}, "reply_to"),
    ({"body": "x", "reply_to": -1}, "reply_to"),
])
def test_a_bad_action_says_which_field_and_names_the_send(frame, field):
    with pytest.raises(BadRequest) as err:
        parse({"type": "send", "cid": "a", "conv": C, **frame})
    assert (err.value.code, err.value.details.get("field"), err.value.details["ref"]) == ("bad_field", field, "a")


def test_a_send_may_carry_attachments_and_then_no_text():
    ids = ["a" * 16, "b" * 16]
    frame = parse({"type": "send", "cid": "c1", "conv": CONV, "body": "", "attachments": ids})
    assert frame.attachments == tuple(ids) and frame.body == ""
    assert parse({"type": "send", "cid": "c1", "conv": CONV, "body": "x"}).attachments == ()
    assert parse({"type": "send", "cid": "c1", "conv": CONV, "body": "x", "attachments": None}).attachments == ()


@pytest.mark.parametrize("attachments", [[], "a" * 16, ["not-an-id"], ["a" * 16, "a" * 16], [5],
                                         [f"{c}" * 16 for c in "abcdefghijk"]])
def test_bad_attachment_lists_are_refused(attachments):
    with pytest.raises(BadRequest) as info:  # [] is no attachment: then the empty body is what is wrong
        parse({"type": "send", "cid": "c1", "conv": CONV, "body": "", "attachments": attachments})
    assert info.value.code == "bad_field" and info.value.details["ref"] == "c1"
    assert info.value.details["field"] == ("body" if attachments == [] else "attachments")
