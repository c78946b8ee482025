"""The device session's state table and its answers to each event, one scenario a row."""

from __future__ import annotations

import pytest
from parley.node.session import Delivery, DeviceSession, SessionError, State, SyncFrom

from parley.errors import CLOSE_DRAINING, CLOSE_SLOW
from parley.ids import UserId
from parley.shards import pack

ME = UserId("me")


def V(n: int, shard: int = 0) -> dict[int, int]:  # noqa: N802 — a position vector of one shard
    return {shard: n}


def msg(id: int, conv: str = "a", prev: int = 0, sender: str = "other", shard: int = 0) -> Delivery:
    """Message ``id`` (a sequence of ``shard``), frames named by the sequence."""
    return Delivery(pack(shard, id), conv, pack(shard, prev) if prev else 0, sender, f"{conv}:{id}".encode())


def sent(s: DeviceSession) -> list[bytes]:
    return list(s.take_out() or ())


def live_session(cursor: int = 10) -> DeviceSession:
    s = DeviceSession(ME, max_queue=100)
    s.accept(V(cursor), b"welcome")
    s.begin_round(V(cursor))
    assert s.finish_round(V(cursor)) is None
    sent(s)
    return s


def test_hello_accept_welcomes_and_asks_for_a_sync_from_the_cursor():
    s = DeviceSession(ME, max_queue=100)
    assert s.state is State.HELLO
    assert s.accept(V(40), b"welcome") == SyncFrom(V(40))
    assert s.state is State.SYNCING and s.acked == V(40) and sent(s) == [b"welcome"]


@pytest.mark.parametrize(("state", "event"), [
    (State.HELLO, lambda s: s.begin_round(V(0))),
    (State.LIVE, lambda s: s.accept(V(0), b"w")),
    (State.CLOSING, lambda s: s.accept(V(0), b"w")),
])
def test_events_a_state_does_not_allow_are_bugs(state, event):
    s = live_session() if state is State.LIVE else DeviceSession(ME, max_queue=100)
    if state is State.CLOSING:
        s.close(1000, "")
    with pytest.raises(SessionError):
        event(s)


def test_a_round_sends_what_it_read_then_what_was_held_in_order_and_goes_live():
    s = DeviceSession(ME, max_queue=100)
    s.accept(V(10), b"w")
    s.begin_round(V(10))
    s.live(msg(13, "a", 11))  # arrives while the round reads: held
    s.synced(msg(11, "a", 3))
    s.synced(msg(12, "b", 0))
    assert s.finish_round(V(12)) is None
    assert sent(s) == [b"w", b"a:11", b"b:12", b"a:13"] and s.state is State.LIVE
    assert s.position.delivered == V(13)


def test_a_held_message_the_round_also_read_is_sent_once():
    s = DeviceSession(ME, max_queue=100)
    s.accept(V(10), b"w")
    s.begin_round(V(10))
    s.live(msg(11, "a", 3))
    s.synced(msg(11, "a", 3))
    s.finish_round(V(11))
    assert sent(s) == [b"w", b"a:11"]


def test_a_live_gap_holds_the_message_and_asks_for_a_repair_from_the_last_good_point():
    s = live_session(10)
    s.live(msg(11, "a", 3))
    assert s.live(msg(14, "a", 12)) == SyncFrom(V(11))  # 12 never came
    assert s.state is State.SYNCING and sent(s) == [b"a:11"]
    s.begin_round(V(11))
    s.synced(msg(12, "a", 11))
    s.synced(msg(14, "a", 12))
    assert s.finish_round(V(14)) is None
    assert sent(s) == [b"a:12", b"a:14"]


def test_a_repair_round_does_not_resend_what_this_connection_sent():
    s = live_session(10)
    s.live(msg(11, "a", 3))
    s.live(msg(12, "b", 0))
    s.resync(V(10))  # e.g. NATS reconnected
    s.begin_round(V(10))
    for m in (msg(11, "a", 3), msg(12, "b", 0), msg(13, "b", 12)):
        s.synced(m)
    s.finish_round(V(13))
    assert sent(s) == [b"a:11", b"b:12", b"b:13"]


def test_a_client_sync_resends_even_what_was_sent():
    s = live_session(10)
    s.live(msg(11, "a", 3))
    assert s.client_sync(V(10)) == SyncFrom(V(10))
    s.begin_round(V(10))
    s.synced(msg(11, "a", 3))
    s.finish_round(V(11))
    assert sent(s) == [b"a:11", b"a:11"]


def test_holding_too_much_during_a_round_makes_the_round_run_again():
    s = DeviceSession(ME, max_queue=10**6)
    s.accept(V(0), b"w")
    s.begin_round(V(0))
    for i in range(1, 10_002):
        s.live(msg(i, "a", i - 1))
    assert s.finish_round(V(0)) == SyncFrom(V(0))
    assert s.state is State.SYNCING


def test_acks_confirm_only_what_was_queued_and_report_what_they_cover():
    s = live_session(10)
    s.live(msg(11, "a", 3, sender="bob"))
    s.live(msg(12, "a", 11, sender=ME))  # our own: no receipt for it
    s.live(msg(13, "b", 0, sender="carol"))
    assert s.ack(V(99)) == {"a": (pack(0, 11), {"bob"}), "b": (pack(0, 13), {"carol"})}
    assert s.acked == V(13)
    assert s.ack(V(12)) is None  # never backwards


