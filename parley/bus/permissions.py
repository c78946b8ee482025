"""Who may publish and subscribe to what on the bus: one table, role → allow and deny lists (ADR 0013).

Every Parley process connects to NATS as the user of its role (``node``, ``api``, ``discovery``,
``archiver``, ``presence``, ``pusher``), operators' commands as ``ops`` and tests and benchmarks as
``system``; ``authorization_block`` renders the table as nats-server's ``authorization { users = [...] }``
(passwords from ``parley.tools.busauth``). Nothing else connects: without a user the server refuses.

The lists follow the code (the subjects in ``parley.ids``, ``parley.presence_bus``, ``parley.bus``):
- plain subjects are allowed one by one: only the API announces on ``ctl.user.>`` (revocations, friend
  and group changes) and writes live rooms' meta and events (``live_rooms``, ``live.evt.>``), only nodes
  publish messages (``msg.>``, ``live.msg.>``) and beats, only the presence worker
  publishes ``presence.>`` (and asks nodes for reports, ``hb.ask.>``) and writes the presence buckets,
  only the archiver serves ``arc.repair``;
- JetStream's API (``$JS.API.>``: streams, buckets, consumers, direct gets) is open to every role that
  uses JetStream, minus what another role owns: the ``auth_limits`` bucket's stream belongs to the API,
  and only the API writes the ``banned_words`` bucket (nodes watch it); the ``attachments`` object store
  (``$O.attachments.>``) is the API's, its records' bucket the API's and the nodes' (a send claims them),
  the durable ``archiver``, ``live_archiver`` and ``pusher`` consumers (pull, ack, create, delete) to their workers;
  changing, purging or deleting streams and moving leaders to ``ops``;
- replies (JetStream answers, pull deliveries, requests) come to each connection's own inbox prefix,
  ``_INBOX.<user>`` (``inbox_prefix``; ``parley.bus.connection`` sets it from ``PARLEY_NATS_USER``): a role
  subscribes only to ``_INBOX.<role>.>``, so it cannot read another role's replies; nobody publishes on
  ``_INBOX.>`` except as an answer to a request it received (nats-server's ``allow_responses``, one
  answer per request, given to the roles that serve requests: nodes answer ``ctl.node.<id>``).
- live rooms' moderation (the ``live_mod`` bucket, the ``LIVE_AUDIT`` stream's ``audit.live.>``) is written
  by nodes (automatic decisions) and the API (moderators');
A deny wins over an allow (nats-server's rule). Nobody publishes ``dlv.>`` or ``live.dlv.>``: only the streams republish
there, which is the server's own doing. ``docs/bus-permissions.md`` is generated from this table
(``markdown_table``; a test keeps it in step).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

JS_API = "$JS.API.>"
# JetStream as a client uses it: the API, acks of what it pulled, flow-control replies of ordered consumers (KV watches)
JS = (JS_API, "$JS.ACK.>", "$JS.FC.>")
ARCHIVER_CONSUMER, PUSHER_CONSUMER = "archiver", "pusher"  # parley.bus.stream.ARCHIVER, workers.pusher.CONSUMER
LIVE_ARCHIVER_CONSUMER = "live_archiver"  # parley.bus.live.ARCHIVER
LIVE_SEND, LIVE_DELIVERY, LIVE_EVENTS = "live.msg.>", "live.dlv.>", "live.evt.>"  # parley.live.rooms
LIVE_COUNTS = "live.cnt.>"  # parley.live.rooms.CNT: nodes tell each other their viewers per room
LIVE_ROOMS = "live_rooms"  # parley.bus.live.BUCKET: room meta, written by the API only
REPAIR = "arc.repair"  # parley.bus.repair.REPAIR_SUBJECT
ASKS = "hb.ask.>"  # a presence worker asks a node for a partition's report (parley.presence_bus.ask_subject)
RECEIPTS = "rcpt.user.>"  # a group receipt to the nodes of one user (parley.ids.receipt_subject)
LIVE_MOD = ("$KV.live_mod.>", "audit.live.>")  # live rooms' standings and audit log (parley.live.board, .audit)
# a user's three subscriptions on a node (node.subscriptions.user_subjects, ADR 0035): no subject of another
# role has ``dm`` or ``user`` as its second token, so these add nothing a node could not read already
USER_WILDCARDS = ("*.dm.*.*", "*.user.*")
ATTACHMENTS = "attachments"  # parley.attachments: the records' KV bucket (API; nodes claim) and the object store (API)


def inbox_prefix(user: str) -> str:
    """The inbox prefix of ``user``'s connections (nats-py's ``connect(inbox_prefix=...)``): ``_INBOX.<user>``,
    or nats-py's own ``_INBOX`` for a name that is not one plain subject token (a hand-made user)."""
    return f"_INBOX.{user}" if re.fullmatch(r"[A-Za-z0-9_-]+", user) else "_INBOX"


