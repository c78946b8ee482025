"""Passwords (Argon2id via argon2-cffi) and access tokens (HS256 JWTs via PyJWT).

A token names the user, the device and the login session; it expires after ``token_ttl_s``, and never
after its session does (``session_lifetime_s`` from the login: ``token_ttl`` caps a refresh there).
Revocation is by session: logout, a password change or "sign out other devices" marks sessions revoked
in the store; nodes check the session when a device connects (``live_session``) and close live
connections of a revoked session at once.
Expiry is checked against a ``now`` the caller passes, so the rules are testable without a clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jwt
import orjson
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


# the header every token of ours carries, and the claims they have: such a token is checked here, in a
# few microseconds (each connect checks one); any other shape goes through PyJWT, which decides as before
_OUR_HEADER = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"  # {"alg":"HS256","typ":"JWT"}
_OUR_CLAIMS = frozenset({"sub", "dev", "sid", "iat", "exp", "jti"})
_REQUIRED = frozenset({"sub", "dev", "sid", "exp"})


@lru_cache(maxsize=4)
def _signer(secret: str) -> Any:
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _our_payload(secret: str, token: str) -> dict[str, Any] | None:
    """The payload of a token of our own shape whose signature holds and that PyJWT would accept too (the
    same claims, ``iat`` an integer not in the future); None when it is not that (PyJWT judges it)."""
    head, _, rest = token.partition(".")
    body, _, sig = rest.partition(".")
    if head != _OUR_HEADER or not body or not sig or "." in sig:
        return None
    mac = _signer(secret).copy()
    mac.update(f"{head}.{body}".encode())
    try:
        if not hmac.compare_digest(mac.digest(), _b64(sig)):
            return None
        payload = orjson.loads(_b64(body))
    except (ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(payload, dict) or not _OUR_CLAIMS.issuperset(payload) or not _REQUIRED <= payload.keys():
        return None
    iat, jti = payload.get("iat", 0), payload.get("jti", "")
    if type(iat) is not int or iat > time.time() or not isinstance(payload["sub"], str) or not isinstance(jti, str):
        return None
    return payload


def verify_token(secret: str, token: str, *, now: int) -> Claims:
    payload = _our_payload(secret, token)
    if payload is None:
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
