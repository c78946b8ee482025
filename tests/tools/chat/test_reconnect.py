"""After a close (parley.tools.chat.reconnect): protocol §13's table, and the backoff."""

import pytest
from parley.tools.chat.reconnect import Backoff, after_close, urls_of

NODE2 = {"id": "node2", "url": "ws://h:2/ws"}
NODE3 = {"id": "node3", "url": "ws://h:3/ws"}
MOVED = {"type": "moved", "reason": "draining", "node": NODE2, "fallbacks": [NODE3]}


@pytest.mark.parametrize(("code", "moved", "relogin", "nodes", "backoff", "delay", "at_least"), [
    (4010, MOVED, False, ("ws://h:2/ws", "ws://h:3/ws"), False, 0.0, 0.0),  # go where the node said, at once
    (None, MOVED, False, ("ws://h:2/ws", "ws://h:3/ws"), False, 0.0, 0.0),  # moved, then the socket dropped
    (4010, {"node": None, "fallbacks": []}, False, (), False, 0.3, 0.0),  # ask /v1/place after a short jitter
    (4010, None, False, (), False, 0.3, 0.0),
    (4001, None, True, (), False, 0.0, 0.0),
    (4002, None, True, (), False, 0.0, 0.0),
    (4003, None, True, (), False, 0.0, 0.0),
    (1001, None, False, (), False, 0.3, 0.0),  # the node stops: another one at once
    (4029, None, False, (), True, 0.0, 30.0),
    (1006, None, False, (), True, 0.0, 0.0),
    (1011, None, False, (), True, 0.0, 0.0),
    (4008, None, False, (), True, 0.0, 0.0),
    (None, None, False, (), True, 0.0, 0.0),
])
def test_what_follows_a_close(code, moved, relogin, nodes, backoff, delay, at_least):
    plan = after_close(code, moved, jitter=0.5)
    assert (plan.relogin, plan.nodes, plan.backoff, round(plan.delay_s, 6), plan.at_least_s) == (
        relogin, nodes, backoff, delay, at_least)
    assert plan.note


def test_backoff_doubles_to_a_cap_with_jitter_and_resets():
    b = Backoff()
    assert [b.take(0.5) for _ in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    b.reset()
    assert b.take(0.0) == 0.25 and b.take(0.999) == pytest.approx(1.499)


def test_placement_urls():
    assert urls_of({"node": NODE2, "fallbacks": [NODE3]}) == ("ws://h:2/ws", "ws://h:3/ws")
    assert urls_of({"node": None, "fallbacks": []}) == ()
