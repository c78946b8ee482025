"""Replies, edits, deletes and reactions in the terminal chat (parley.tools.chat.held and ChatState): messages
are numbered as shown, an action is applied to its target and printed as one line (never as a message), an
action on a message never shown is dropped, and history shows the state read from the store."""

import pytest
from parley.tools.chat import render
from parley.tools.chat.held import Held, text
from parley.tools.chat.state import ChatState

ALICE, BOB = "a" * 16, "b" * 16
DM = f"dm.{ALICE}.{BOB}"
TS = 1_700_000_000_000
AT = render.clock(TS)


@pytest.fixture
def state():
    s = ChatState()
    s.me, s.device = ALICE, "d" * 16
    s.load_listing({"cursor": "c", "conversations": [
        {"id": DM, "kind": "dm", "members": [{"id": ALICE, "username": "alice"}, {"id": BOB, "username": "bob"}],
         "read": 0, "unread": 0, "last_message": None}]})
    s.open = DM
    return s


def msg(id, body="", frm=BOB, ts=TS, **extra):
    return {"type": "msg", "id": id, "prev": 0, "conv": DM, "from": frm, "device": "e" * 16, "cid": f"c{id}",
            "body": body, "ts": ts, **extra}


def test_messages_are_numbered_and_actions_change_their_target_not_the_list(state):
    assert state.on_frame(msg(10, "helo"), 0).lines == [f"{AT} (1) bob: helo"]
    assert state.on_frame(msg(11, "typo"), 0).lines == [f"{AT} (2) bob: typo"]
    assert state.on_frame(msg(12, kind="edit", target=10, body="hello", ts=TS + 1), 0).lines == [
        "* bob edited (1): hello"]
    assert state.on_frame(msg(13, kind="react", target=10, emoji="👍", frm=ALICE), 0).lines == [
        '* alice reacted 👍 on (1) "hello"']
    assert state.on_frame(msg(14, kind="react", target=10, emoji="👍", frm=ALICE), 0).lines == []  # a set
    assert state.on_frame(msg(15, "sure", reply_to=10, quote={"from": BOB, "body": "hello"}), 0).lines == [
        f"{AT} (3) bob: [↪ bob: hello] sure"]
    assert state.on_frame(msg(16, kind="delete", target=11), 0).lines == ["* bob deleted (2)"]
    assert state.on_frame(msg(17, kind="react", target=11, emoji="👍"), 0).lines == []  # deleted: nothing
    assert state.on_frame(msg(18, kind="edit", target=999, body="x"), 0).lines == []  # never shown: dropped
    assert state.held.get(1) == {**msg(10, "hello"), "edited": True, "edited_at": TS + 1,
                                 "reactions": {"👍": {"count": 1, "users": [ALICE]}}}
    assert state.held.get(2)["deleted"] and state.held.get(2)["body"] == ""
    assert state.convs[DM].last == 18 and state.convs[DM].last_line == "bob: sure"
    assert state.convs[DM].unread == 0


def test_actions_do_not_count_as_unread_elsewhere(state):
    state.open = None
    state.on_frame(msg(10, "hi"), 0)
    out = state.on_frame(msg(11, kind="react", target=10, emoji="🎉"), 0)
    assert out.lines == ['[bob] * bob reacted 🎉 on (1) "hi"'] and state.convs[DM].unread == 1


def test_an_unreact_and_an_older_edit(state):
    state.on_frame(msg(10, "hi"), 0)
    state.on_frame(msg(11, kind="react", target=10, emoji="👍", frm=ALICE), 0)
    assert state.on_frame(msg(12, kind="unreact", target=10, emoji="👍", frm=ALICE), 0).lines == [
        '* alice took back 👍 on (1) "hi"']
    assert state.held.get(1)["reactions"] == {}
    state.on_frame(msg(13, kind="edit", target=10, body="new", ts=TS + 5), 0)
    assert state.on_frame(msg(14, kind="edit", target=10, body="old", ts=TS + 2), 0).lines == []
    assert state.held.get(1)["body"] == "new"


def test_history_shows_state_from_the_store_and_skips_the_action_entries(state):
    page = [msg(10, "hello", edited=True, edited_at=TS + 1, reactions={"👍": {"count": 2, "users": [ALICE, BOB]}}),
            msg(11, "", deleted=True),
            msg(12, "hello", kind="edit", target=10),
            msg(13, "sure", reply_to=11, quote={"from": BOB, "body": ""})]
    assert state.history_lines(DM, page) == [
        f"{AT} (1) bob: hello (edited) [👍 2]", f"{AT} (2) bob: (message deleted)",
        f"{AT} (3) bob: [↪ bob: (deleted)] sure"]


def test_a_message_read_again_keeps_its_number_and_takes_the_newer_state():
    held = Held()
    assert held.number(msg(10, "a")) == 1 and held.number(msg(11, "b")) == 2
    assert held.number(msg(10, "b", edited=True)) == 1
    assert text(held.get(1), "bob") == "b (edited)"