def inbox(role: str) -> str:
    """The replies of ``role``'s connections, the only inboxes it may subscribe to."""
    return f"{inbox_prefix(role)}.>"


def kv(bucket: str) -> str:
    """The subjects a bucket's writes are published on."""
    return f"$KV.{bucket}.>"


def stream_api(stream: str) -> tuple[str, ...]:
    """Every JetStream API subject naming ``stream`` (``$JS.API.STREAM.INFO.<s>``, ``…DIRECT.GET.<s>[.<subject>]``,
    ``…CONSUMER.CREATE.<s>.<c>.<filter>``, ``…CONSUMER.MSG.NEXT.<s>.<c>``…): the stream is the 5th or 6th token."""
    return (f"$JS.API.*.*.{stream}", f"$JS.API.*.*.{stream}.>", f"$JS.API.*.*.*.{stream}",
            f"$JS.API.*.*.*.{stream}.>")


def consumer_use(consumer: str) -> tuple[str, ...]:
    """Taking over a durable consumer of any stream: pulling, acking (with or without a domain), creating
    or deleting it. Reading its info stays open (nodes read the archiver's ack floor)."""
    return (f"$JS.API.CONSUMER.MSG.NEXT.*.{consumer}", f"$JS.API.CONSUMER.DELETE.*.{consumer}",
            f"$JS.API.CONSUMER.CREATE.*.{consumer}", f"$JS.API.CONSUMER.CREATE.*.{consumer}.>",
            f"$JS.API.CONSUMER.DURABLE.CREATE.*.{consumer}", f"$JS.ACK.*.{consumer}.>", f"$JS.ACK.*.*.*.{consumer}.>")


@dataclass(frozen=True)
class Permissions:
    role: str
    why: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    deny_publish: tuple[str, ...] = ()
    deny_subscribe: tuple[str, ...] = ()
    responds: bool = False  # answers requests: may publish one reply to each request it received (allow_responses)


AUTH_LIMITS = stream_api("KV_auth_limits") + (kv("auth_limits"),)
BANNED_WORDS = kv("banned_words")  # parley.bus.buckets.BANNED_WORDS: the API writes, nodes watch
NOT_THE_API = ("ctl.user.>", LIVE_EVENTS, kv(LIVE_ROOMS), BANNED_WORDS) + AUTH_LIMITS
NOT_THE_ARCHIVER = consumer_use(ARCHIVER_CONSUMER) + consumer_use(LIVE_ARCHIVER_CONSUMER)
NOT_THE_PUSHER = consumer_use(PUSHER_CONSUMER)
# what only operators do: change or remove a live stream (ADR 0006: no process does), move leaders, manage servers
OPS_ONLY = ("$JS.API.STREAM.DELETE.>", "$JS.API.STREAM.PURGE.>", "$JS.API.STREAM.MSG.DELETE.>",
                     "$JS.API.STREAM.UPDATE.>", "$JS.API.STREAM.PEER.REMOVE.>", "$JS.API.STREAM.LEADER.STEPDOWN.>",
                     "$JS.API.CONSUMER.LEADER.STEPDOWN.>", "$JS.API.META.>", "$JS.API.SERVER.>")
NOT_OWNED = NOT_THE_API + NOT_THE_ARCHIVER + NOT_THE_PUSHER + OPS_ONLY

