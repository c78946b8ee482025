"""The DM send check (node/membership.py): friends now, as the node follows them live, else the store;
``blocked`` told from ``not_friends``; groups and reads are not affected."""

from __future__ import annotations

import pytest
from parley.node.membership import MembershipCheck

from parley.errors import Forbidden
from parley.ids import ConversationId, UserId, dm_conversation, new_group_conversation, new_user_id
from parley.store import Conversation, User

A, B = UserId(new_user_id()), UserId(new_user_id())
DM = ConversationId(dm_conversation(A, B))
GROUP = ConversationId(new_group_conversation())


class Store:
    """The few facts the check reads (a test double of the node's ``Memberships`` port)."""

    def __init__(self, *, friends: bool = False, blocked: bool = False) -> None:
        self.friends, self.blocked, self.reads = friends, blocked, 0

    async def get_conversation(self, conv):
        members = (A, B) if conv == DM else (A,)
        return Conversation(conv, "dm" if conv == DM else "group", tuple(sorted(members)), 1)

    async def groups_of(self, user):
        return []

    async def list_friends(self, user):
        return []

    async def friend_state(self, a, b):
        self.reads += 1
        return "friends" if self.friends else "none"

    async def blocks_with(self, user):
        return {B if user == A else A} if self.blocked else set()

    async def get_users(self, users):
        self.asked = list(users)
        return {u: User(u, "" if u == B else "a", "", 1, deleted=u == B) for u in users}


async def code_of(check: MembershipCheck, conv: ConversationId = DM) -> str | None:
    try:
        await check.check_send(A, conv)
    except Forbidden as err:
        return err.code
    return None


async def test_a_followed_user_is_checked_against_the_live_set_without_the_store():
    live: set[str] = {B}
    store = Store(friends=False)  # the store would say otherwise: the live set wins
    check = MembershipCheck(store, lambda _: [], lambda _: live)
    assert await code_of(check) is None and store.reads == 0
    live.discard(B)  # an unfriend's control event
    assert await code_of(check) == "not_friends"
    store.blocked = True
    assert await code_of(check) == "blocked"


@pytest.mark.parametrize(("friends", "blocked", "code"), [(True, False, None), (False, False, "not_friends"),
                                                         (False, True, "blocked")])
async def test_a_user_not_followed_here_is_checked_in_the_store(friends, blocked, code):
    check = MembershipCheck(Store(friends=friends, blocked=blocked), lambda _: [], lambda _: None)
    assert await code_of(check) == code


async def test_groups_and_plain_checks_need_no_friendship():
    check = MembershipCheck(Store(blocked=True), lambda _: [GROUP], lambda _: set())
    assert await code_of(check, GROUP) is None
    await check.check(A, DM)  # reads and receipts: membership only


async def test_a_deleted_account_reads_as_never_seen_and_only_the_seen_are_looked_up():
    store, c = Store(), UserId(new_user_id())
    found = [{"user": A, "online": True, "last_active_at": 5}, {"user": B, "online": False, "last_active_at": 3},
             {"user": c, "online": False, "last_active_at": None}]
    shown = await MembershipCheck(store, lambda _: []).without_deleted(found)
    assert shown == [found[0], {"user": B, "online": False, "last_active_at": None}, found[2]]
    assert store.asked == [A, B]


async def test_may_send_now_agrees_with_check_send_and_only_says_yes_from_what_the_node_holds():
    live: set[str] = {B}
    store = Store(friends=True)
    check = MembershipCheck(store, lambda _: [GROUP], lambda user: live if user == A else None)
    assert not check.may_send_now(A, DM)  # not seen opened yet: the store is asked
    assert await code_of(check) is None
    assert check.may_send_now(A, DM)  # opened, and friends as followed live
    assert not check.may_send_now(B, DM)  # B is not followed here: the store decides
    assert not check.may_send_now(UserId(new_user_id()), DM)  # not a member
    assert not check.may_send_now(A, GROUP)  # groups always take check_send
    live.discard(B)  # an unfriend's control event: refused at once, and no longer "yes" here
    assert not check.may_send_now(A, DM) and await code_of(check) == "not_friends"
