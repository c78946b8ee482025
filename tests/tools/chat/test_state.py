"""Server frames → lines and frames (parley.tools.chat.state): each message shown once, unread counts, typing,
receipts, presence changes, group events, errors; and what typing in the input line sends."""

import pytest
from parley.tools.chat import render
from parley.tools.chat.state import ChatState

ALICE, BOB, CAROL = "a" * 16, "b" * 16, "c" * 16
DM = f"dm.{ALICE}.{BOB}"
GROUP = "g.qqqqqqqqqqqqqqqq"
USERS = {ALICE: "alice", BOB: "bob", CAROL: "carol"}


def user(uid):
    return {"id": uid, "username": USERS[uid]}


def listing():
    return {"cursor": "c1.x", "conversations": [
        {"id": DM, "kind": "dm", "members": [user(ALICE), user(BOB)], "read": 10, "unread": 2,
         "last_message": {"id": 30, "from": BOB, "body": "are you there?", "ts": 1_000}},
        {"id": GROUP, "kind": "group", "name": "climbing", "members": [user(ALICE), user(BOB), user(CAROL)],
         "read": 0, "unread": 0, "last_message": None},
    ]}


@pytest.fixture
def state():
    s = ChatState()
    s.me, s.device = ALICE, "d" * 16
    s.load_listing(listing())
    return s


def msg(id, conv=DM, frm=BOB, body="hi", device="e" * 16, cid="x-1", prev=0):
    return {"type": "msg", "id": id, "prev": prev, "conv": conv, "from": frm, "device": device, "cid": cid,
            "body": body, "ts": 1_700_000_000_000}


def test_titles_and_lookup(state):
    assert state.title(DM) == "bob" and state.title(GROUP) == "#climbing"
    assert [state.find(t) for t in ("bob", "#climbing", "climbing", "1", "2", "3", "carol", DM)] == [
        DM, GROUP, GROUP, DM, GROUP, None, None, DM]


def test_a_message_of_the_open_conversation_prints_plain_and_is_marked_read(state):
    state.open = DM
    out = state.on_frame(msg(40, body="hello"), now=0)
    assert out.lines == [f"{render.clock(1_700_000_000_000)} (1) bob: hello"]
    assert out.frames == [{"type": "read", "conv": DM, "upto": 40}]
    assert state.convs[DM].unread == 0


def test_a_message_elsewhere_names_its_conversation_and_counts_as_unread(state):
    out = state.on_frame(msg(41, conv=GROUP, frm=CAROL, body="lunch?"), now=0)
    assert out.lines == [f"[#climbing] {render.clock(1_700_000_000_000)} (1) carol: lunch?"] and out.frames == []
    assert state.convs[GROUP].unread == 1 and state.convs[GROUP].last_line == "carol: lunch?"


def test_each_message_is_shown_once_whatever_resends_it(state):
    """A reconnect's sync re-sends what the cursor did not cover; history may have shown it already."""
    state.open = DM
    state.open_conversation(DM, [msg(30, body="from history")], more=False)
    shown = [line for f in (msg(30), msg(31), msg(31), msg(32), msg(31)) for line in state.on_frame(f, 0).lines]
    assert len(shown) == 2
    assert state.convs[DM].unread == 0


def test_my_own_message_settles_the_send_and_is_not_unread(state):
    state.sending("cid-1", DM)
    state.open = DM
    assert state.receipt_text() == "sending…"
    out = state.on_frame(msg(50, frm=ALICE, device="d" * 16, cid="cid-1", body="mine"), 0)
    assert out.lines[0].endswith("alice: mine") and out.frames == []
    assert state.pending == {} and state.mine[DM] == 50 and state.receipt_text() == "sent ✓"


@pytest.mark.parametrize(("receipts", "shown"), [
    ([], "sent ✓"),
    ([("delivered", 49)], "sent ✓"),
    ([("delivered", 50)], "delivered ✓✓"),
    ([("delivered", 60), ("read", 50)], "read by bob ✓✓"),
    ([("read", 70), ("delivered", 55)], "read by bob ✓✓"),  # marks only move forward
])
def test_receipts_show_how_far_my_last_message_got(state, receipts, shown):
    state.open = DM
    state.on_frame({"type": "ack", "status": "sent", "cid": "z", "id": 50, "conv": DM}, 0)
    for status, upto in receipts:
        state.on_frame({"type": "receipt", "conv": DM, "user": BOB, "status": status, "upto": upto}, 0)
    assert state.receipt_text() == shown


def test_my_other_device_reading_clears_the_unread_count(state):
    state.on_frame({"type": "receipt", "conv": DM, "user": ALICE, "status": "read", "upto": 30}, 0)
    assert state.convs[DM].unread == 0 and state.convs[DM].read == 30


def test_typing_shows_until_its_ttl_a_stop_or_a_message(state):
    state.open = DM
    start = {"type": "typing", "conv": DM, "from": BOB, "device": "e" * 16, "state": "start", "ttl_ms": 6000}
    state.on_frame(start, now=100)
    assert state.typing_text(100) == "bob is typing…" and state.typing_text(105.9) == "bob is typing…"
    assert state.typing_text(106.1) == ""
    state.on_frame(start, now=200)
    state.on_frame({**start, "conv": GROUP, "from": CAROL}, now=200)
    assert state.typing_text(201) == "bob, carol (in #climbing) are typing…"
    state.on_frame({**start, "state": "stop"}, now=201)
    state.on_frame(msg(60, conv=GROUP, frm=CAROL), now=201)
    assert state.typing_text(201) == ""