def test_a_device_too_slow_to_read_is_closed_at_once():
    s = DeviceSession(ME, max_queue=4)
    s.accept(V(0), b"w")
    for _ in range(5):
        s.send(b"x")
    assert s.state is State.CLOSING and s.close_code == CLOSE_SLOW and not s.out


def test_draining_sends_moved_after_the_queue_then_nothing_more():
    s = live_session()
    s.live(msg(11))
    s.drain(b"moved", CLOSE_DRAINING, "node is draining")
    s.live(msg(12, prev=11))
    assert sent(s) == [b"a:11", b"moved"] and s.close_code == CLOSE_DRAINING
    s.closed()
    assert s.state is State.CLOSED


def test_a_store_hole_is_reported_and_the_message_still_sent():
    s = DeviceSession(ME, max_queue=100)
    s.accept(V(10), b"w")
    s.begin_round(V(10))
    assert s.synced(msg(11, "a", 3)) is False
    assert s.synced(msg(15, "a", 12)) is True  # 12 was never read
    assert sent(s)[-1] == b"a:15"


def test_shards_are_judged_apart_and_a_gap_lowers_only_its_own_shard():
    s = DeviceSession(ME, max_queue=100)
    s.accept({0: 10, 1: 50}, b"w")
    s.begin_round({0: 10, 1: 50})
    assert s.finish_round({0: 10, 1: 50}) is None
    s.live(msg(11, "a", 3, shard=0))
    s.live(msg(51, "x", 40, shard=1))
    s.live(msg(12, "b", 0, shard=0))  # interleaved across shards: each in its own order
    assert sent(s) == [b"w", b"a:11", b"x:51", b"b:12"]
    assert s.position.delivered == {0: 12, 1: 51}
    assert s.live(msg(55, "x", 53, shard=1)) == SyncFrom({0: 12, 1: 51})  # 53 never came: shard 1 from x's last
    s.begin_round({0: 12, 1: 51})
    s.synced(msg(53, "x", 51, shard=1))
    s.synced(msg(55, "x", 53, shard=1))
    assert s.finish_round({0: 12, 1: 55}) is None
    assert sent(s) == [b"x:53", b"x:55"]


def test_a_cursor_is_offered_when_the_position_moved_and_acks_cover_per_shard():
    s = live_session(10)
    assert s.take_cursor() is None  # nothing new since the welcome's
    s.live(msg(11, "a", 3, sender="bob"))
    s.live(msg(7, "z", 0, sender="carol", shard=1))
    offered = s.take_cursor()
    assert offered == {0: 11, 1: 7} and s.take_cursor() is None
    assert s.ack({0: 11}) == {"a": (pack(0, 11), {"bob"})}  # shard 1 not acked yet: carol's stays unacked
    assert s.ack({0: 11, 1: 7}) == {"z": (pack(1, 7), {"carol"})}
    assert s.ack({0: 99, 1: 99}) is None  # never beyond what was queued


def test_an_ack_covers_each_conversation_up_to_it_whatever_was_queued_before_in_another_shard():
    """ADR 0053: the unacked messages are kept per conversation and an ack takes each one's covered prefix; a
    message of a shard the ack does not reach yet does not hold back another shard's (it did, in one queue)."""
    s = live_session(10)
    s.live(msg(11, "a", 3, sender="bob"))
    s.live(msg(7, "z", 0, sender="carol", shard=1))
    s.live(msg(12, "a", 11, sender="dan"))
    s.live(msg(8, "z", 7, sender="carol", shard=1))
    assert s.take_cursor() == {0: 12, 1: 8}
    assert s.ack({1: 7}) == {"z": (pack(1, 7), {"carol"})} and s.unacked == 3
    assert s.ack({0: 11, 1: 7}) == {"a": (pack(0, 11), {"bob"})} and s.unacked == 2
    assert s.ack({0: 12, 1: 8}) == {"a": (pack(0, 12), {"dan"}), "z": (pack(1, 8), {"carol"})}
    assert s.unacked == 0


def test_messages_queued_again_by_a_clients_own_sync_wait_for_one_ack_each():
    """A client's ``sync`` from an older cursor sends again what is still unacked: each waits for its ack once
    (the bound counts messages, not sendings)."""
    s = live_session(10)
    for n in (11, 12):
        s.live(msg(n, "a", n - 1 if n > 11 else 0))
    assert s.unacked == 2
    assert s.client_sync(V(10)) == SyncFrom(V(10))
    s.begin_round(V(10))
    for n in (11, 12):
        s.synced(msg(n, "a", n - 1 if n > 11 else 0))
    assert s.finish_round(V(12)) is None and s.unacked == 2
    assert s.ack(V(12)) == {"a": (pack(0, 12), {"other"})} and s.unacked == 0


