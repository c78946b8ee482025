"""Revocation announcements (api/revocations.py): the retry schedule (pure), and a retry on a real
nats-server that was away."""

from parley.api.revocations import GIVE_UP_S, LONGEST_PAUSE_S, Revocations, retry_pauses

from parley import bus, wire
from parley.ids import SessionId, UserId, control_subject, new_session_id, new_user_id
from tests.integration.cluster import Cluster
from tests.poll import eventually


def test_pauses_double_up_to_the_longest_and_stop_at_the_give_up_time():
    pauses = list(retry_pauses(first=0.5, longest=4, give_up=20))
    assert pauses == [0.5, 1, 2, 4, 4, 4, 4]  # 19.5 s in all; one more would pass 20
    assert sum(pauses) <= 20


def test_the_default_schedule_is_bounded_and_keeps_trying_for_minutes():
    pauses = list(retry_pauses())
    assert max(pauses) == LONGEST_PAUSE_S and sum(pauses) <= GIVE_UP_S
    assert sum(pauses) > GIVE_UP_S - LONGEST_PAUSE_S and len(pauses) < 40


async def test_an_announcement_nats_did_not_take_is_retried_until_it_does(tmp_path):
    """On a real nats-server that is stopped, then started again: the first try fails, a retry in the
    background delivers it once the server is back. The subscriber is the announcing connection itself:
    nats-py subscribes again on reconnect before it counts as connected, and a retry publishes only once
    connected, so the subscription is always in place before the retry (no race with another client)."""
    cluster = Cluster(tmp_path, nodes=0)
    cluster.start_nats()
    nc = None
    try:
        nc = await bus.connect(cluster.settings, "api under test")
        user, first, second = UserId(new_user_id()), SessionId(new_session_id()), SessionId(new_session_id())
        got: list[wire.BusMessage] = []
        await nc.subscribe_ordered(control_subject(user), lambda _s, _h, data: got.append(wire.decode(data)))
        revocations = Revocations(nc, max_retries=1)
        assert await revocations.announce(user, [first])  # NATS up: taken at once
        await eventually(lambda: got == [wire.Revoke(first)], what="the first revocation delivered")
        cluster.stop_nats()
        await eventually(lambda: not nc.is_connected, what="the client seeing NATS gone")
        assert not await revocations.announce(user, [second])  # not taken: retried in the background
        assert revocations.pending == 1
        third = SessionId(new_session_id())
        assert not await revocations.announce(user, [third])  # past the bound: left to the nodes' own check
        assert revocations.pending == 1
        cluster.start_nats()
        await eventually(lambda: got == [wire.Revoke(first), wire.Revoke(second)], timeout=30,
                         what="the second revocation delivered after NATS came back")
        await eventually(lambda: revocations.pending == 0, what="the retry finished")
        await revocations.close()
    finally:
        if nc is not None:
            await nc.close()
        cluster.shutdown()
