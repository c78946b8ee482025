"""The board's key layout (parley/live/board.py): ids that are not KV tokens survive the round trip, and the
mirror follows puts and deletes."""

import orjson
import pytest

from parley.live.board import Board, slow_key, standing_key, token, untoken
from parley.live.standing import Escalation, Standing


@pytest.mark.parametrize("ident", ["abc", "live.room.1", "a b", "한국어", "=x", "x" * 100])
def test_tokens_round_trip_and_are_single_kv_tokens(ident):
    tok = token(ident)
    assert untoken(tok) == ident and "." not in tok and " " not in tok


def test_the_mirror_follows_the_bucket():
    board = Board(None, None, Escalation())  # type: ignore[arg-type]  # apply() needs neither
    board.apply(standing_key("live.1", "u1"), orjson.dumps(Standing(banned=True).to_json()))
    board.apply(slow_key("live.1"), orjson.dumps({"s": 30}))
    assert board.standing("live.1", "u1").banned and board.slow_mode("live.1") == 30
    board.apply(standing_key("live.1", "u1"), None)
    board.apply(slow_key("live.1"), None)
    assert not board.standing("live.1", "u1").banned and board.slow_mode("live.1") == 0


def test_a_reload_forgets_what_the_bucket_no_longer_holds():
    board = Board(None, None, Escalation())  # type: ignore[arg-type]
    for user in ("kept", "lifted"):
        board.apply(standing_key("r", user), orjson.dumps(Standing(banned=True).to_json()))
    board.apply(slow_key("r"), orjson.dumps({"s": 5}))
    board._forget_all_but({standing_key("r", "kept")})  # what a fresh watch delivered before its end marker
    assert board.standing("r", "kept").banned and not board.standing("r", "lifted").banned
    assert board.slow_mode("r") == 0
