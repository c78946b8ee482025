"""The node's cursors: a token it sealed opens from memory at the ack, to exactly what ``open_cursor`` gives; any
other token is checked as before; both maps stay bounded."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from parley.node import cursors as cursors_module
from parley.node.cursors import Cursors

from parley.cursor import BadCursor, cursor_key, open_cursor, seal_cursor

KEY = cursor_key("a secret")
vectors = st.dictionaries(st.integers(0, 63), st.integers(0, 2**46), max_size=16)


@given(vectors)
def test_a_token_sealed_here_opens_to_what_open_cursor_gives(v):
    cursors = Cursors(KEY)
    token = cursors.seal(v)
    assert token == seal_cursor(KEY, v)
    assert cursors.open(token) == open_cursor(KEY, token)


def test_a_token_sealed_here_is_opened_without_checking_it_again(monkeypatch):
    cursors = Cursors(KEY)
    token = cursors.seal({2: 7, 0: 0, 1: 5})

    def no_check(key: bytes, token: str) -> dict[int, int]:
        raise AssertionError("checked again")
    monkeypatch.setattr(cursors_module, "open_cursor", no_check)
    assert cursors.open(token) == {1: 5, 2: 7}


def test_a_token_sealed_elsewhere_is_checked_once_then_kept(monkeypatch):
    token = seal_cursor(KEY, {0: 10, 3: 99})  # another node of the deployment, or before a restart
    cursors = Cursors(KEY)
    assert cursors.open(token) == {0: 10, 3: 99}
    monkeypatch.setattr(cursors_module, "open_cursor", lambda key, token: {})
    assert cursors.open(token) == {0: 10, 3: 99}


def test_another_deployments_token_is_refused_and_not_kept():
    cursors = Cursors(KEY)
    token = seal_cursor(cursor_key("another secret"), {0: 10})
    for _ in range(2):
        with pytest.raises(BadCursor):
            cursors.open(token)


def test_what_open_gives_is_a_copy():
    cursors = Cursors(KEY)
    token = cursors.seal({0: 10})
    cursors.open(token)[0] = 99
    assert cursors.open(token) == {0: 10}


def test_the_maps_are_bounded_and_a_forgotten_token_still_opens():
    cursors = Cursors(KEY, kept_max=8)
    tokens = [cursors.seal({0: n}) for n in range(1, 30)]
    assert len(cursors._sealed) <= 8 and len(cursors._opened) <= 8
    assert [cursors.open(t) for t in tokens] == [{0: n} for n in range(1, 30)]
    assert len(cursors._opened) <= 8
