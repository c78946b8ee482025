"""Cassandra push facts: ``push_tokens`` (one per device), ``push_token_owner`` (who holds a token
now: a token registered on another account's device stops being this one's) and ``push_prefs``
(muted conversations are a set column, changed by adding and removing, never rewritten)."""

from __future__ import annotations

from cassandra.query import UNSET_VALUE

from parley.ids import ConversationId, DeviceId, UserId
from parley.store.cassandra.cql import Cql
from parley.store.records import PushPrefs, PushToken

QUERIES = {
    "push_put": "INSERT INTO push_tokens (user_id, device, platform, reg_token, updated_at) VALUES (?,?,?,?,?)",
    "push_del": "DELETE FROM push_tokens WHERE user_id = ? AND device = ? IF EXISTS",
    "push_del_if": "DELETE FROM push_tokens WHERE user_id = ? AND device = ? IF reg_token = ?",
    "push_of": "SELECT user_id, device, platform, reg_token, updated_at FROM push_tokens WHERE user_id = ?",
    "push_get": "SELECT reg_token FROM push_tokens WHERE user_id = ? AND device = ?",
    "owner_get": "SELECT user_id, device FROM push_token_owner WHERE reg_token = ?",
    "owner_put": "INSERT INTO push_token_owner (reg_token, user_id, device) VALUES (?,?,?)",
    "owner_del": "DELETE FROM push_token_owner WHERE reg_token = ? IF user_id = ? AND device = ?",
    "prefs_get": "SELECT muted, hide_text, muted_convs FROM push_prefs WHERE user_id = ?",
    "prefs_set": "UPDATE push_prefs SET muted = ?, hide_text = ? WHERE user_id = ?",
    "prefs_mute": "UPDATE push_prefs SET muted_convs = muted_convs + ? WHERE user_id = ?",
    "prefs_unmute": "UPDATE push_prefs SET muted_convs = muted_convs - ? WHERE user_id = ?",
}


class CassandraPush:
    _cql: Cql

    async def put_push_token(self, token: PushToken) -> None:
        owner = await self._cql.one("owner_get", token.token)
        if owner is not None and (owner.user_id, owner.device) != (token.user, token.device):
            await self._cql.applied("push_del_if", owner.user_id, owner.device, token.token)  # not theirs any more
        await self._cql.write("owner_put", token.token, token.user, token.device)
        await self._cql.write("push_put", token.user, token.device, token.platform, token.token, token.updated_at)

    async def delete_push_token(self, user: UserId, device: DeviceId, *, only: str | None = None) -> bool:
        current = await self._cql.one("push_get", user, device)
        applied, _ = (await self._cql.applied("push_del", user, device) if only is None
                      else await self._cql.applied("push_del_if", user, device, only))
        if applied and current is not None:
            await self._cql.applied("owner_del", current.reg_token, user, device)
        return applied

    async def push_tokens(self, users: list[UserId]) -> list[PushToken]:
        found = await self._cql.gather(self._cql.rows("push_of", u) for u in dict.fromkeys(users))
        return sorted((PushToken(r.user_id, r.device, r.platform, r.reg_token, r.updated_at) for rows in found
                       for r in rows), key=lambda t: (t.user, t.device))

    async def push_prefs(self, user: UserId) -> PushPrefs:
        row = await self._cql.one("prefs_get", user)
        if row is None:
            return PushPrefs()
        return PushPrefs(bool(row.muted), bool(row.hide_text), tuple(sorted(row.muted_convs or ())))

    async def set_push_prefs(self, user: UserId, *, muted: bool | None, hide_text: bool | None) -> PushPrefs:
        await self._cql.write("prefs_set", UNSET_VALUE if muted is None else muted,
                              UNSET_VALUE if hide_text is None else hide_text, user)
        return await self.push_prefs(user)

    async def mute_conversation(self, user: UserId, conv: ConversationId, muted: bool) -> None:
        await self._cql.write("prefs_mute" if muted else "prefs_unmute", {conv}, user)