TABLE: tuple[Permissions, ...] = (
    Permissions("node", "edge node: publishes messages, events, beats; follows deliveries and controls",
                publish=("msg.>", "evt.>", RECEIPTS, "hb.>", REPAIR, kv("nodes"), LIVE_SEND, LIVE_COUNTS,
                         kv("live_viewers"), *LIVE_MOD, kv(ATTACHMENTS), *JS),
                subscribe=("dlv.>", "evt.>", RECEIPTS, "ctl.user.>", "ctl.node.>", "presence.>", ASKS, LIVE_DELIVERY,
                           LIVE_EVENTS, LIVE_COUNTS, inbox("node"), *USER_WILDCARDS),
                deny_publish=NOT_OWNED + (kv("presence"), kv("last_seen"), kv("pushed"), kv("presence_leases")),
                deny_subscribe=AUTH_LIMITS, responds=True),  # answers ``parley node drain`` on ctl.node.<id>
    Permissions("api", "HTTP API: announces revocations and changes, keeps the brute-force counters",
                publish=("ctl.user.>", REPAIR, kv("auth_limits"), LIVE_EVENTS, kv(LIVE_ROOMS), BANNED_WORDS, *LIVE_MOD,
                         kv(ATTACHMENTS), f"$O.{ATTACHMENTS}.>", *JS),
                subscribe=(inbox("api"),),
                deny_publish=NOT_THE_ARCHIVER + NOT_THE_PUSHER + OPS_ONLY),
    Permissions("discovery", "placement and the cluster page: reads the node registry and JetStream's state",
                publish=JS, subscribe=(inbox("discovery"),),
                deny_publish=NOT_OWNED),
    Permissions("archiver", "pulls and acks the archiver consumers, serves repair requests",
                publish=JS, subscribe=(REPAIR, inbox("archiver")),
                deny_publish=NOT_THE_API + NOT_THE_PUSHER + OPS_ONLY),
    Permissions("presence", "turns beats into presence changes and the presence buckets",
                publish=("presence.>", ASKS, kv("presence"), kv("last_seen"), kv("presence_leases"), *JS),
                subscribe=("hb.>", inbox("presence")),
                deny_publish=NOT_OWNED),
    Permissions("pusher", "pulls and acks the pusher consumers, claims pushes in its bucket",
                publish=(kv("pushed"), *JS), subscribe=(inbox("pusher"),),
                deny_publish=NOT_THE_API + NOT_THE_ARCHIVER + OPS_ONLY),
    # every stream's and consumer's info and config (``parley bus status``/``migrate``), never their messages
    Permissions("ops", "operators' commands: parley node drain, parley bus status/stepdown/migrate",
                publish=("ctl.node.>", *JS), subscribe=(inbox("ops"),),
                deny_publish=("ctl.user.>", kv("auth_limits"), LIVE_EVENTS, kv(LIVE_ROOMS), BANNED_WORDS)
                + NOT_THE_ARCHIVER + NOT_THE_PUSHER),
    Permissions("system", "tests and benchmarks: everything", publish=(">",), subscribe=(">",)),
)
ROLES = tuple(p.role for p in TABLE)


def of_role(role: str) -> Permissions:
    for p in TABLE:
        if p.role == role:
            return p
    raise KeyError(f"no bus role {role!r} (roles: {', '.join(ROLES)})")


def _quoted(subjects: tuple[str, ...]) -> str:
    return "[" + ", ".join(f'"{s}"' for s in subjects) + "]"


def _user(p: Permissions, password: str) -> str:
    publish = f"{{allow: {_quoted(p.publish)}" + (f", deny: {_quoted(p.deny_publish)}}}" if p.deny_publish else "}")
    subscribe = f"{{allow: {_quoted(p.subscribe)}" + (
        f", deny: {_quoted(p.deny_subscribe)}}}" if p.deny_subscribe else "}")
    responds = ",\n                  allow_responses: true" if p.responds else ""
    return (f'    {{user: "{p.role}", password: "{password}",\n'
            f"     permissions: {{publish: {publish},\n                  subscribe: {subscribe}{responds}}}}}")


def authorization_block(passwords: dict[str, str]) -> str:
    """nats-server's ``authorization`` block: one user per role with its password and permissions."""
    users = ",\n".join(_user(p, passwords[p.role]) for p in TABLE)
    return f"authorization {{\n  users = [\n{users}\n  ]\n}}\n"


ANSWERS = "<br>an answer to each request it received (`allow_responses`)"


def markdown_table() -> str:
    """The table as docs/bus-permissions.md shows it."""
    def cell(subjects: tuple[str, ...]) -> str:
        return "<br>".join(f"`{s}`" for s in subjects) or "—"

    rows = ["| role | what it is | publish | subscribe | denied publish | denied subscribe |",
            "|---|---|---|---|---|---|"]
    rows += [f"| `{p.role}` | {p.why} | {cell(p.publish)}{ANSWERS if p.responds else ''} | {cell(p.subscribe)} "
             f"| {cell(p.deny_publish)} "
             f"| {cell(p.deny_subscribe)} |" for p in TABLE]
    return "\n".join(rows) + "\n"


def matches(pattern: str, subject: str) -> bool:
    """NATS wildcard matching: ``*`` is one token, a final ``>`` one or more."""
    want, got = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(got) > i
        if i >= len(got) or (token != "*" and token != got[i]):
            return False
    return len(got) == len(want)


def may(role: str, action: str, subject: str) -> bool:
    """Whether ``role`` may ``publish`` or ``subscribe`` to ``subject`` (a deny wins over an allow). An answer
    to a request (``responds``) is the server's decision at run time, not the table's."""
    p = of_role(role)
    allow, deny = (p.publish, p.deny_publish) if action == "publish" else (p.subscribe, p.deny_subscribe)
    return any(matches(a, subject) for a in allow) and not any(matches(d, subject) for d in deny)
