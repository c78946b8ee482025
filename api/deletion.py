"""Deleting one's account over HTTP: ``DELETE /v1/account`` with the password (docs/adr/0015).

In order, so a failure part-way (a 503) leaves a session that can call again and finish it (every step is
idempotent): the password is checked (a wrong one counts as a failed login of the account), the
account leaves its groups (each leave announced; a group it owned passes to the first admin, else the first
member; one it was alone in is left empty), its friendships end (announced, so the friends' nodes stop its
presence and refuse DM sends), then the store erases the account in one step (``Store.delete_account``:
profile, password hash, devices, push tokens and preferences, friendships, blocks; every session revoked),
and last the revocations are announced so every live connection closes (4003).

Kept: the user id, as a placeholder (``deleted: true``, no username, no profile) that the messages it sent
stay attributed to, in DMs and groups alike; and the username, reserved for good so nobody can take the
name and pass for the person.
"""

from __future__ import annotations

from aiohttp import web
from parley.api import validation as v
from parley.api.announce import announce_friendship
from parley.api.groups import depart
from parley.api.http import BUDGET, HASHING, LIMITS, STORE, authed, body_of, now_ms
from parley.api.revocations import REVOCATIONS

from parley.auth import Claims
from parley.errors import Forbidden, NotFound
from parley.ids import ConversationId


async def delete_account(request: web.Request) -> web.Response:
    claims = await authed(request)
    await _check_password(request, claims, v.field(await body_of(request), "password", max_len=256) or "")
    store = request.app[STORE]
    for conv_id in await store.groups_of(claims.user):
        conv = await store.get_conversation(ConversationId(conv_id))
        if conv is not None and claims.user in conv.members:
            await depart(request, conv, claims.user)
    relations = await store.list_friends(claims.user)
    for other, state in relations:
        if state == "friends":
            await store.remove_friend(claims.user, other)
        await announce_friendship(request, claims.user, other, False)  # a request to or from them goes too
    sessions = [s.id for s in await store.sessions_of(claims.user)]
    await store.delete_account(claims.user, now=now_ms())
    await request.app[REVOCATIONS].announce(claims.user, sessions)  # retried until NATS takes it
    return web.Response(status=204)


async def _check_password(request: web.Request, claims: Claims, password: str) -> None:
    """403 ``wrong_password`` unless ``password`` is the account's (a wrong one is a failed login). An account
    already erased whose session still lives (a deletion the store cut short after its first write, which
    drops the password) needs none: the call only finishes what its owner asked for."""
    store = request.app[STORE]
    user = await store.get_user(claims.user)
    if user is not None and user.deleted:
        return
    found = await store.user_by_name(user.username) if user is not None else None
    if found is None or found[0].id != claims.user:
        raise NotFound("no such user", code="unknown_user")
    limits = request.app[LIMITS]
    attempt = [(limits.login_account, found[0].username), (limits.auth_address, request.app[BUDGET].address(request))]
    await limits.check(attempt)
    if not await request.app[HASHING].verify(found[1], password):
        await limits.count(attempt)
        raise Forbidden("password is not this account's password", code="wrong_password", field="password")


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_delete("/v1/account", delete_account)
