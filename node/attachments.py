"""A send's attachments (ADR 0024): each id must name an upload of the sender to the send's conversation
that no other message claimed; the send then claims them (its dedup id, so a resend passes) and carries
their references, which every member gets in the ``msg`` frame and in history without another read.

Every id is checked before any is claimed, so a refused send leaves no claim behind; a send refused after
its claims (a publish that failed) is resent with the same ``cid`` and finds them its own.
"""

from __future__ import annotations

from parley.attachments.catalog import Catalog
from parley.attachments.records import AttachmentMeta, claimed, refusal
from parley.attachments.sweep import release
from parley.errors import Conflict
from parley.store import AttachmentRef

CLAIM_TRIES = 3  # a claim raced by another send of the same upload: read it again


class AttachmentClaims:
    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    async def claim(self, ids: tuple[str, ...], *, conv: str, sender: str, claim: str) -> tuple[AttachmentRef, ...]:
        """The references of ``ids``, claimed for the message ``claim``; the documented refusal otherwise."""
        found = [await self._checked(id, conv=conv, sender=sender, claim=claim) for id in ids]
        return tuple([(await self._claimed(meta, rev, conv=conv, sender=sender, claim=claim)).ref()
                      for meta, rev in found])

    async def _checked(self, id: str, *, conv: str, sender: str, claim: str) -> tuple[AttachmentMeta, int]:
        found = await self._catalog.get(id)
        err = refusal(found[0] if found else None, conv=conv, sender=sender, claim=claim)
        if err is not None:
            raise err
        assert found is not None
        return found

    async def _claimed(self, meta: AttachmentMeta, revision: int, *, conv: str, sender: str,
                       claim: str) -> AttachmentMeta:
        for _ in range(CLAIM_TRIES):
            if meta.claim == claim:
                return meta
            try:
                await self._catalog.replace(claimed(meta, claim), revision)
                return meta
            except Conflict:
                meta, revision = await self._checked(meta.id, conv=conv, sender=sender, claim=claim)
        raise Conflict("that attachment is being claimed by another message", code="attachment_in_use",
                       attachment=meta.id)

    async def release(self, ids: tuple[str, ...], now_ms: int) -> None:
        """The message carrying ``ids`` was deleted (and the delete stored): the sweep deletes them once
        ``PARLEY_ATTACHMENT_GRACE_S`` has passed (``parley.attachments.sweep.release``)."""
        await release(self._catalog, ids, now_ms)
