"""parley/actions.py: who may act on a message, and what the archiver makes of actions (ADR 0025). Pure."""

from __future__ import annotations

from dataclasses import replace

import pytest

from parley import actions
from parley.actions import Blank, apply, check, current, extras_json
from parley.errors import ParleyError
from parley.ids import ConversationId, DeviceId, MessageId, UserId
from parley.store.columns import extra_of, state_of, with_columns
from parley.store.records import StoredMessage

CONV = ConversationId("g.aaaaaaaaaaaaaaaa")
ALICE, BOB = UserId("alice"), UserId("bob")


def msg(id: int, sender: UserId = ALICE, body: str = "hello", **kw: object) -> StoredMessage:
    return StoredMessage(MessageId(id), CONV, id - 1, sender, DeviceId("d"), f"c{id}", body, 1000 * id, **kw)  # type: ignore[arg-type]


def act(id: int, kind: str, target: int, sender: UserId = ALICE, **kw: object) -> StoredMessage:
    return msg(id, sender, kw.pop("body", ""), kind=kind, target=target, target_ts=1000 * target, **kw)  # type: ignore[arg-type]


def fold(target: StoredMessage, *entries: StoredMessage) -> StoredMessage:
    for e in entries:
        target = apply(target, e)[0]
    return target


def code(fn, *args, **kwargs) -> str | None:  # type: ignore[no-untyped-def]
    try:
        fn(*args, **kwargs)
    except ParleyError as err:
        return err.code
    return None


@pytest.mark.parametrize(("kind", "actor", "role", "target", "now", "expected"), [
    ("edit", ALICE, None, msg(1), 1000, None),
    ("edit", BOB, None, msg(1), 1000, "not_sender"),
    ("edit", ALICE, None, msg(1), 1000 + 901_000, "edit_window_closed"),
    ("edit", ALICE, None, None, 1000, "unknown_message"),
    ("edit", ALICE, None, act(2, "react", 1, emoji="x"), 2000, "unknown_message"),  # an action is not a target
    ("delete", ALICE, None, msg(1), 10**12, None),  # no window for deletes
    ("delete", BOB, "member", msg(1), 1000, "not_sender"),
    ("delete", BOB, None, msg(1), 1000, "not_sender"),  # a DM: nobody deletes the other's messages
    ("delete", BOB, "admin", msg(1), 1000, None),
    ("delete", BOB, "owner", msg(1), 1000, None),
    ("react", BOB, None, msg(1), 1000, None),
    ("react", BOB, None, fold(msg(1), act(2, "delete", 1)), 1000, "message_deleted"),
    ("", BOB, None, fold(msg(1), act(2, "delete", 1)), 1000, "message_deleted"),  # a reply to a deleted one
    ("edit", ALICE, None, fold(msg(1), act(2, "delete", 1)), 1000, "message_deleted"),
])
def test_who_may_act_on_what(kind, actor, role, target, now, expected):
    assert code(check, kind, actor=actor, role=role, target=target, emoji="👍", now_ms=now,
                edit_window_s=900) == expected


def test_the_newest_edit_wins_whatever_order_they_are_applied_in():
    first, second = act(2, "edit", 1, body="one"), act(3, "edit", 1, body="two")
    for order in ((first, second), (second, first), (first, second, first, second)):
        m = fold(msg(1), *order)
        assert (m.body, m.state.edit_id, m.state.edited_at) == ("two", 3, 3000)
        assert extras_json(m)["edited"] is True


def test_reactions_count_users_once_and_an_older_action_changes_nothing():
    on, again, other, off = (act(2, "react", 1, BOB, emoji="👍"), act(3, "react", 1, BOB, emoji="👍"),
                             act(4, "react", 1, ALICE, emoji="👍"), act(5, "unreact", 1, BOB, emoji="👍"))
    m = fold(msg(1), on, again, other)
    assert extras_json(m)["reactions"] == {"👍": {"count": 2, "users": ["bob", "alice"]}}
    m = fold(m, off)
    assert extras_json(m)["reactions"] == {"👍": {"count": 1, "users": ["alice"]}}
    assert fold(m, on, again) == m  # redelivered after the unreact: still taken back
    assert "reactions" not in extras_json(fold(m, act(6, "unreact", 1, ALICE, emoji="👍")))


