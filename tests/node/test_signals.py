import pytest
from parley.node.signals import ReceiptMarks, TypingGate


@pytest.mark.parametrize(("frames", "expected"), [
    # (time, conv, state) → verdicts
    ([(0.0, "c", "start"), (0.5, "c", "start"), (1.9, "c", "start"), (2.0, "c", "start")],
     ["forward", "coalesce", "coalesce", "forward"]),
    ([(0.0, "c", "start"), (0.1, "c", "stop"), (0.2, "c", "start")], ["forward", "forward", "forward"]),
    ([(0.0, "c", "start"), (0.1, "d", "start")], ["forward", "forward"]),  # per conversation
    ([(0.01 * i, "c", "start") for i in range(12)], ["forward"] + ["coalesce"] * 11),  # floods: FrameBudget
])
def test_typing_gate(frames, expected):
    gate = TypingGate(interval_s=2.0)
    assert [gate.judge("u", conv, state, now) for now, conv, state in frames] == expected


def test_a_sent_message_ends_the_typing_interval():
    gate = TypingGate(interval_s=2.0)
    assert gate.judge("u", "c", "start", 0.0) == "forward"
    assert gate.judge("u", "c", "start", 0.5) == "coalesce"
    gate.sent("u", "d")  # another conversation: no effect here
    assert gate.judge("u", "c", "start", 0.6) == "coalesce"
    gate.sent("u", "c")  # receivers cleared the indicator when the message came
    assert gate.judge("u", "c", "start", 0.7) == "forward"


def test_forget_drops_a_typists_intervals():
    gate = TypingGate(interval_s=2.0)
    assert gate.judge("u", "c", "start", 0.0) == "forward"
    gate.forget("u")
    assert gate.judge("u", "c", "start", 0.2) == "forward"


def test_receipt_marks_announce_only_news():
    marks = ReceiptMarks()
    assert [marks.raise_to("u", "c", n) for n in (5, 5, 3, 9)] == [True, False, False, True]
    assert marks.raise_to("u", "d", 1) and marks.raise_to("v", "c", 2)
    marks.forget("u")
    assert marks.raise_to("u", "c", 1)


def test_typing_and_receipt_state_stays_bounded_per_user_and_forget_is_per_user():
    """docs/adr/0016: past ``per_user`` conversations the least recently touched is forgotten (a ``start``
    goes out sooner, a mark is announced again: never a missed one); ``forget`` drops one user's entries
    without touching (or scanning) anyone else's."""
    gate, marks = TypingGate(interval_s=2.0, per_user=3), ReceiptMarks(per_user=3)
    for i in range(10):
        assert gate.judge("u", f"c{i}", "start", 0.0) == "forward"
        assert marks.raise_to("u", f"c{i}", 5)
    assert gate.judge("v", "c9", "start", 0.0) == "forward" and marks.raise_to("v", "c9", 5)
    assert len(gate) == 4 and len(marks) == 4
    assert gate.judge("u", "c9", "start", 0.1) == "coalesce" and not marks.raise_to("u", "c9", 5)  # kept
    assert gate.judge("u", "c0", "start", 0.1) == "forward" and marks.raise_to("u", "c0", 5)  # forgotten early
    gate.forget("u")
    marks.forget("u")
    assert len(gate) == 1 and len(marks) == 1
    assert gate.judge("v", "c9", "start", 0.2) == "coalesce" and not marks.raise_to("v", "c9", 5)
