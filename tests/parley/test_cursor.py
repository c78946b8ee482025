"""Cursors: sealed, opaque, and refused when they are not this deployment's."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parley.cursor import BadCursor, cursor_key, open_cursor, seal_cursor

KEY = cursor_key("a secret")


@given(st.dictionaries(st.integers(0, 63), st.integers(1, 2**46), max_size=64))
def test_a_sealed_cursor_opens_to_the_same_positions(v):
    assert open_cursor(KEY, seal_cursor(KEY, v)) == v


def test_zero_positions_are_left_out_and_an_empty_cursor_is_valid():
    assert open_cursor(KEY, seal_cursor(KEY, {0: 0, 1: 5})) == {1: 5}
    assert open_cursor(KEY, seal_cursor(KEY, {})) == {}


@pytest.mark.parametrize("token", ["", "42", "c1.", "c1.AAAA", "c1.AAAA.BBBB", "c1.!!.!!", "x" * 2000, "c2.AA.AA"])
def test_garbage_is_refused(token):
    with pytest.raises(BadCursor):
        open_cursor(KEY, token)


def test_another_deployments_or_an_edited_cursor_is_refused():
    token = seal_cursor(KEY, {0: 10, 3: 99})
    with pytest.raises(BadCursor):
        open_cursor(cursor_key("another secret"), token)
    body, tag = token[3:].split(".")
    edited = "c1." + ("B" if body[0] != "B" else "C") + body[1:] + "." + tag
    with pytest.raises(BadCursor):
        open_cursor(KEY, edited)
