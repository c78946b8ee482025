"""The store contract, folds side by side: the archiver writes several batches at once, so ``apply_actions``
calls overlap; none may lose what another folded into the same target (ADR 0025)."""

from __future__ import annotations

import asyncio
import dataclasses

from parley.ids import dm_conversation, new_user_id
from parley.store import Conversation
from tests.contract.test_store import P, contract_keyspace, message, store  # noqa: F401 — the fixtures

TARGETS = 12


async def test_a_reply_and_a_delete_folded_side_by_side_leave_no_quote(store):  # noqa: F811
    a, b = new_user_id(), new_user_id()
    conv = dm_conversation(a, b)
    await store.open_conversation(Conversation(conv, "dm", tuple(sorted((a, b))), 1))
    targets = [message(i, conv, 0, a) for i in range(1, TARGETS + 1)]
    replies = [dataclasses.replace(message(100 + i, conv, 0, b), reply_to=P(i), quote_from=a, quote=f"body {i}",
                                   target_ts=1000 + i) for i in range(1, TARGETS + 1)]
    deletes = [dataclasses.replace(message(200 + i, conv, 0, a), kind="delete", target=P(i), body="",
                                   target_ts=1000 + i) for i in range(1, TARGETS + 1)]
    await store.put_messages(targets + replies + deletes)
    for reply, delete in zip(replies, deletes, strict=True):  # two batches' folds, as two writes at once
        assert await asyncio.gather(store.apply_actions([reply]), store.apply_actions([delete])) == [[], []]
    rows = {m.id: m for m in await store.history(conv, before=None, after=None, limit=100, newest_first=False)}
    assert [rows[P(i)].state.deleted for i in range(1, TARGETS + 1)] == [True] * TARGETS
    assert [rows[r.id].quote for r in replies] == [""] * TARGETS
