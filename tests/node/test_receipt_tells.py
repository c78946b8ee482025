"""Group delivered receipts gathered per sender: one batch per sender and window, one mark per (conv, user), the
highest; due a window after the batch opened; everything at once when the node stops."""

from __future__ import annotations

from parley.node.receipt_tells import ReceiptTells

from parley import wire

W = 0.025


def test_nothing_open_is_never_due():
    tells = ReceiptTells(W)
    assert tells.due() is None
    assert tells.take(100.0) == []
    assert tells.take_all() == []
    assert len(tells) == 0


def test_a_senders_marks_go_together_one_per_member_the_highest():
    tells = ReceiptTells(W)
    assert tells.add("s", "g.a", "m1", 5, now=1.0) is True  # opened the batch
    assert tells.add("s", "g.a", "m2", 4, now=1.005) is False
    assert tells.add("s", "g.a", "m1", 7, now=1.01) is False  # raised: the higher mark says it all
    assert tells.add("s", "g.a", "m1", 6, now=1.015) is False  # lower than one gathered: changes nothing
    assert tells.add("s", "g.b", "m1", 2, now=1.02) is False  # another conversation: its own mark
    assert tells.take(1.0 + W) == [("s", wire.ReceiptBatch((("g.a", "m1", 7), ("g.a", "m2", 4), ("g.b", "m1", 2))))]
    assert len(tells) == 0


def test_each_sender_has_a_batch_of_its_own():
    tells = ReceiptTells(W)
    tells.add("s1", "g.a", "m", 3, now=1.0)
    assert tells.add("s2", "g.a", "m", 3, now=1.0) is True
    assert sorted(tells.take(1.0 + W)) == [("s1", wire.ReceiptBatch((("g.a", "m", 3),))),
                                          ("s2", wire.ReceiptBatch((("g.a", "m", 3),)))]


def test_a_batch_waits_out_its_window_from_its_first_mark_and_no_longer():
    tells = ReceiptTells(W)
    tells.add("s1", "g.a", "m", 1, now=1.0)
    tells.add("s2", "g.a", "m", 1, now=1.01)
    tells.add("s1", "g.a", "m", 2, now=1.02)  # joins s1's batch: it does not push it back
    assert tells.due() == 1.0 + W
    assert tells.take(1.0 + W - 0.001) == []
    assert tells.take(1.0 + W) == [("s1", wire.ReceiptBatch((("g.a", "m", 2),)))]
    assert tells.due() == 1.01 + W  # the next opened
    assert tells.take(1.01 + W) == [("s2", wire.ReceiptBatch((("g.a", "m", 1),)))]
    assert tells.due() is None


def test_a_mark_after_its_senders_batch_went_opens_a_new_one():
    tells = ReceiptTells(W)
    tells.add("s", "g.a", "m", 1, now=1.0)
    tells.take(1.0 + W)
    assert tells.add("s", "g.a", "m", 1, now=1.03) is True  # the same mark again: a receipt is idempotent
    assert tells.due() == 1.03 + W


def test_the_node_stopping_takes_every_batch_due_or_not():
    tells = ReceiptTells(W)
    tells.add("s1", "g.a", "m", 1, now=1.0)
    tells.add("s2", "g.b", "m", 2, now=1.02)
    assert tells.take_all() == [("s1", wire.ReceiptBatch((("g.a", "m", 1),))),
                                ("s2", wire.ReceiptBatch((("g.b", "m", 2),)))]
    assert tells.due() is None
