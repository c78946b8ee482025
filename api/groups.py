"""Group conversations over HTTP: create, rename, members and roles, leave.

Rules (docs/openapi.yaml says the same):
- At most ``PARLEY_GROUP_MAX_MEMBERS`` (100) members; a create or an add that would pass it is refused
  whole with 409 ``group_full`` (one code, one status) and nothing changes.
- You can add only your friends (mutual friend requests): nobody is put in a group by a stranger, nor by
  someone they blocked (``blocked``: blocking ends the friendship). Members who block each other later
  both stay, and both get the group's messages (docs/adr/0015).
- The owner and admins add and remove members and rename; only the owner makes or unmakes admins,
  and nobody removes the owner. Anyone may leave; an owner who leaves hands the group to the first
  admin (else the first member) in id order.
Every change is announced on the affected users' control subjects, so nodes start or stop
delivering to them at once, and their devices get a ``group`` frame.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from parley.api import validation as v
from parley.api.announce import announce
from parley.api.blocks import refuse_if_blocked
from parley.api.conversations import home_of, member_conversation, new_home
from parley.api.http import NATS, SETTINGS, STORE, authed, body_of, json, now_ms
from parley.api.shapes import conversation_json

from parley import bus, wire
from parley.auth import Claims
from parley.errors import BadRequest, Conflict, Forbidden, NotFound
from parley.ids import ConversationId, UserId, new_group_conversation
from parley.shards import pack
from parley.store import Conversation, Role, Store


def group_name(body: dict[str, Any]) -> str:
    name = v.field(body, "name", max_len=64)
    assert name is not None
    if not name.strip():
        raise BadRequest("name must not be blank", code="bad_field", field="name")
    return name.strip()


def user_ids(body: dict[str, Any], name: str, *, cap: int) -> list[UserId]:
    raw = body.get(name, [])
    if not isinstance(raw, list):
        raise BadRequest(f"{name} must be a list of user ids", code="bad_field", field=name)
    if len(raw) > cap:  # more than any group holds: refused before each id is looked at
        raise too_many(cap, len(raw))
    return [UserId(v.user_id(item, name)) for item in raw]


def too_many(cap: int, adding: int) -> Conflict:
    """``group_full`` before the group is read (the store raises it, with ``members``, once it is)."""
    return Conflict(f"a group has at most {cap} members; {adding} is too many", code="group_full", limit=cap)


async def check_friends(store: Store, me: UserId, others: list[UserId]) -> None:
    for other in others:
        if other != me and await store.friend_state(me, other) != "friends":
            found = await store.get_user(other)
            if found is None or found.deleted:
                raise NotFound(f"no such user {other}", code="unknown_user", user_id=other)
            await refuse_if_blocked(store, me, other, f"add {other}")
            raise Forbidden(f"{other} is not your friend; only friends can be added", code="not_friends",
                            user_id=other)


async def group_of(request: web.Request, claims: Claims) -> Conversation:
    conv = await member_conversation(request, claims)
    if conv.kind != "group":
        raise BadRequest("this conversation is not a group", code="not_group")
    return conv


def require_role(conv: Conversation, user: UserId, *roles: Role) -> None:
    if conv.role_of(user) not in roles:
        raise Forbidden(f"only the group's {' or '.join(roles)} can do this", code="not_admin")


async def reply(request: web.Request, conv_id: str, status: int = 200) -> web.Response:
    store = request.app[STORE]
    conv = await store.get_conversation(conv_id)  # type: ignore[arg-type]
    assert conv is not None
    users = await store.get_users(list(conv.members))
    return json({"conversation": conversation_json(conv, users)}, status=status)


async def tell(request: web.Request, conv: str, users: list[UserId], event: wire.GroupEvent, **extra: Any) -> None:
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in extra.items()}
    await announce(request, users, wire.GroupChange(conv, event, **fields))


# ---- handlers ------------------------------------------------------------------------------------


async def create(request: web.Request) -> web.Response:
    claims = await authed(request)
    body = await body_of(request)
    name, cap = group_name(body), request.app[SETTINGS].group_max_members
    members = list(dict.fromkeys([claims.user, *user_ids(body, "members", cap=cap)]))
    if len(members) > cap:
        raise too_many(cap, len(members))
    store = request.app[STORE]
    await check_friends(store, claims.user, members)
    conv = new_group_conversation()
    shard = new_home(request.app[SETTINGS], conv)
    since = await group_mark(request, conv, shard)  # nothing of the group can come before it
    await store.create_group(Conversation(conv, "group", tuple(sorted(members)), now_ms(), name=name,
                                          roles=((claims.user, "owner"),), shard=shard))
    await tell(request, conv, members, "joined", since=since)
    return await reply(request, conv, status=201)


async def list_groups(request: web.Request) -> web.Response:
    claims = await authed(request)
    store = request.app[STORE]
    groups = [c for c in await store.list_conversations(claims.user) if c.kind == "group"]
    users = await store.get_users(sorted({m for c in groups for m in c.members}))
    return json({"groups": [conversation_json(c, users) for c in groups]})


async def show(request: web.Request) -> web.Response:
    conv = await group_of(request, await authed(request))
    return await reply(request, conv.id)


async def rename(request: web.Request) -> web.Response:
    claims = await authed(request)
    conv = await group_of(request, claims)
    require_role(conv, claims.user, "owner", "admin")
    name = group_name(await body_of(request))
    await request.app[STORE].rename_group(conv.id, name)
    await tell(request, conv.id, list(conv.members), "renamed", name=name)
    return await reply(request, conv.id)


async def add_members(request: web.Request) -> web.Response:
    claims = await authed(request)
    conv = await group_of(request, claims)
    require_role(conv, claims.user, "owner", "admin")
    settings, store = request.app[SETTINGS], request.app[STORE]
    wanted = user_ids(await body_of(request), "user_ids", cap=settings.group_max_members)
    if not wanted:
        raise BadRequest("user_ids: name at least one user", code="bad_field", field="user_ids")
    await check_friends(store, claims.user, wanted)
    # the group's last message before the add: the joiners' nodes re-sync from there, so a message sent
    # while the nodes subscribe is not missed
    since = await group_mark(request, conv.id, home_of(conv, settings.shards))
    added = await store.add_members(conv.id, wanted, cap=settings.group_max_members)
    if added:
        await tell(request, conv.id, added, "joined", since=since)
        await tell(request, conv.id, list(conv.members), "members", added=added)
    return await reply(request, conv.id)


async def remove_member(request: web.Request) -> web.Response:
    claims = await authed(request)
    conv = await group_of(request, claims)
    target = UserId(v.user_id(request.match_info["user_id"]))
    role = conv.role_of(target)
    if role is None:
        raise NotFound("that user is not a member of this group", code="not_member", user_id=target)
    if target != claims.user:
        require_role(conv, claims.user, "owner", "admin")
        if role == "owner" or (role == "admin" and conv.role_of(claims.user) != "owner"):
            raise Forbidden("only the owner removes admins, and nobody removes the owner", code="not_admin")
    await depart(request, conv, target)
    return web.Response(status=204)


async def depart(request: web.Request, conv: Conversation, target: UserId) -> None:
    """``target`` leaves ``conv`` (removed, a leave, a deleted account): announced to everyone, and an owner's
    group handed to the first admin, else the first member; the last member leaving leaves it empty."""
    store = request.app[STORE]
    if not await store.remove_member(conv.id, target):
        return  # removed meanwhile by someone else, who announced it
    rest = [m for m in conv.members if m != target]
    await tell(request, conv.id, [target], "left")
    await tell(request, conv.id, rest, "members", removed=[target])
    if conv.role_of(target) == "owner" and rest:
        heir = (sorted(u for u, r in conv.roles if r == "admin") or sorted(rest))[0]
        await store.set_role(conv.id, heir, "owner")
        await tell(request, conv.id, rest, "roles", user_id=heir, role="owner")


async def set_role(request: web.Request) -> web.Response:
    claims = await authed(request)
    conv = await group_of(request, claims)
    require_role(conv, claims.user, "owner")
    target = UserId(v.user_id(request.match_info["user_id"]))
    role = v.field(await body_of(request), "role", max_len=16)
    if role not in ("admin", "member"):
        raise BadRequest("role must be admin or member", code="bad_field", field="role")
    if conv.role_of(target) is None:
        raise NotFound("that user is not a member of this group", code="not_member", user_id=target)
    if target == claims.user:
        raise BadRequest("the owner's role does not change this way", code="bad_field", field="user_id")
    await request.app[STORE].set_role(conv.id, target, role)  # type: ignore[arg-type]
    await tell(request, conv.id, list(conv.members), "roles", user_id=target, role=role)
    return await reply(request, conv.id)


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_post("/v1/groups", create)
    r.add_get("/v1/groups", list_groups)
    r.add_get("/v1/groups/{conv}", show)
    r.add_patch("/v1/groups/{conv}", rename)
    r.add_post("/v1/groups/{conv}/members", add_members)
    r.add_delete("/v1/groups/{conv}/members/{user_id}", remove_member)
    r.add_put("/v1/groups/{conv}/members/{user_id}/role", set_role)


async def group_mark(request: web.Request, conv: ConversationId, shard: int) -> int:
    """An id at or after the group's last message, in its shard: its last one the stream holds, else the
    shard's newest position. A joiner's devices re-sync from no later than this, so a message sent while
    their nodes subscribe is not missed."""
    nc, settings = request.app[NATS], request.app[SETTINGS]
    last = await bus.last_id_of(nc, settings, shard, conv)
    if last:
        return last
    _, newest = await bus.stream_bounds(nc, settings, shard)
    return pack(shard, newest)
