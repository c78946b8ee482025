"""The store contract: every backend must pass these, SQLite (embedded) and Cassandra (a real server).

The Cassandra store runs with one-second buckets here, so messages spread over many partitions and
every read crosses partition boundaries.
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from parley.errors import Conflict
from parley.ids import dm_conversation, new_device_id, new_group_conversation, new_session_id, new_user_id
from parley.shards import pack, pos_of_id
from parley.store import Conversation, Device, PushPrefs, PushToken, Receipt, Session, StoredMessage, User
from parley.store.cassandra import CassandraStore
from parley.store.records import LiveMessage
from parley.store.sqlite import SQLiteStore
from tests.conftest import cassandra_settings, new_keyspace


@pytest.fixture(scope="session")
def contract_keyspace() -> str:
    return new_keyspace("contract")


@pytest.fixture(params=["sqlite", "cassandra"])
async def store(request, tmp_path, contract_keyspace):
    if request.param == "sqlite":
        backend = SQLiteStore(str(tmp_path / "store.db"))
    else:
        server = request.getfixturevalue("cassandra")
        backend = CassandraStore(cassandra_settings(server, contract_keyspace, cassandra_bucket_s=1))
    await backend.migrate()
    yield backend
    await backend.close()


def user(name: str) -> User:
    return User(new_user_id(), name, name.title(), 1)


def P(n: int) -> int:  # noqa: N802 — the id of sequence ``n`` in shard 0
    return pack(0, n)


def message(id: int, conv, prev: int, sender) -> StoredMessage:
    """Message ``id`` (a sequence of shard 0, as its id is packed; ``prev`` likewise)."""
    return StoredMessage(P(id), conv, P(prev) if prev else 0, sender, new_device_id(), f"c{id}", f"body {id}",
                         1000 + id)


def seqs(rows: list[StoredMessage]) -> list[int]:
    return [pos_of_id(m.id) for m in rows]


async def sync(store, user, *, after: int, upto: int, limit: int) -> list[StoredMessage]:
    """What a node reads for shard 0 (after/upto as sequences)."""
    return await store.messages_for_user(user, shard=0, after=P(after), upto=P(upto), limit=limit)


async def test_users_are_unique_by_name_and_profiles_update(store):
    name = f"alice_{new_user_id()}"  # the Cassandra keyspace is shared by the session
    alice = user(name)
    await store.create_user(alice, "hash")
    with pytest.raises(Conflict) as info:
        await store.create_user(user(name), "hash2")
    assert info.value.code == "username_taken"
    assert await store.user_by_name(name) == (alice, "hash")
    assert await store.user_by_name("nobody") is None
    updated = await store.update_user(alice.id, display_name="Al", bio=None)
    assert (updated.display_name, updated.bio) == ("Al", "")
    assert await store.get_users([alice.id, new_user_id()]) == {alice.id: updated}


async def test_a_password_hash_is_replaced_for_its_user_only(store):
    alice, bob = user(f"alice_{new_user_id()}"), user(f"bob_{new_user_id()}")
    await store.create_user(alice, "old")
    await store.create_user(bob, "old")
    await store.set_password_hash(alice, "new")
    assert (await store.user_by_name(alice.username), await store.user_by_name(bob.username)) == (
        (alice, "new"), (bob, "old"))


async def test_sessions_revoke_and_devices_keep_the_last_saved_cursor(store):
    uid = new_user_id()
    session = Session(new_session_id(), uid, new_device_id(), 1, 100)
    await store.create_session(session)
    assert await store.get_session(session.id) == session
    await store.revoke_session(session.id)
    assert (await store.get_session(session.id)).revoked
    device = await store.upsert_device(Device(new_device_id(), uid, "phone", 5))
    assert (await store.get_device(device.id)).cursor == ""
    await store.save_cursors({device.id: "c1.AAA.x"})
    await store.save_cursors({device.id: "c1.BBB.y"})
    assert (await store.get_device(device.id)).cursor == "c1.BBB.y"
    assert [d.id for d in await store.list_devices(uid)] == [device.id]


async def test_a_connects_reads_are_one_call_and_agree_with_the_single_reads(store):
    uid, friend, asked = new_user_id(), new_user_id(), new_user_id()
    session = Session(new_session_id(), uid, new_device_id(), 1, int(time.time()) + 3600)
    await store.create_session(session)
    device = await store.upsert_device(Device(new_device_id(), uid, "phone", 5))
    bare = await store.connect_reads(session.id, device=device.id)
    assert (bare.session, bare.cursor, bare.groups, bare.friends) == (session, "", None, None)
    await store.save_cursors({device.id: "c1.AAA.x"})
    conv = new_group_conversation()
    await store.create_group(Conversation(conv, "group", tuple(sorted([uid, friend])), 7, name="Team"))
    await store.add_friend(uid, friend)
    await store.add_friend(friend, uid)
    await store.add_friend(asked, uid)
    full = await store.connect_reads(session.id, device=device.id, user=uid)
    assert (full.session, full.cursor, full.groups) == (session, "c1.AAA.x", [conv])
    assert sorted(full.friends) == sorted(await store.list_friends(uid)) == sorted([(friend, "friends"),
                                                                                   (asked, "incoming")])
    nothing = await store.connect_reads(new_session_id(), device=new_device_id(), user=new_user_id())
    assert (nothing.session, nothing.cursor, nothing.groups, nothing.friends) == (None, None, [], [])
    await store.revoke_session(session.id)
    assert (await store.connect_reads(session.id)).session.revoked


async def test_a_users_sessions_are_the_live_ones(store):
    uid, now = new_user_id(), int(time.time())
    live, other, revoked, ended = (Session(new_session_id(), uid, new_device_id(), 1, now + 3600) for _ in range(4))
    ended = dataclasses.replace(ended, expires_at=now - 1)
    for s in (live, other, revoked, ended, Session(new_session_id(), new_user_id(), new_device_id(), 1, now + 60)):
        await store.create_session(s)
    await store.revoke_session(revoked.id)
    assert sorted(await store.sessions_of(uid), key=lambda s: s.id) == sorted([live, other], key=lambda s: s.id)


async def test_friend_requests_become_friendships_when_both_add(store):
    a, b = new_user_id(), new_user_id()
    assert await store.add_friend(a, b) == "outgoing"
    assert await store.friend_state(b, a) == "incoming"
    assert await store.add_friend(a, b) == "outgoing"
    assert await store.add_friend(b, a) == "friends"
    assert await store.friend_state(a, b) == "friends"
    assert await store.list_friends(a) == [(b, "friends")]
    await store.remove_friend(b, a)
    assert await store.friend_state(a, b) == "none"


async def test_message_writes_are_idempotent_and_sync_reads_only_the_users_conversations(store):
    a, b, c = new_user_id(), new_user_id(), new_user_id()
    ab, bc = dm_conversation(a, b), dm_conversation(b, c)
    for conv in (ab, bc):
        await store.open_conversation(Conversation(conv, "dm", tuple(sorted(conv.split(".")[1:])), 1))
    rows = [message(1, ab, 0, a), message(2, bc, 0, b), message(3, ab, 1, b), message(4, bc, 2, c)]
    await store.put_messages(rows)
    await store.put_messages(rows[:2])  # redelivery
    assert seqs(await sync(store, a, after=0, upto=10, limit=10)) == [1, 3]
    assert seqs(await sync(store, b, after=1, upto=3, limit=10)) == [2, 3]
    assert seqs(await sync(store, b, after=0, upto=10, limit=2)) == [1, 2]
    assert await sync(store, a, after=0, upto=10, limit=10) == [rows[0], rows[2]]


async def test_history_pages_both_ways(store):
    a, b = new_user_id(), new_user_id()
    conv = dm_conversation(a, b)
    await store.open_conversation(Conversation(conv, "dm", tuple(sorted((a, b))), 1))
    await store.put_messages([message(i, conv, i - 1, a) for i in range(1, 11)])
    newest = await store.history(conv, before=None, after=None, limit=3, newest_first=True)
    assert seqs(newest) == [10, 9, 8]
    older = await store.history(conv, before=P(8), after=None, limit=3, newest_first=True)
    assert seqs(older) == [7, 6, 5]
    forward = await store.history(conv, before=None, after=P(4), limit=3, newest_first=False)
    assert seqs(forward) == [5, 6, 7]
    between = await store.history(conv, before=P(7), after=P(4), limit=10, newest_first=False)
    assert seqs(between) == [5, 6]


async def test_actions_fold_into_their_targets_idempotently_and_a_delete_blanks_its_text(store):
    """ADR 0025: the archiver puts entries, then applies the actions and replies among them (in id order)."""
    a, b = new_user_id(), new_user_id()
    conv = dm_conversation(a, b)
    await store.open_conversation(Conversation(conv, "dm", tuple(sorted((a, b))), 1))

    def entry(id: int, sender, **kw) -> StoredMessage:
        return dataclasses.replace(message(id, conv, id - 1, sender), target_ts=1001, **kw)

    first, other = message(1, conv, 0, a), message(2, conv, 1, b)
    edit = entry(3, a, kind="edit", target=P(1), body="edited")
    reply = entry(4, b, reply_to=P(1), quote_from=a, quote="body 1")
    react = entry(5, b, kind="react", target=P(1), body="", emoji="👍")
    orphan = dataclasses.replace(entry(6, b, kind="react", target=P(99), body="", emoji="x"), target_ts=1099)
    batch = [first, other, edit, reply, react, orphan]
    for _ in range(2):  # a redelivered batch changes nothing
        await store.put_messages(batch)
        assert await store.apply_actions(batch[2:]) == [orphan]
    rows = {m.id: m for m in await store.history(conv, before=None, after=None, limit=10, newest_first=False)}
    target = rows[P(1)]
    assert (target.body, target.state.edit_id, target.kind) == ("edited", P(3), "")
    assert target.state.reactions == (("👍", b, P(5)),)
    assert (rows[P(4)].reply_to, rows[P(4)].quote, rows[P(5)].emoji) == (P(1), "body 1", "👍")
    delete = entry(7, a, kind="delete", target=P(1), body="")
    await store.put_messages([delete])
    assert await store.apply_actions([delete]) == []
    await store.put_messages(batch)  # a rewrite of the original after the delete keeps the tombstone
    rows = {m.id: m for m in await store.history(conv, before=None, after=None, limit=10, newest_first=False)}
    assert (rows[P(1)].body, rows[P(1)].state.deleted, rows[P(1)].state.reactions) == ("", True, ())
    assert (rows[P(3)].body, rows[P(4)].quote, rows[P(4)].body) == ("", "", "body 4")
    assert rows[P(2)] == other
    assert [m.id for m in await sync(store, a, after=0, upto=10, limit=10)] == [P(i) for i in range(1, 8)]


async def test_conversations_list_with_members_and_last_message(store):
    a, b, c = new_user_id(), new_user_id(), new_user_id()
    ab, ac = dm_conversation(a, b), dm_conversation(a, c)
    await store.open_conversation(Conversation(ab, "dm", tuple(sorted((a, b))), 1))
    await store.open_conversation(Conversation(ab, "dm", tuple(sorted((a, b))), 2))  # idempotent
    await store.open_conversation(Conversation(ac, "dm", tuple(sorted((a, c))), 3))
    await store.put_messages([message(5, ab, 0, a), message(9, ac, 0, c)])
    listed = await store.list_conversations(a)
    assert [c.id for c in listed] == [ac, ab]  # most recent first
    assert listed[0].last_message.id == P(9) and listed[1].members == tuple(sorted((a, b)))
    assert await store.get_conversation("dm.nope") is None
    assert [c.id for c in await store.list_conversations(b)] == [ab]


async def test_reads_are_exact_across_many_partitions_even_when_clocks_disagree(store):
    """Timestamps cross bucket boundaries, and some later ids carry earlier times (a sending node's
    clock behind another's): every read still returns exactly the right ids in id order."""
    a, b, c = new_user_id(), new_user_id(), new_user_id()
    ab, ac = dm_conversation(a, b), dm_conversation(a, c)
    for conv, other in ((ab, b), (ac, c)):
        await store.open_conversation(Conversation(conv, "dm", tuple(sorted((a, other))), 1))
    skew = {7: -900, 8: -1500, 21: -2100, 30: +800}  # ms; ids 7, 8, 21 land in earlier buckets
    rows = [StoredMessage(P(i), ab if i % 3 else ac, 0, a, new_device_id(), f"c{i}", f"b{i}",
                          10_000 + i * 400 + skew.get(i, 0)) for i in range(1, 41)]
    await store.put_messages(rows[20:])  # the archiver may write in any batch split
    await store.put_messages(rows[:25])
    in_ab = [pos_of_id(m.id) for m in rows if m.conv == ab]
    assert seqs(await store.history(ab, before=None, after=None, limit=100, newest_first=False)) == in_ab
    assert seqs(await store.history(ab, before=None, after=None, limit=5, newest_first=True)) == \
        in_ab[::-1][:5]
    assert seqs(await store.history(ab, before=P(22), after=P(6), limit=4, newest_first=True)) == [20, 19, 17, 16]
    assert seqs(await store.history(ab, before=None, after=P(6), limit=4, newest_first=False)) == [7, 8, 10, 11]
    got, cursor = [], 0
    while True:  # sync in pages of 7, as a node does
        page = await sync(store, a, after=cursor, upto=37, limit=7)
        got += seqs(page)
        if len(page) < 7:
            break
        cursor = pos_of_id(page[-1].id)
    assert got == list(range(1, 38))
    assert seqs(await sync(store, c, after=0, upto=100, limit=100)) == \
        [pos_of_id(m.id) for m in rows if m.conv == ac]
    assert (await store.get_conversation(ab)).last_message == rows[39]


async def test_groups_members_roles_and_the_cap(store):
    owner, *others = [new_user_id() for _ in range(6)]
    conv = new_group_conversation()
    await store.create_group(Conversation(conv, "group", tuple(sorted([owner, others[0]])), 7, name="Team",
                                          roles=((owner, "owner"),)))
    assert await store.add_members(conv, [others[1], others[0], others[1]], cap=4) == [others[1]]
    with pytest.raises(Conflict) as full:
        await store.add_members(conv, others[2:4], cap=4)  # 3 + 2 > 4: nobody joins
    assert (full.value.code, full.value.details["limit"]) == ("group_full", 4)
    assert await store.add_members(conv, [others[2]], cap=4) == [others[2]]
    group = await store.get_conversation(conv)
    assert group.members == tuple(sorted([owner, *others[:3]])) and group.name == "Team"
    assert (group.role_of(owner), group.role_of(others[1]), group.role_of(others[4])) == ("owner", "member", None)
    await store.set_role(conv, others[1], "admin")
    await store.rename_group(conv, "Team 2")
    assert await store.remove_member(conv, others[0]) is True
    assert await store.remove_member(conv, others[0]) is False
    assert await store.add_members(conv, [others[4]], cap=4) == [others[4]]  # the freed place
    group = await store.get_conversation(conv)
    assert group.name == "Team 2" and group.roles == tuple(sorted([(owner, "owner"), (others[1], "admin")]))
    assert others[0] not in group.members and len(group.members) == 4
    assert await store.groups_of(others[4]) == [conv] and await store.groups_of(others[0]) == []
    assert [c.id for c in await store.list_conversations(owner)] == [conv]


async def test_group_messages_sync_to_members_only(store):
    a, b, c = new_user_id(), new_user_id(), new_user_id()
    conv = new_group_conversation()
    await store.create_group(Conversation(conv, "group", tuple(sorted([a, b])), 1, name="g", roles=((a, "owner"),)))
    await store.put_messages([message(i, conv, i - 1, a) for i in range(1, 6)])
    assert seqs(await sync(store, b, after=2, upto=10, limit=10)) == [3, 4, 5]
    assert await sync(store, c, after=0, upto=10, limit=10) == []
    await store.remove_member(conv, b)
    assert await sync(store, b, after=0, upto=10, limit=10) == []


async def test_receipts_only_move_forward_and_read_implies_delivered(store):
    conv, a, b = new_group_conversation(), new_user_id(), new_user_id()
    await store.save_receipts([Receipt(conv, a, delivered=10), Receipt(conv, b, read=4)])
    await store.save_receipts([Receipt(conv, a, delivered=7, read=6), Receipt(conv, b, delivered=9)])
    await store.save_receipts([Receipt(conv, b, read=3)])
    assert await store.receipts(conv) == sorted([Receipt(conv, a, 10, 6), Receipt(conv, b, 9, 4)],
                                                key=lambda r: r.user)
    assert await store.receipts(new_group_conversation()) == []


async def test_a_duplicate_group_id_is_a_conflict_and_profile_updates_keep_other_fields(store):
    owner = new_user_id()
    conv = new_group_conversation()
    await store.create_group(Conversation(conv, "group", (owner,), 1, name="a", roles=((owner, "owner"),)))
    with pytest.raises(Conflict):
        await store.create_group(Conversation(conv, "group", (owner,), 2, name="b", roles=((owner, "owner"),)))
    u = user(f"bob_{new_user_id()}")
    await store.create_user(u, "hash")
    await store.update_user(u.id, display_name=None, bio="climber")
    updated = await store.update_user(u.id, display_name="Bobby", bio=None)
    assert (updated.display_name, updated.bio) == ("Bobby", "climber")


async def test_push_tokens_replace_per_device_and_only_the_stale_one_is_removed(store):
    u, v = new_user_id(), new_user_id()
    phone, laptop = new_device_id(), new_device_id()
    await store.put_push_token(PushToken(u, phone, "android", "tok-1", 1))
    await store.put_push_token(PushToken(u, phone, "android", "tok-2", 2))  # the phone's new token
    await store.put_push_token(PushToken(u, laptop, "web", "tok-3", 3))
    await store.put_push_token(PushToken(v, new_device_id(), "ios", "tok-4", 4))
    assert sorted(t.token for t in await store.push_tokens([u])) == ["tok-2", "tok-3"]
    assert await store.delete_push_token(u, phone, only="tok-1") is False  # FCM rejected an old token
    assert await store.delete_push_token(u, phone, only="tok-2") is True
    assert await store.delete_push_token(u, laptop) is True
    assert await store.delete_push_token(u, laptop) is False
    assert [t.token for t in await store.push_tokens([u, v])] == ["tok-4"]


async def test_push_preferences_and_muted_conversations(store):
    u, conv, other = new_user_id(), new_group_conversation(), new_group_conversation()
    assert await store.push_prefs(u) == PushPrefs()
    assert await store.set_push_prefs(u, muted=None, hide_text=True) == PushPrefs(False, True)
    await store.mute_conversation(u, conv, True)
    await store.mute_conversation(u, other, True)
    await store.mute_conversation(u, other, False)
    assert await store.set_push_prefs(u, muted=True, hide_text=None) == PushPrefs(True, True, (conv,))


async def test_a_push_token_belongs_to_one_device_at_a_time(store):
    a, b = new_user_id(), new_user_id()
    phone_a, phone_b = new_device_id(), new_device_id()
    await store.put_push_token(PushToken(a, phone_a, "android", "shared-install-token", 1))
    await store.put_push_token(PushToken(b, phone_b, "android", "shared-install-token", 2))  # b logs in there
    assert await store.push_tokens([a]) == []
    assert [t.user for t in await store.push_tokens([a, b])] == [b]
    assert await store.delete_push_token(b, phone_b) is True
    await store.put_push_token(PushToken(a, phone_a, "android", "shared-install-token", 3))  # and back to a
    assert [t.user for t in await store.push_tokens([a, b])] == [a]


async def test_sync_reads_one_shard_at_a_time_and_a_conversation_keeps_its_home(store):
    a, b, c = new_user_id(), new_user_id(), new_user_id()
    ab, ac = dm_conversation(a, b), dm_conversation(a, c)
    await store.open_conversation(Conversation(ab, "dm", tuple(sorted((a, b))), 1, shard=0))
    await store.open_conversation(Conversation(ac, "dm", tuple(sorted((a, c))), 1, shard=3))
    rows = [StoredMessage(pack(0, 5), ab, 0, a, new_device_id(), "x", "in 0", 1),
            StoredMessage(pack(3, 5), ac, 0, a, new_device_id(), "y", "in 3", 2),
            StoredMessage(pack(3, 9), ac, pack(3, 5), c, new_device_id(), "z", "in 3 again", 3)]
    await store.put_messages(rows)
    assert await store.messages_for_user(a, shard=3, after=0, upto=pack(3, 100), limit=10) == rows[1:]
    assert await store.messages_for_user(a, shard=0, after=0, upto=pack(0, 100), limit=10) == rows[:1]
    assert await store.messages_for_user(a, shard=3, after=pack(3, 5), upto=pack(3, 100), limit=10) == rows[2:]
    assert (await store.get_conversation(ac)).shard == 3 and (await store.get_conversation(ab)).shard == 0


async def test_a_block_is_one_way_idempotent_and_ends_the_friendship(store):
    a, b, c = new_user_id(), new_user_id(), new_user_id()
    await store.add_friend(a, b)
    await store.add_friend(b, a)
    await store.add_friend(c, a)  # a pending request from c
    assert await store.block(a, b) is True
    assert await store.block(a, b) is False
    assert await store.friend_state(a, b) == "none"
    assert await store.block(c, a) is True
    assert await store.friend_state(a, c) == "none"
    assert await store.blocked_by(a) == [b]
    assert await store.blocks_with(a) == {b, c}
    assert await store.blocks_with(b) == {a}
    assert await store.unblock(a, b) is True
    assert await store.unblock(a, b) is False
    assert await store.blocked_by(a) == [] and await store.blocks_with(b) == set()
    assert await store.friend_state(a, b) == "none"  # unblocking brings no friendship back


async def test_a_deleted_account_keeps_a_placeholder_and_its_username_and_nothing_else(store):
    name = f"gone_{new_user_id()}"
    gone, friend, other = user(name), new_user_id(), new_user_id()
    await store.create_user(gone, "hash")
    session = Session(new_session_id(), gone.id, new_device_id(), 1, int(time.time()) + 3600)
    await store.create_session(session)
    device = await store.upsert_device(Device(session.device, gone.id, "phone", 5))
    await store.save_cursors({device.id: "c1.AAA.x"})
    await store.put_push_token(PushToken(gone.id, device.id, "android", f"tok-{name}", 1))
    await store.set_push_prefs(gone.id, muted=True, hide_text=None)
    await store.add_friend(gone.id, friend)
    await store.add_friend(friend, gone.id)
    await store.block(gone.id, other)
    await store.block(other, gone.id)
    conv = dm_conversation(gone.id, friend)
    await store.open_conversation(Conversation(conv, "dm", tuple(sorted((gone.id, friend))), 1, shard=0))
    await store.put_messages([message(1, conv, 0, gone.id)])

    for _ in range(2):  # idempotent: a second run (finishing one cut short) changes nothing
        await store.delete_account(gone.id, now=123)
        assert await store.user_by_name(name) is None
        assert await store.get_user(gone.id) == User(gone.id, "", "", gone.created_at, deleted=True)
        assert (await store.get_session(session.id)).revoked and await store.sessions_of(gone.id) == []
        assert await store.list_devices(gone.id) == [] and await store.get_device(device.id) is None
        assert await store.push_tokens([gone.id]) == [] and await store.push_prefs(gone.id) == PushPrefs()
        assert await store.list_friends(friend) == [] and await store.friend_state(friend, gone.id) == "none"
        assert await store.blocks_with(other) == set() and await store.blocked_by(gone.id) == []
    with pytest.raises(Conflict):  # the username stays taken
        await store.create_user(user(name), "hash2")
    history = await store.history(conv, before=None, after=None, limit=10, newest_first=True)
    assert [(m.sender, m.body) for m in history] == [(gone.id, "body 1")]  # messages stay, attributed to the id


def live(room: str, id: int, sender="u" * 16) -> LiveMessage:
    return LiveMessage(room, id, sender, f"c{id}", f"live {id}", 5000 + id)


async def test_live_history_pages_newest_first_across_partitions_and_rooms(store):
    room, other = new_user_id(), new_user_id()  # room ids are ids like any other
    ids = [1, 2, 3, 65535, 65536, 65537, 3 * 65536 + 5]  # Cassandra: four id buckets
    await store.put_live_messages([live(room, i) for i in ids] + [live(other, 4)])
    await store.put_live_messages([live(room, 2)])  # the archiver redelivers: the same row
    assert [m.id for m in await store.live_history(room, before=None, limit=100)] == ids[::-1]
    page = await store.live_history(room, before=65537, limit=3)
    assert [m.id for m in page] == [65536, 65535, 3]
    assert [m.id for m in await store.live_history(room, before=3, limit=10)] == [2, 1]
    assert page[0] == live(room, 65536)
    assert [m.id for m in await store.live_history(other, before=None, limit=10)] == [4]
    assert await store.live_history(new_user_id(), before=None, limit=10) == []


async def test_a_deleted_live_message_stays_a_tombstone_even_when_rewritten(store):
    room = new_user_id()
    await store.put_live_messages([live(room, 7), live(room, 8)])
    assert await store.delete_live_message(room, 7)
    assert not await store.delete_live_message(room, 9)  # not stored
    assert not await store.delete_live_message(new_user_id(), 8)  # another room's id
    await store.put_live_messages([live(room, 7)])  # a redelivery does not bring it back
    rows = await store.live_history(room, before=None, limit=10)
    assert [(m.id, m.deleted, m.body) for m in rows] == [(8, False, "live 8"), (7, True, "")]


async def test_a_message_keeps_its_attachments_in_history_sync_and_the_conversation_list(store):
    """ADR 0024: the references a message carries come back as written; a message without has none."""
    from parley.store import AttachmentRef

    a, b = new_user_id(), new_user_id()
    conv = dm_conversation(a, b)
    await store.open_conversation(Conversation(conv, "dm", tuple(sorted((a, b))), 1))
    refs = (AttachmentRef("a" * 16, "image/jpeg", "Grüße.jpg", 1234, 800, 600, True),
            AttachmentRef("b" * 16, "application/pdf", "doc.pdf", 99))
    plain = message(1, conv, 0, a)
    carrying = dataclasses.replace(message(2, conv, 1, a), body="", attachments=refs)
    await store.put_messages([plain, carrying])
    assert await store.history(conv, before=None, after=None, limit=10, newest_first=False) == [plain, carrying]
    assert await sync(store, b, after=0, upto=10, limit=10) == [plain, carrying]
    listed = {c.id: c for c in await store.list_conversations(b)}
    assert listed[conv].last_message == carrying


async def test_rows_put_are_the_messages_put_and_a_redelivered_row_changes_nothing(store):
    """ADR 0069: ``put_rows`` (the archiver's way) stores what ``put_messages`` of the same messages stores: a plain
    one, an action, a reply with its quote, one with attachments; a row put again keeps what actions made of its
    message."""
    from parley.store import AttachmentRef
    from parley.store.columns import row_of

    a, b = new_user_id(), new_user_id()
    conv = dm_conversation(a, b)
    await store.open_conversation(Conversation(conv, "dm", tuple(sorted((a, b))), 1))
    plain = message(1, conv, 0, a)
    react = dataclasses.replace(message(2, conv, 1, b), kind="react", target=P(1), target_ts=1001, emoji="👍")
    reply = dataclasses.replace(message(3, conv, 2, b), reply_to=P(1), target_ts=1001, quote_from=a,
                                quote="body 1")
    carrying = dataclasses.replace(message(4, conv, 3, a),
                                   attachments=(AttachmentRef("a" * 16, "image/png", "x.png", 9),))
    sent = [plain, react, reply, carrying]
    await store.put_rows([row_of(m) for m in sent])
    assert await store.history(conv, before=None, after=None, limit=10, newest_first=False) == sent
    assert await store.apply_actions([react, reply]) == []
    await store.put_rows([row_of(plain)])  # redelivered: the row is not written over
    got = await store.history(conv, before=None, after=None, limit=10, newest_first=False)
    assert got[0].state.reactions and got[0].state.quoted_by == ((P(3), 1003),)