def test_a_shard_the_round_could_not_read_is_in_doubt_no_cursor_passes_it_until_a_round_reads_it():
    """Another region's shard did not answer: local messages go live; the remote shard's live messages are
    delivered too, but no cursor passes where the device stood there, and the next round starts from it."""
    s = DeviceSession(ME, max_queue=100)
    s.accept({0: 10, 1: 20}, b"welcome")
    s.begin_round({0: 10, 1: 20})
    assert s.finish_round({0: 12}, skipped=[1]) is None and s.state is State.LIVE
    sent(s)
    assert s.live(msg(13, conv="local", prev=0)) is None and sent(s) == [b"local:13"]
    # the remote shard answers live again: delivered, but the position offered stays at the mark
    assert s.live(msg(25, conv="remote", prev=0, shard=1)) is None and sent(s) == [b"remote:25"]
    assert s.position.delivered == {0: 13, 1: 25}
    assert s.take_cursor() == {0: 13, 1: 20} and s.ack({0: 13, 1: 25}) is not None and s.acked == {0: 13, 1: 20}
    repair = s.resync()  # the node resyncs everyone once the shard answers: from the mark
    assert repair == SyncFrom({0: 13, 1: 20})
    s.begin_round(repair.point)
    s.synced(msg(22, conv="missed", prev=0, shard=1))
    s.synced(msg(25, conv="remote", prev=0, shard=1))  # this connection sent it already: not again
    assert sent(s) == [b"missed:22"]
    assert s.finish_round({0: 13, 1: 25}) is None and s.position.marks == {}
    assert s.take_cursor() == {0: 13, 1: 25}


def test_a_live_connection_whose_shard_stops_answering_offers_no_cursor_past_it():
    s = live_session(cursor=10)
    s.suspend([0])
    assert s.live(msg(11, conv="a", prev=0)) is None and sent(s) == [b"a:11"]
    assert s.take_cursor() is None  # still {0: 10}, offered already
    assert s.resync() == SyncFrom({0: 10})


def test_a_hole_the_round_finds_can_be_filled_before_the_message_after_it():
    s = DeviceSession(ME, max_queue=100)
    s.accept(V(10), b"welcome")
    s.begin_round(V(10))
    sent(s)
    assert s.hole_before(msg(12, "a", prev=10)) is None  # a's first message continues from the base
    assert not s.synced(msg(12, "a", prev=10))
    assert not s.synced(msg(15, "b", prev=0))
    after_gap = msg(16, "a", prev=13)  # 13 (in a) is missing from what the round read
    hole = s.hole_before(after_gap)
    assert hole is not None and (hole.after, hole.before) == (pack(0, 12), pack(0, 16))
    s.fill(msg(13, "a", prev=12))  # from the stream: below b's 15, queued anyway (a's order is kept)
    s.fill(msg(13, "a", prev=12))  # read twice: sent once
    assert s.hole_before(after_gap) is None
    assert not s.synced(after_gap)
    assert sent(s) == [b"a:12", b"b:15", b"a:13", b"a:16"]
    assert s.finish_round(V(16)) is None
    assert s.cursor_position() == V(16)


def test_a_hole_left_unfilled_is_still_reported():
    s = DeviceSession(ME, max_queue=100)
    s.accept(V(10), b"welcome")
    s.begin_round(V(10))
    assert s.synced(msg(16, "a", prev=13))  # the stream no longer had 13: sent, and the caller logs the hole


def test_unacked_messages_are_bounded_a_sync_round_waits_for_acks_and_a_live_flood_closes():
    """docs/adr/0016: at most ``max_unacked`` messages from others wait for the device's ack. A round is held
    (``crowded``) from half of it until an ack brings it to a quarter; a live message past it closes the
    connection (4009) and is not queued, so the device's next sync from its acked cursor brings it."""
    s = DeviceSession(ME, max_queue=1000, max_unacked=8)
    s.accept(V(10), b"welcome")
    s.begin_round(V(10))
    for n in range(11, 16):
        s.synced(msg(n, prev=n - 1 if n > 11 else 0))
    assert s.unacked == 5 and s.crowded and not s.roomy()
    assert s.ack(s.take_cursor() or {}) == {"a": (pack(0, 15), {"other"})}
    assert s.unacked == 0 and s.roomy() and not s.crowded
    assert s.finish_round(V(15)) is None
    sent(s)
    for n in range(16, 24):  # up to the bound: queued
        assert s.live(msg(n, prev=n - 1)) is None
    assert s.unacked == 8 and s.state is State.LIVE and len(sent(s)) == 8
    s.live(msg(24, prev=23))  # past it: closed, not queued, nothing acked lost
    assert s.state is State.CLOSING and s.close_code == CLOSE_SLOW and s.close_reason == "too many unacked messages"
    assert s.unacked == 8 and not s.out and s.acked == V(15)


def test_own_messages_do_not_count_as_unacked():
    s = DeviceSession(ME, max_queue=1000, max_unacked=2)
    s.accept(V(0), b"welcome")
    s.begin_round(V(0))
    assert s.finish_round(V(0)) is None
    for n in range(1, 10):
        s.live(msg(n, prev=n - 1 if n > 1 else 0, sender=ME))
    assert s.state is State.LIVE and s.unacked == 0
