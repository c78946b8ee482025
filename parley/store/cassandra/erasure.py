"""Cassandra account deletion: the ``users`` row emptied and marked (a placeholder; its username claim
stays, without a hash, so the name is never claimed again), then every session revoked, then the rest
removed row by row. Each step is idempotent, so a deletion cut short is finished by running it again;
the first step already stops every login.

It writes other modules' tables through their statements (sessions, devices, push, friends, blocks):
erasure is the one place that removes a user from all of them."""

from __future__ import annotations

from parley.ids import UserId
from parley.store.cassandra.cql import Cql

QUERIES = {
    "user_erase": "UPDATE users SET display_name = '', bio = '', deleted_at = ? WHERE id = ?",
    "user_name": "SELECT username FROM users WHERE id = ?",
    "device_erase": "DELETE FROM devices WHERE id = ?",
    "cursor_erase": "DELETE FROM device_cursors WHERE device = ?",
    "devices_of_user_erase": "DELETE FROM devices_by_user WHERE user_id = ?",
    "push_tokens_erase": "DELETE FROM push_tokens WHERE user_id = ?",
    "prefs_erase": "DELETE FROM push_prefs WHERE user_id = ?",
}


class CassandraErasure:
    _cql: Cql

    async def delete_account(self, user: UserId, *, now: int) -> None:
        cql = self._cql
        row = await cql.one("user_name", user)
        if row is None:
            return
        await cql.write("user_erase", now, user)
        await cql.applied("name_rehash", "", row.username, user)  # the claim stays: the name stays taken
        await cql.gather(cql.write("session_revoke", r.id) for r in await cql.rows("sessions_of_user", user))
        devices = [r.id for r in await cql.rows("devices_of_user", user)]
        await cql.gather([*(cql.write("device_erase", d) for d in devices),
                          *(cql.write("cursor_erase", d) for d in devices)])
        await cql.write("devices_of_user_erase", user)
        tokens = await cql.rows("push_of", user)
        await cql.gather(cql.applied("owner_del", t.reg_token, user, t.device) for t in tokens)
        await cql.gather([cql.write("push_tokens_erase", user), cql.write("prefs_erase", user)])
        await self._erase_pairs(user)

    async def _erase_pairs(self, user: UserId) -> None:
        """Friendships, requests and blocks, both directions."""
        cql = self._cql
        outs, ins, blocked, blockers = await cql.gather(
            [cql.rows("out_list", user), cql.rows("in_list", user), cql.rows("block_list", user),
             cql.rows("block_in_list", user)])
        others = {r.other for r in outs} | {r.other for r in ins}
        await cql.gather(cql.batch([("out_del", (user, o)), ("in_del", (o, user)), ("out_del", (o, user)),
                                    ("in_del", (user, o))], logged=True) for o in others)
        await cql.gather([*(cql.batch([("block_del", (user, r.other)), ("block_in_del", (r.other, user))],
                                      logged=True) for r in blocked),
                          *(cql.batch([("block_del", (r.other, user)), ("block_in_del", (user, r.other))],
                                      logged=True) for r in blockers)])