def test_reactions_stay_bounded():
    m = msg(1)
    for i in range(actions.MAX_EMOJIS + 5):
        m = fold(m, act(10 + i, "react", 1, BOB, emoji=f"e{i}"))
    assert len(extras_json(m)["reactions"]) == actions.MAX_EMOJIS
    assert code(check, "react", actor=ALICE, role=None, target=m, emoji="new", now_ms=0, edit_window_s=1) \
        == "too_many_reactions"
    assert code(check, "react", actor=ALICE, role=None, target=m, emoji="e0", now_ms=0, edit_window_s=1) is None


def test_a_delete_leaves_a_tombstone_and_blanks_the_edits_and_quotes_that_carry_its_text():
    reply = msg(3, BOB, "yes", reply_to=1, target_ts=1000, quote_from=ALICE, quote="hello")
    m = fold(msg(1), act(2, "edit", 1, body="hello!"), reply, act(4, "react", 1, BOB, emoji="x"))
    after, blanks = apply(m, act(5, "delete", 1))
    assert (after.body, after.state.deleted, after.state.reactions) == ("", True, ())
    assert blanks == [Blank(2, 2000, "body"), Blank(3, 3000, "quote")]
    assert extras_json(after) == {"deleted": True, "edited": True, "edited_at": 2000}
    assert (after.state.delete_id, after.state.delete_from, after.state.delete_cid) == (5, ALICE, "c5")
    # what comes after a delete changes nothing, and an edit's or reply's text is blanked at once
    assert apply(after, act(6, "react", 1, BOB, emoji="x")) == (after, [])
    assert apply(after, act(7, "edit", 1, body="back")) == (after, [Blank(7, 7000, "body")])
    assert apply(after, act(8, "delete", 1, BOB)) == (after, [])


def test_a_page_shows_the_unarchived_actions_applied():
    edit = act(3, "edit", 2, BOB, body="hi!")
    page = [msg(1), fold(msg(2, BOB, "hi"), edit), edit]  # the archiver applied the edit
    tail = [act(4, "delete", 2, BOB), act(5, "react", 1, BOB, emoji="x")]
    shown = {m.id: m for m in current(page + tail, tail)}
    assert shown[2].state.deleted and shown[2].body == "" and shown[3].body == ""
    assert extras_json(shown[1])["reactions"] == {"x": {"count": 1, "users": ["bob"]}}


def test_columns_round_trip_and_a_plain_message_has_none():
    plain = msg(1)
    assert (extra_of(plain), state_of(plain)) == ("", "")
    m = fold(msg(1), act(2, "edit", 1, body="x"), act(3, "react", 1, BOB, emoji="👍"))
    bare = replace(m, kind="", state=replace(m.state, edits=()))
    assert with_columns(msg(1, body=m.body), extra_of(m), state_of(m)) == m
    assert with_columns(bare, "", "") == bare
    reply = msg(4, BOB, "yes", reply_to=1, target_ts=1000, quote_from=ALICE, quote="hello")
    assert with_columns(msg(4, BOB, "yes"), extra_of(reply), "") == reply
    assert extras_json(reply) == {"reply_to": 1, "quote": {"from": "alice", "body": "hello"}}


@pytest.mark.parametrize(("emoji", "ok"), [("👍", True), ("+1", True), ("", False), ("a b", False),
                                           ("\n", False), ("x" * 33, False), ("👍" * 8, True)])
def test_an_emoji_is_a_short_printable_string(emoji, ok):
    assert actions.valid_emoji(emoji) is ok
