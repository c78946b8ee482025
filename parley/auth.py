"""Passwords (Argon2id via argon2-cffi) and access tokens (HS256 JWTs via PyJWT).

A token names the user, the device and the login session; it expires after ``token_ttl_s``, and never
after its session does (``session_lifetime_s`` from the login: ``token_ttl`` caps a refresh there).
Revocation is by session: logout, a password change or "sign out other devices" marks sessions revoked
in the store; nodes check the session when a device connects (``live_session``) and close live
connections of a revoked session at once.
Expiry is checked against a ``now`` the caller passes, so the rules are testable without a clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from parley.errors import Unauthorized
from parley.ids import DeviceId, SessionId, UserId, is_valid_id, new_id
from parley.store.records import Session

_ALGORITHM = "HS256"


class Passwords:
    """Argon2id at a configured cost (defaults: argon2-cffi's, RFC 9106's low-memory profile).

    A stored hash carries its own parameters, so changing the cost affects new hashes at once and old
    ones as their users log in (``needs_rehash``: the login stores a new hash of the password). Verifying
    a password for an unknown user still costs one hash at the current cost, so timing does not
    reveal which usernames exist.
    """

    def __init__(self, time_cost: int = 3, memory_kib: int = 65536) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
        self._dummy = self._hasher.hash("parley-dummy-password")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether ``stored_hash`` was made with other parameters than this hasher's."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return False

    def verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash or self._dummy, password) and stored_hash is not None
        except (VerificationError, InvalidHashError):
            return False


@dataclass(frozen=True, slots=True)
class Claims:
    user: UserId
    device: DeviceId
    session: SessionId
    expires_at: int


def issue_token(
    secret: str, *, user: UserId, device: DeviceId, session: SessionId, now: int, ttl_s: int
) -> tuple[str, int]:
    expires = now + ttl_s
    payload = {"sub": user, "dev": device, "sid": session, "iat": now, "exp": expires, "jti": new_id()}
    return jwt.encode(payload, secret, algorithm=_ALGORITHM), expires


def verify_token(secret: str, token: str, *, now: int) -> Claims:
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            options={"verify_exp": False, "require": ["sub", "dev", "sid", "exp"]},
        )
    except jwt.PyJWTError:
        raise Unauthorized("token is malformed or not signed by this cluster", code="bad_token") from None
    user, device, session, exp = payload["sub"], payload["dev"], payload["sid"], payload["exp"]
    if not all(is_valid_id(v) for v in (user, device, session)) or not isinstance(exp, int):
        raise Unauthorized("token claims are malformed", code="bad_token")
    if exp <= now:
        raise Unauthorized("token has expired; log in again", code="token_expired")
    return Claims(UserId(user), DeviceId(device), SessionId(session), exp)


def live_session(session: Session | None, *, now: int) -> Session:
    """The session, if a token of it still counts: not logged out, not past its absolute lifetime."""
    if session is None or session.revoked:
        raise Unauthorized("this session was logged out", code="session_revoked")
    if session.expires_at <= now:
        raise Unauthorized("this session has passed its lifetime; log in again", code="session_expired")
    return session


def token_ttl(session: Session, *, now: int, ttl_s: int) -> int:
    """How long a token issued ``now`` lives: ``ttl_s``, cut short where its session ends."""
    return max(0, min(ttl_s, session.expires_at - now))
