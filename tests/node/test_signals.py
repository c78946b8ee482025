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
