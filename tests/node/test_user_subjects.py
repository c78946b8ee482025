"""A user's three subscriptions (node/subscriptions.py, ADR 0035): each wildcard takes two kinds of subject and
its handler sends each to the code that handled it on its own subscription before; a subject of any other kind
that matches (nobody publishes one today) is dropped, and a control message is only ever taken from ``ctl.``."""

from __future__ import annotations

import asyncio

from parley.node.subscriptions import UserSubscriptions, user_subjects

from parley import wire
from parley.bus.permissions import matches
from parley.ids import UserId, control_subject, dm_conversation, event_subject, receipt_subject
from tests.poll import eventually

A, B = UserId("u_alice"), UserId("u_bob")
DM = dm_conversation(A, B)


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []

    def on_event(self, subject: str, headers: object, data: bytes, only: UserId | None = None) -> None:
        self.seen.append(("event", subject))

    def on_receipt(self, user: UserId, message: object) -> None:
        self.seen.append(("receipt", user))


def subscriptions(events: Events, delivered: list[str]) -> UserSubscriptions:
    subs = UserSubscriptions(None, None, None, groups=None, presence=None, events=events,  # type: ignore[arg-type]
                             deliver=lambda subject, headers, data, only: delivered.append(subject))
    subs._apply = lambda user, message: events.seen.append(("control", message.kind))  # type: ignore[method-assign]
    return subs


def test_the_three_wildcards_match_the_six_subjects_they_replace():
    dm_one, dm_other, mine = user_subjects(A)
    assert matches(dm_one, f"dlv.{DM}") != matches(dm_other, f"dlv.{DM}")  # one side of the DM each
    assert matches(dm_one, event_subject(DM)) != matches(dm_other, event_subject(DM))
    assert matches(mine, control_subject(A)) and matches(mine, receipt_subject(A))
    assert not any(matches(s, control_subject(B)) for s in user_subjects(A))


def test_each_subject_goes_to_its_own_handler_and_any_other_is_dropped():
    events, delivered = Events(), []
    subs = subscriptions(events, delivered)
    subs.on_dm(A, f"dlv.{DM}", b"NATS/1.0\r\nNats-Sequence: 1\r\n\r\n", b"x")
    subs.on_dm(A, event_subject(DM), None, b"x")
    subs.on_dm(A, f"zzz.{DM}", None, b"x")
    receipt = wire.encode(wire.ReceiptNotice(B, "read", 5, "g.x"))
    revoke = wire.encode(wire.Revoke("s1"))
    subs.on_user(A, receipt_subject(A), None, receipt)
    subs.on_user(A, receipt_subject(A), None, revoke)  # a revocation on the nodes' subject: not taken
    subs.on_user(A, control_subject(A), None, revoke)
    subs.on_user(A, f"zzz.user.{A}", None, revoke)
    assert delivered == [f"dlv.{DM}"]
    assert events.seen == [("event", event_subject(DM)), ("receipt", A), ("control", "revoke")]


def test_the_shared_handlers_read_the_user_from_the_subject_each_subscription_matched():
    events, delivered = Events(), []
    subs = subscriptions(events, delivered)
    subs._deliver = lambda subject, headers, data, only=None: delivered.append(only)  # type: ignore[assignment]
    head = b"NATS/1.0\r\nNats-Sequence: 1\r\n\r\n"
    subs._dm_first(f"dlv.{DM}", head, b"x")  # through *.dm.<first>.*: the first member's
    subs._dm_second(f"dlv.{DM}", head, b"x")  # through *.dm.*.<second>: the second member's
    first, second = DM.split(".")[1:]
    assert delivered == [first, second]
    subs._mine(control_subject(B), None, wire.encode(wire.Revoke("s1")))
    assert events.seen == [("control", "revoke")]


async def test_a_users_lock_lives_only_while_a_set_up_or_a_leave_holds_it_or_waits_for_it():
    """A second device's set-up waits for the first's (and a leave for an arrival) on one lock per user; once none
    holds or waits for it, it is gone: an idle user keeps no lock (ADR 0041)."""
    subs, order, release = subscriptions(Events(), []), [], asyncio.Event()

    async def first() -> None:
        async with subs._lock(A):
            order.append("first in")
            await release.wait()
            order.append("first out")

    async def second() -> None:
        async with subs._lock(A):
            order.append("second in")

    one = asyncio.get_running_loop().create_task(first())
    await eventually(lambda: order == ["first in"], what="the first holder in")
    two = asyncio.get_running_loop().create_task(second())
    await eventually(lambda: subs._locks[A]._waiters, what="the second waiting on the same lock")
    assert order == ["first in"] and list(subs._locks) == [A]
    release.set()
    await asyncio.gather(one, two)
    assert order == ["first in", "first out", "second in"]
    assert len(subs._locks) == 0
