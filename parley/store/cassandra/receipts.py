"""Cassandra receipts: ``delivered`` is written ``USING TIMESTAMP <delivered>`` and ``read`` ``USING
TIMESTAMP <read>``, so each mark only moves forward with no read before the write; a read mark
raises the delivered mark with it."""

from __future__ import annotations

from parley.ids import ConversationId
from parley.store.cassandra.cql import Bound, Cql
from parley.store.records import Receipt

QUERIES = {
    "receipt_delivered": "UPDATE receipts USING TIMESTAMP ? SET delivered = ? WHERE conv = ? AND user_id = ?",
    "receipt_read": "UPDATE receipts USING TIMESTAMP ? SET read = ? WHERE conv = ? AND user_id = ?",
    "receipts_of": "SELECT conv, user_id, delivered, read FROM receipts WHERE conv = ?",
}


def _marks(r: Receipt) -> list[Bound]:
    delivered = max(r.delivered, r.read)
    out: list[Bound] = []
    if delivered:
        out.append(("receipt_delivered", (delivered, delivered, r.conv, r.user)))
    if r.read:
        out.append(("receipt_read", (r.read, r.read, r.conv, r.user)))
    return out


class CassandraReceipts:
    _cql: Cql

    async def save_receipts(self, receipts: list[Receipt]) -> None:
        with self._cql.in_background():  # a node's marks, kept and retried by it: never ahead of a read
            await self._cql.gather(self._cql.batch(batch) for batch in map(_marks, receipts) if batch)

    async def receipts(self, conv: ConversationId) -> list[Receipt]:
        rows = await self._cql.rows("receipts_of", conv)
        return sorted((Receipt(r.conv, r.user_id, r.delivered or 0, r.read or 0) for r in rows),
                      key=lambda r: r.user)
