import time

import jwt
import pytest

from parley.auth import Passwords, _our_payload, issue_token, live_session, token_ttl, verify_token
from parley.errors import CLOSE_REVOKED, Unauthorized
from parley.ids import new_device_id, new_session_id, new_user_id
from parley.store import Session

SECRET = "s" * 32


def token(now=1000, ttl=60, secret=SECRET):
    return issue_token(secret, user=new_user_id(), device=new_device_id(), session=new_session_id(), now=now, ttl_s=ttl)


def test_password_hash_verifies_only_the_right_password():
    passwords = Passwords()
    h = passwords.hash("correct horse")
    assert h.startswith("$argon2id$")
    assert passwords.verify(h, "correct horse")
    assert not passwords.verify(h, "wrong horse")
    assert not passwords.verify(None, "correct horse")
    assert not passwords.verify("garbage", "correct horse")


def test_a_hash_made_with_other_parameters_needs_rehashing():
    cheap, dearer = Passwords(time_cost=1, memory_kib=8192), Passwords(time_cost=2, memory_kib=8192)
    old = cheap.hash("correct horse")
    assert dearer.needs_rehash(old) and not cheap.needs_rehash(old)
    assert dearer.verify(old, "correct horse")  # an old hash still logs in; the login then replaces it
    assert not dearer.needs_rehash(dearer.hash("correct horse"))
    assert not dearer.needs_rehash("garbage")


def test_token_round_trip_and_expiry():
    tok, expires = token(now=1000, ttl=60)
    assert expires == 1060
    claims = verify_token(SECRET, tok, now=1059)
    assert claims.expires_at == 1060
    with pytest.raises(Unauthorized) as info:
        verify_token(SECRET, tok, now=1060)
    assert info.value.code == "token_expired"


@pytest.mark.parametrize("bad", ["", "abc", "a.b.c", token(secret="x" * 32)[0]])
def test_bad_tokens_are_refused(bad):
    with pytest.raises(Unauthorized) as info:
        verify_token(SECRET, bad, now=1000)
    assert info.value.code == "bad_token"


def test_our_tokens_are_checked_without_pyjwt_and_agree_with_it():
    tok, _ = token(now=1000)
    fast = _our_payload(SECRET, tok)
    assert fast == jwt.decode(tok, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    head, body, sig = tok.split(".")
    assert _our_payload("x" * 32, tok) is None  # another cluster's secret
    assert _our_payload(SECRET, f"{head}.{body}.{sig[:-2]}AA") is None  # a signature tampered with
    assert _our_payload(SECRET, f"{head}.{body[:-2]}AA.{sig}") is None  # claims tampered with


def sign(payload, header=None):
    return jwt.encode(payload, SECRET, algorithm="HS256", headers=header)


CLAIMS = {"sub": new_user_id(), "dev": new_device_id(), "sid": new_session_id(), "exp": 2000}


@pytest.mark.parametrize("odd", [
    sign({**CLAIMS, "aud": "someone"}),  # a claim we never issue: PyJWT refuses it (no audience expected)
    sign({**CLAIMS, "iat": int(time.time()) + 3600}),  # issued in the future
    sign({**CLAIMS, "iat": "yesterday"}),
    sign({**CLAIMS, "sub": 5}),
    sign(CLAIMS, header={"kid": "k1"}),  # another header: PyJWT decides, as before
])
def test_any_other_shape_is_left_to_pyjwt(odd):
    assert _our_payload(SECRET, odd) is None
    try:
        jwt.decode(odd, SECRET, algorithms=["HS256"], options={"verify_exp": False,
                                                               "require": ["sub", "dev", "sid", "exp"]})
    except jwt.PyJWTError:
        with pytest.raises(Unauthorized):
            verify_token(SECRET, odd, now=1000)
    else:
        assert verify_token(SECRET, odd, now=1000).expires_at == 2000


def session(expires_at=2000, revoked=False):
    return Session(new_session_id(), new_user_id(), new_device_id(), 1, expires_at, revoked)


@pytest.mark.parametrize(("found", "now", "code"), [
    (None, 1000, "session_revoked"),  # no such session: a token of it is refused like a logged-out one
    (session(revoked=True), 1000, "session_revoked"),
    (session(expires_at=2000), 2000, "session_expired"),  # its end is the first second it no longer counts
    (session(expires_at=2000), 5000, "session_expired"),
    (session(expires_at=2000, revoked=True), 5000, "session_revoked"),
])
def test_a_session_ends_when_logged_out_or_past_its_lifetime(found, now, code):
    with pytest.raises(Unauthorized) as info:
        live_session(found, now=now)
    assert info.value.code == code and info.value.ws_close_code == CLOSE_REVOKED and info.value.http_status == 401


def test_a_live_session_is_returned():
    live = session(expires_at=2000)
    assert live_session(live, now=1999) is live


@pytest.mark.parametrize(("expires_at", "now", "ttl", "expected"), [
    (100_000, 1000, 60, 60),  # far from its end: the full ttl
    (1030, 1000, 60, 30),  # near its end: cut at the end
    (1000, 1000, 60, 0),  # at its end: nothing (and live_session refuses it before anyone asks)
    (900, 1000, 60, 0),
])
def test_no_token_outlives_its_session(expires_at, now, ttl, expected):
    assert token_ttl(session(expires_at=expires_at), now=now, ttl_s=ttl) == expected
