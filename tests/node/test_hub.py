from dataclasses import dataclass

from parley.node.hub import Hub

from parley.ids import dm_conversation


@dataclass(eq=False)
class Conn:
    user: str


A, B, C = "a" * 16, "b" * 16, "c" * 16
G = "g." + "q" * 16


def test_attach_and_detach_report_first_and_last_device():
    hub: Hub[Conn] = Hub()
    one, two = Conn(A), Conn(A)
    assert hub.attach(one) is True
    assert hub.attach(two) is False
    assert len(hub) == 2 and hub.user_count() == 1
    assert hub.detach(one) is False
    assert hub.detach(two) is True
    assert hub.detach(two) is False
    assert len(hub) == 0 and hub.users() == [] and hub.user_count() == 0


def test_a_dm_reaches_every_device_of_both_members_only():
    hub: Hub[Conn] = Hub()
    a1, a2, b1, c1 = Conn(A), Conn(A), Conn(B), Conn(C)
    for conn in (a1, a2, b1, c1):
        hub.attach(conn)
    targets = hub.of_conversation(dm_conversation(A, B))
    assert set(map(id, targets)) == {id(a1), id(a2), id(b1)}
    assert hub.of_conversation("not-a-conversation") == []


def test_groups_are_delivered_to_members_here_until_they_leave():
    hub: Hub[Conn] = Hub()
    a1, a2, b1 = Conn(A), Conn(A), Conn(B)
    for conn in (a1, a2, b1):
        hub.attach(conn)
    for user in (A, B, C):  # C has no device here: ignored
        hub.join_group(user, G)
    assert set(map(id, hub.of_conversation(G))) == {id(a1), id(a2), id(b1)}
    assert hub.groups_of(C) == [] and hub.has_members_of(G)
    hub.leave_group(A, G)
    assert hub.of_conversation(G) == [b1] and hub.groups_of(A) == []
    hub.detach(b1)
    assert hub.forget_groups(B) == [G]
    assert hub.of_conversation(G) == [] and not hub.has_members_of(G)


def test_a_groups_connections_are_listed_once_and_again_after_each_change_of_its_members_here():
    """ADR 0053: the list is kept between messages while nothing changes, and made again when a member here adds
    or drops a device, joins or leaves."""
    hub: Hub[Conn] = Hub()
    a1, a2, b1, b2 = Conn(A), Conn(A), Conn(B), Conn(B)
    for conn in (a1, b1):
        hub.attach(conn)
    for user in (A, B):
        hub.join_group(user, G)
    first = hub.of_conversation(G)
    assert hub.of_conversation(G) is first and set(map(id, first)) == {id(a1), id(b1)}
    hub.attach(a2)  # a member's second device
    assert set(map(id, hub.of_conversation(G))) == {id(a1), id(a2), id(b1)}
    hub.detach(a1)
    assert set(map(id, hub.of_conversation(G))) == {id(a2), id(b1)}
    hub.leave_group(B, G)
    assert hub.of_conversation(G) == [a2]
    hub.attach(b2)  # not in the group any more: not listed
    hub.join_group(C, G)  # no device here: ignored
    assert hub.of_conversation(G) == [a2]
    hub.join_group(B, G)
    assert set(map(id, hub.of_conversation(G))) == {id(a2), id(b1), id(b2)}
    hub.detach(a2)
    hub.forget_groups(A)
    assert set(map(id, hub.of_conversation(G))) == {id(b1), id(b2)}
    assert first == [a1, b1] or first == [b1, a1]  # a list handed out earlier is never changed
