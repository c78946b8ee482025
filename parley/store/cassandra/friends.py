"""Cassandra friendships: facts "a has added b" (``friend_out``, and ``friend_in`` the reverse
index), never a read-modify-write to tangle under concurrency; a friendship is both directions."""

from __future__ import annotations

from parley.ids import UserId
from parley.store.cassandra.cql import Cql
from parley.store.records import FriendState

QUERIES = {
    "out_add": "INSERT INTO friend_out (user_id, other) VALUES (?,?)",
    "in_add": "INSERT INTO friend_in (user_id, other) VALUES (?,?)",
    "out_del": "DELETE FROM friend_out WHERE user_id = ? AND other = ?",
    "in_del": "DELETE FROM friend_in WHERE user_id = ? AND other = ?",
    "out_has": "SELECT other FROM friend_out WHERE user_id = ? AND other = ?",
    "out_list": "SELECT other FROM friend_out WHERE user_id = ?",
    "in_list": "SELECT other FROM friend_in WHERE user_id = ?",
}


class CassandraFriends:
    _cql: Cql

    async def friend_state(self, a: UserId, b: UserId) -> FriendState:
        out, back = await self._cql.gather([self._cql.one("out_has", a, b), self._cql.one("out_has", b, a)])
        if out and back:
            return "friends"
        return "outgoing" if out else "incoming" if back else "none"

    async def add_friend(self, a: UserId, b: UserId) -> FriendState:
        current = await self.friend_state(a, b)
        if current in ("friends", "outgoing"):
            return current
        await self._cql.batch([("out_add", (a, b)), ("in_add", (b, a))], logged=True)
        return "friends" if current == "incoming" else "outgoing"

    async def remove_friend(self, a: UserId, b: UserId) -> None:
        await self._cql.batch([("out_del", (a, b)), ("in_del", (b, a)), ("out_del", (b, a)), ("in_del", (a, b))],
                              logged=True)

    async def list_friends(self, user: UserId) -> list[tuple[UserId, FriendState]]:
        outs, ins = await self._cql.gather([self._cql.rows("out_list", user), self._cql.rows("in_list", user)])
        out_set, in_set = {r.other for r in outs}, {r.other for r in ins}
        states: dict[str, FriendState] = {
            other: "friends" if other in out_set and other in in_set else "outgoing" if other in out_set
            else "incoming" for other in out_set | in_set}
        return sorted(states.items())  # type: ignore[arg-type]
