"""The bus's permission table (``parley.bus.permissions``, ADR 0013): what each role may do, checked on the
table itself (the same rules run on a real server in tests/tools/test_busauth_servers.py), the names it
spells matching the code's, and docs/bus-permissions.md generated from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from parley.node.subscriptions import user_subjects
from parley.workers.presence_leases import LEASE_BUCKET
from parley.workers.pusher import CONSUMER as PUSHER

from parley.bus import buckets, permissions
from parley.bus.permissions import matches, may
from parley.bus.repair import REPAIR_SUBJECT
from parley.bus.stream import ARCHIVER
from parley.ids import (
    UserId,
    control_subject,
    dm_conversation,
    event_subject,
    group_delivery_subject,
    node_control_subject,
    receipt_subject,
)
from parley.live import rooms
from parley.presence_bus import heartbeat_subject, presence_subject

DOC = Path(__file__).resolve().parents[3] / "docs" / "bus-permissions.md"
ACK = "$JS.ACK.MSG_0.{}.1.2.3.1700000000.0"
A, B = UserId("u_alice"), UserId("u_bob")


@pytest.mark.parametrize(("pattern", "subject", "expected"), [
    ("msg.>", "msg.1.dm.a.b", True), ("msg.>", "msg", False), ("$JS.ACK.*.archiver.>", ACK.format("archiver"), True),
    ("$JS.ACK.*.archiver.>", ACK.format("pusher"), False), ("a.*", "a.b.c", False), ("a.*.c", "a.b.c", True),
    ("$JS.API.*.*.KV_auth_limits.>", "$JS.API.DIRECT.GET.KV_auth_limits.$KV.auth_limits.k", True),
])
def test_wildcards_match_as_nats_does(pattern, subject, expected):
    assert matches(pattern, subject) is expected


ROLE_RULES = [
    # (role, action, subject, allowed)
    ("node", "publish", "msg.3.dm.a.b", True),
    ("node", "publish", control_subject(UserId("x")), False),
    ("api", "publish", control_subject(UserId("x")), True),
    ("node", "subscribe", control_subject(UserId("x")), True),
    ("node", "publish", receipt_subject(UserId("x")), True),
    ("node", "subscribe", "$KV.auth_limits.>", False),
    ("node", "publish", "$KV.auth_limits.k", False),
    ("node", "publish", "$JS.API.DIRECT.GET.KV_auth_limits.$KV.auth_limits.k", False),
    ("node", "publish", "$JS.API.STREAM.INFO.KV_auth_limits", False),
    ("api", "publish", "$KV.auth_limits.k", True),
    ("api", "publish", "$JS.API.DIRECT.GET.KV_auth_limits.$KV.auth_limits.k", True),
    ("node", "publish", ACK.format(ARCHIVER), False),
    ("api", "publish", ACK.format(ARCHIVER), False),
    ("pusher", "publish", ACK.format(ARCHIVER), False),
    ("archiver", "publish", ACK.format(ARCHIVER), True),
    ("archiver", "publish", ACK.format(PUSHER), False),
    ("pusher", "publish", ACK.format(PUSHER), True),
    ("node", "publish", f"$JS.API.CONSUMER.MSG.NEXT.MSG_0.{ARCHIVER}", False),
    ("node", "publish", f"$JS.API.CONSUMER.INFO.MSG_0.{ARCHIVER}", True),  # the archiver's floor
    ("node", "publish", "$JS.API.CONSUMER.CREATE.MSG_0.ephemeral.msg.0.dm.a.b", True),  # a stream read
    ("node", "publish", REPAIR_SUBJECT, True),
    ("api", "publish", REPAIR_SUBJECT, True),
    ("archiver", "subscribe", REPAIR_SUBJECT, True),
    ("node", "subscribe", REPAIR_SUBJECT, False),
    ("node", "publish", heartbeat_subject(3, "node1"), True),
    ("node", "publish", presence_subject("u"), False),
    ("presence", "publish", presence_subject("u"), True),
    ("node", "publish", "$KV.presence.u", False),
    ("presence", "publish", "$KV.presence.u", True),
    ("node", "publish", "$KV.nodes.node1", True),
    ("node", "publish", "dlv.dm.a.b", False),
    ("api", "publish", "dlv.dm.a.b", False),
    ("node", "publish", "$JS.API.STREAM.DELETE.MSG_0", False),
    ("ops", "publish", "$JS.API.STREAM.DELETE.MSG_0", True),
    ("api", "publish", "$JS.API.STREAM.UPDATE.MSG_0", False),
    ("archiver", "publish", "$JS.API.STREAM.LEADER.STEPDOWN.MSG_0", False),
    ("ops", "publish", "$JS.API.STREAM.LEADER.STEPDOWN.MSG_0", True),
    ("node", "publish", "$JS.API.STREAM.CREATE.KV_nodes", True),  # a process makes what is missing
    ("ops", "publish", node_control_subject("node1"), True),
    ("ops", "publish", "$JS.API.STREAM.INFO.KV_auth_limits", True),  # parley bus status lists every stream
    ("ops", "publish", "$JS.API.STREAM.UPDATE.KV_auth_limits", True),  # parley bus migrate
    ("ops", "publish", "$KV.auth_limits.k", False),
    ("ops", "publish", ACK.format(ARCHIVER), False),
    ("node", "publish", node_control_subject("node1"), False),
    ("node", "subscribe", node_control_subject("node1"), True),
    ("discovery", "publish", "msg.3.dm.a.b", False),
    ("system", "publish", control_subject(UserId("x")), True),
    ("api", "publish", "$KV.banned_words.global.abc", True),  # the admin API edits the banned-word lists
    ("node", "publish", "$KV.banned_words.global.abc", False),  # nodes only watch them
    ("node", "publish", "$JS.API.CONSUMER.CREATE.KV_banned_words.w.$KV.banned_words.>", True),  # the watch
    ("ops", "publish", "$KV.banned_words.global.abc", False),
    ("presence", "publish", "$KV.banned_words.global.abc", False),
]


@pytest.mark.parametrize(("role", "action", "subject", "allowed"), ROLE_RULES)
def test_each_role_gets_only_what_it_needs(role, action, subject, allowed):
    assert may(role, action, subject) is allowed


def test_only_the_api_and_system_publish_revocations():
    assert [r for r in permissions.ROLES if may(r, "publish", "ctl.user.x")] == ["api", "system"]


def test_every_role_gets_its_own_replies_only_and_every_jetstream_user_the_api():
    for role in permissions.ROLES:
        own = f"{permissions.inbox_prefix(role)}.abc.1"
        assert own == f"_INBOX.{role}.abc.1" and may(role, "subscribe", own), role
        assert may(role, "publish", "$JS.API.STREAM.INFO.MSG_0"), role
        if role != "system":
            others = [r for r in permissions.ROLES if r != role]
            assert not any(may(role, "subscribe", f"_INBOX.{r}.abc.1") for r in others), role
            assert not may(role, "subscribe", "_INBOX.abc.1"), role  # nats-py's default prefix
            assert not any(may(role, "publish", f"_INBOX.{r}.abc.1") for r in permissions.ROLES), role


def test_only_nodes_answer_requests():
    assert [p.role for p in permissions.TABLE if p.responds] == ["node"]
    block = permissions.authorization_block(dict.fromkeys(permissions.ROLES, "pw"))
    assert block.count("allow_responses: true") == 1
    node = block[block.index('{user: "node"'):block.index('{user: "api"')]
    assert "allow_responses: true" in node


@pytest.mark.parametrize(("user", "prefix"), [("node", "_INBOX.node"), ("my-app_2", "_INBOX.my-app_2"),
                                              ("a.b", "_INBOX"), ("x y", "_INBOX"), ("*", "_INBOX")])
def test_an_inbox_prefix_is_one_token_or_the_default(user, prefix):
    assert permissions.inbox_prefix(user) == prefix


def test_the_names_it_spells_are_the_codes():
    assert (permissions.ARCHIVER_CONSUMER, permissions.PUSHER_CONSUMER, permissions.REPAIR) == (
        ARCHIVER, PUSHER, REPAIR_SUBJECT)
    assert matches(permissions.RECEIPTS, receipt_subject(UserId("x")))
    spelled = {"nodes", "presence", "last_seen", "pushed", "auth_limits", "banned_words", LEASE_BUCKET}
    rendered = permissions.authorization_block(dict.fromkeys(permissions.ROLES, "pw"))
    assert {buckets.NODES, buckets.PRESENCE, buckets.LAST_SEEN, buckets.PUSHED, buckets.AUTH_LIMITS,
            buckets.BANNED_WORDS} < spelled
    assert all(f"$KV.{b}.>" in rendered for b in spelled)


def test_the_block_gives_every_role_its_password():
    block = permissions.authorization_block({r: f"pw-{r}" for r in permissions.ROLES})
    assert block.startswith("authorization {") and block.count("{user: ") == len(permissions.ROLES)
    for role in permissions.ROLES:
        assert f'{{user: "{role}", password: "pw-{role}",' in block


def test_the_doc_shows_the_table_of_the_code():
    assert permissions.markdown_table() in DOC.read_text(), (
        "docs/bus-permissions.md is stale: paste parley.bus.permissions.markdown_table() into it")


# every kind of subject the code publishes on, with user and room names that look like the wildcards' tokens
SPELLED = [f"msg.3.{dm_conversation(UserId('dm'), UserId('user'))}", "msg.3.g.user", f"dlv.{dm_conversation(A, B)}",
           group_delivery_subject("g.dm"), event_subject(dm_conversation(A, B)), event_subject("g.user"),
           control_subject(UserId("user")), receipt_subject(UserId("dm")), node_control_subject("user"),
           heartbeat_subject(3, "user"), presence_subject("user"), "$KV.presence.user", "$KV.last_seen.dm",
           "$KV.pushed.user.dm", "$KV.nodes.user", "$KV.presence_leases.3", "$KV.live_viewers.user.dm",
           rooms.send_subject("user"), rooms.delivery_subject("dm"), rooms.event_subject("user"),
           rooms.count_subject("dm"), REPAIR_SUBJECT, "_INBOX.api.user", "_INBOX.archiver.dm",
           *(f"_INBOX.{r}.user.x" for r in permissions.ROLES), "$JS.API.STREAM.INFO.MSG_0", ACK.format(ARCHIVER)]


def test_the_nodes_user_wildcards_let_it_read_nothing_it_could_not_read_before():
    """ADR 0035's review: a node subscribes ``*.dm.<u>.*``, ``*.dm.*.<u>`` and ``*.user.<u>`` (three interests
    a user, not six); no subject the code spells matches them unless the node could read it already."""
    node = permissions.of_role("node")
    narrow = [s for s in node.subscribe if s not in permissions.USER_WILDCARDS]
    widened = [s for s in SPELLED if any(matches(w, s) for w in permissions.USER_WILDCARDS)]
    assert widened and all(any(matches(p, s) for p in narrow) for s in widened), widened
    for pattern in user_subjects(A):
        assert any(matches(w, pattern) for w in permissions.USER_WILDCARDS), pattern  # the server admits it
