import pytest

from parley.auth import Passwords, issue_token, verify_token
from parley.errors import Unauthorized
from parley.ids import new_device_id, new_session_id, new_user_id

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
