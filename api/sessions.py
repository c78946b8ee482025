"""A user's sessions over HTTP: change the password, sign out every other device.

Invariants: both end every other live session of the account — revoked in the store, then announced so
nodes close their live connections (``revocations``) — and keep the caller's: the device that did it
stays signed in. The revoked devices' push tokens go too (no pushes to a signed-out phone), except the
caller's device's, when an older session of it was among them. A password change stores the new hash
before it lists the sessions, so a session made after the change is one the new password made.
"""

from __future__ import annotations

from aiohttp import web
from parley.api import validation as v
from parley.api.http import BUDGET, HASHING, LIMITS, STORE, authed, body_of, json
from parley.api.revocations import revoke

from parley.auth import Claims
from parley.errors import Forbidden, NotFound


async def change_password(request: web.Request) -> web.Response:
    claims = await authed(request)
    body = await body_of(request)
    current = v.field(body, "current_password", max_len=256) or ""  # required: never None here
    new = v.password(body, "new_password")
    store, passwords = request.app[STORE], request.app[HASHING]
    user = await store.get_user(claims.user)
    found = await store.user_by_name(user.username) if user is not None else None
    if found is None or found[0].id != claims.user:
        raise NotFound("no such user", code="unknown_user")
    limits = request.app[LIMITS]  # a wrong current password is a failed login of the account
    attempt = [(limits.login_account, found[0].username), (limits.auth_address, request.app[BUDGET].address(request))]
    await limits.check(attempt)
    if not await passwords.verify(found[1], current):
        await limits.count(attempt)
        raise Forbidden("current_password is not this account's password", code="wrong_password",
                        field="current_password")
    await store.set_password_hash(found[0], await passwords.hash(new))
    return json({"revoked": await _end_other_sessions(request, claims)})


async def revoke_others(request: web.Request) -> web.Response:
    claims = await authed(request)
    return json({"revoked": await _end_other_sessions(request, claims)})


async def _end_other_sessions(request: web.Request, claims: Claims) -> int:
    store = request.app[STORE]
    others = [s for s in await store.sessions_of(claims.user) if s.id != claims.session]
    await revoke(request, claims.user, [s.id for s in others])
    for device in {s.device for s in others} - {claims.device}:
        await store.delete_push_token(claims.user, device)
    return len(others)


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_post("/v1/password", change_password)
    r.add_post("/v1/sessions/revoke-others", revoke_others)
