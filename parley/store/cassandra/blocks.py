"""Cassandra blocks: facts "a has blocked b" (``block_out``, and ``block_in`` the reverse index). A block
ends the pair's friendship in the same logged batch (friends.py's deletes on its tables), so no reader
sees both a block and a friendship once it is written."""

from __future__ import annotations

import time

from parley.ids import UserId
from parley.store.cassandra.cql import Cql

QUERIES = {
    "block_add": "INSERT INTO block_out (user_id, other, created_at) VALUES (?,?,?)",
    "block_in_add": "INSERT INTO block_in (user_id, other) VALUES (?,?)",
    "block_del": "DELETE FROM block_out WHERE user_id = ? AND other = ?",
    "block_in_del": "DELETE FROM block_in WHERE user_id = ? AND other = ?",
    "block_has": "SELECT other FROM block_out WHERE user_id = ? AND other = ?",
    "block_list": "SELECT other FROM block_out WHERE user_id = ?",
    "block_in_list": "SELECT other FROM block_in WHERE user_id = ?",
}


class CassandraBlocks:
    _cql: Cql

    async def block(self, a: UserId, b: UserId) -> bool:
        new = await self._cql.one("block_has", a, b) is None
        await self._cql.batch([("out_del", (a, b)), ("in_del", (b, a)), ("out_del", (b, a)), ("in_del", (a, b)),
                               ("block_add", (a, b, int(time.time() * 1000))), ("block_in_add", (b, a))],
                              logged=True)
        return new

    async def unblock(self, a: UserId, b: UserId) -> bool:
        existed = await self._cql.one("block_has", a, b) is not None
        await self._cql.batch([("block_del", (a, b)), ("block_in_del", (b, a))], logged=True)
        return existed

    async def blocked_by(self, user: UserId) -> list[UserId]:
        return sorted(r.other for r in await self._cql.rows("block_list", user))

    async def blocks_with(self, user: UserId) -> set[UserId]:
        outs, ins = await self._cql.gather([self._cql.rows("block_list", user), self._cql.rows("block_in_list", user)])
        return {r.other for r in outs} | {r.other for r in ins}