def test_a_friend_going_online_or_offline_is_a_line_and_the_first_reading_is_not(state):
    assert state.on_frame({"type": "presence", "users": [{"user": BOB, "online": True}]}, 0).lines == []
    assert state.on_frame({"type": "presence", "users": [{"user": BOB, "online": True}]}, 0).lines == []
    off = {"type": "presence", "users": [{"user": BOB, "online": False, "last_active_at": 5}]}
    assert state.on_frame(off, 0).lines == ["* bob is offline"]


@pytest.mark.parametrize(("frame", "lines"), [
    ({"event": "joined"}, ["* you are in #climbing now (/open #climbing)"]),
    ({"event": "renamed", "name": "climbing"}, ["* the group is #climbing now"]),
    ({"event": "members", "added": [CAROL]}, ["* #climbing: carol joined"]),
    ({"event": "members", "added": [CAROL], "removed": [BOB]}, ["* #climbing: carol joined; bob left"]),
    ({"event": "left"}, ["* you left #climbing"]),
])
def test_group_events(state, frame, lines):
    assert state.on_frame({"type": "group", "conv": GROUP, **frame}, 0).lines == lines


@pytest.mark.parametrize(("state_", "lines"), [
    ("incoming", ["* carol wants to be your friend (/accept carol)"]),
    ("outgoing", []),
    ("friends", ["* you and carol are friends (/open carol)"]),
    ("none", ["* you and carol are not friends"]),
])
def test_friend_events(state, state_, lines):
    assert state.on_frame({"type": "friend", "user": CAROL, "state": state_}, 0).lines == lines


def test_frames_of_unknown_conversations_ask_for_the_list_first(state):
    assert state.knows(msg(1)) and not state.knows(msg(1, conv="g.zzzzzzzzzzzzzzzz"))
    assert not state.knows({"type": "group", "conv": GROUP, "event": "joined"})
    assert state.knows({"type": "group", "conv": GROUP, "event": "left"})
    assert state.knows({"type": "pong"}) and state.knows({"type": "presence", "users": []})


@pytest.mark.parametrize(("frame", "pending", "lines"), [
    ({"code": "rate_limited", "retryable": True, "ref": "c1", "message": "slow down"}, True, []),
    ({"code": "not_member", "ref": "c1", "message": "you are not a member"}, True,
     ["! not sent to bob: you are not a member"]),
    ({"code": "bad_cursor", "message": "cursor not accepted"}, False, []),
    ({"code": "bad_field", "message": "conv: bad"}, False, ["! bad_field: conv: bad"]),
])
def test_errors(state, frame, pending, lines):
    if pending:
        state.sending("c1", DM)
    assert state.on_frame({"type": "error", **frame}, 0).lines == lines


def test_opening_shows_history_oldest_first_and_marks_read(state):
    page = [msg(30, body="three"), msg(20, body="two"), msg(10, body="one")]  # newest first, as the API gives
    out = state.open_conversation(DM, page, more=True)
    assert out.lines[0] == "── bob ──" and "/history" in out.lines[1]
    assert [line.split(": ")[-1] for line in out.lines[2:]] == ["one", "two", "three"]
    assert out.frames == [{"type": "read", "conv": DM, "upto": 30}]
    assert state.older_than(DM) == 10
    state.history_lines(DM, [msg(5), msg(7)], more=True)
    assert state.older_than(DM) == 5
    state.history_lines(DM, [msg(2)], more=False)
    assert state.older_than(DM) is None  # the beginning


def test_a_conversation_that_fits_one_page_has_no_older_page(state):
    state.open_conversation(DM, [msg(30)], more=False)
    assert state.older_than(DM) is None


@pytest.mark.parametrize(("steps", "sent"), [
    ([("h", 0)], ["start"]),
    ([("h", 0), ("he", 1), ("hel", 1.9)], ["start"]),
    ([("h", 0), ("hel", 2.1)], ["start", "start"]),
    ([("h", 0), ("", 1)], ["start", "stop"]),
    ([("", 0)], []),
    ([("/open", 0)], []),
    ([("h", 0), ("/", 1)], ["start", "stop"]),
])
def test_typing_in_the_input_line(state, steps, sent):
    state.open = DM
    frames = [state.typed(text, now) for text, now in steps]
    assert [f["state"] for f in frames if f] == sent
    assert all(f["conv"] == DM for f in frames if f)


def test_nothing_is_sent_for_typing_without_an_open_conversation(state):
    assert state.typed("hello", 0) is None


def test_bodies_and_names_cannot_steer_the_terminal(state):
    state.open = DM
    line = state.on_frame(msg(99, body="a\x1b[2Jb\nc\x07"), 0).lines[0]
    assert "\x1b" not in line and "\n" not in line and "\x07" not in line and line.endswith("a�[2Jb ⏎ c�")


def test_the_status_line(state):
    assert state.status(0).render() == "alice · offline"
    state.open, state.connection = DM, "node1"
    assert state.status(0).render() == "alice · in bob · node1"


def test_the_conversation_list(state):
    lines = render.conversation_lines(state)
    assert lines[0].split() == ["1.", "bob", "2", "unread", "bob:", "are", "you", "there?"]
    assert lines[1].split() == ["2.", "#climbing"]
