import pytest

from parley.push import HIDDEN, notices, preview
from parley.store import PushPrefs, PushToken, StoredMessage

MSG = StoredMessage(42, "g.q3v7ylq2xwzp4k5d", 41, "alice", "d-alice", "c1", "hello   team", 1000)
MEMBERS = ("alice", "bob", "carol", "dave")
TOKENS = [PushToken("alice", "a1", "android", "ta", 1), PushToken("bob", "b1", "android", "tb1", 1),
          PushToken("bob", "b2", "web", "tb2", 1), PushToken("carol", "c1", "ios", "tc", 1),
          PushToken("erin", "e1", "ios", "te", 1)]


def plan(prefs=None, delivered=None, group_name="Team"):
    found = notices(MSG, MEMBERS, sender_name="Alice", group_name=group_name, tokens=TOKENS,
                    prefs=prefs or {}, delivered=delivered or {})
    return [(n.user, n.device, n.title, n.body) for n in found]


@pytest.mark.parametrize(("prefs", "delivered", "expected"), [
    ({}, {}, [("bob", "b1", "Team", "Alice: hello team"), ("bob", "b2", "Team", "Alice: hello team"),
              ("carol", "c1", "Team", "Alice: hello team")]),
    ({}, {"bob": 42}, [("carol", "c1", "Team", "Alice: hello team")]),  # a device of bob has it
    ({}, {"bob": 41}, [("bob", "b1", "Team", "Alice: hello team"), ("bob", "b2", "Team", "Alice: hello team"),
                       ("carol", "c1", "Team", "Alice: hello team")]),
    ({"bob": PushPrefs(muted=True)}, {}, [("carol", "c1", "Team", "Alice: hello team")]),
    ({"bob": PushPrefs(muted_convs=(MSG.conv,))}, {}, [("carol", "c1", "Team", "Alice: hello team")]),
    ({"bob": PushPrefs(muted_convs=("g.other",)), "carol": PushPrefs(hide_text=True)}, {"bob": 50},
     [("carol", "c1", "Team", HIDDEN)]),
])
def test_who_gets_what(prefs, delivered, expected):
    assert plan(prefs, delivered) == expected


def test_dm_title_is_the_sender_and_the_sender_and_strangers_get_nothing():
    got = plan(group_name=None)
    assert got[0] == ("bob", "b1", "Alice", "hello team")
    assert {u for u, *_ in got} == {"bob", "carol"}  # not alice (sender), not erin (not a member)


def test_preview_is_cut_and_keys_are_per_message_and_device():
    assert preview("x" * 300) == "x" * 199 + "…" and preview(" a \n b ") == "a b"
    keys = {n.key for n in notices(MSG, MEMBERS, sender_name="A", group_name=None, tokens=TOKENS, prefs={},
                                   delivered={})}
    assert keys == {"42.b1", "42.b2", "42.c1"}


@pytest.mark.parametrize(("body", "types", "says"), [
    ("", ("image/jpeg", "image/png"), "Photo"),
    ("  ", ("image/jpeg",), "Photo"),
    ("", ("image/jpeg", "application/pdf"), "File"),
    ("", ("application/octet-stream",), "File"),
    ("look at this", ("image/jpeg",), "look at this"),
])
def test_attachments_without_text_say_photo_or_file(body, types, says):
    from dataclasses import replace

    from parley.store import AttachmentRef

    refs = tuple(AttachmentRef(f"a{i}", t, "f", 1) for i, t in enumerate(types))
    msg = replace(MSG, body=body, attachments=refs)
    found = notices(msg, MEMBERS, sender_name="Alice", group_name=None, tokens=TOKENS, prefs={}, delivered={})
    assert {n.body for n in found} == {says}
