"""Which online users' ``presence`` bucket entries to rewrite now. Pure: no I/O, the caller passes ``now``.

An online user's entry (``$KV.presence.<user>``) expires ``presence_ttl_s`` after its last write, so the
worker rewrites each once per ``period_ms`` (a third of that TTL, ``buckets.presence_refresh_s``: 200 s by
default), spread evenly: each ``take`` hands out the share of the users that the time since the last one is
worth (``count × elapsed / period``), oldest write first. nats-server sees a trickle (50 stores a second for
10,000 users) instead of every user at once (docs/adr/0046).

Invariants: the users are kept in the order of their entries' last writes (an ``OrderedDict``: a write moves a
user to the end), so the oldest is always first and ``take`` stops at the first user it need not take. Every
user is rewritten at most ``period_ms`` (and a tick) after its last write: the share does it while the count
holds steady, and a user whose write is a period old is taken whatever the share, so churn that shrinks the
count cannot starve anyone. A user read back at a takeover (``restored``) has an entry of unknown age (up to a
period plus the lease, if the worker before us refreshed it as we do), so it goes to the front, due no later
than the oldest already here; a write that failed (``unwritten``) is due at once.
"""

from __future__ import annotations

from collections import OrderedDict


class Refreshes:
    def __init__(self, period_ms: int) -> None:
        self.period_ms = period_ms
        self._written: OrderedDict[str, int] = OrderedDict()  # user → its entry's last write (ms), oldest first
        self._credit = 0.0  # the share earned and not yet taken (below one user)
        self._last: int | None = None  # the previous take

    def __len__(self) -> int:
        return len(self._written)

    def written(self, user: str, now_ms: int) -> None:
        """``user``'s entry was written now (an online transition's put)."""
        self._written[user] = now_ms
        self._written.move_to_end(user)

    def restored(self, user: str, now_ms: int) -> None:
        """``user`` was read back from the bucket: its entry is as old as the oldest here, or older."""
        if user not in self._written:
            self._to_front(user, now_ms)

    def unwritten(self, user: str, now_ms: int) -> None:
        """``user``'s write failed (the bus briefly away): due at the next take."""
        if user in self._written:
            del self._written[user]
            self._to_front(user, now_ms - self.period_ms)

    def forget(self, user: str) -> None:
        """Offline (its entry deleted), or its partition moved to another worker."""
        self._written.pop(user, None)

    def take(self, now_ms: int) -> list[str]:
        """The users to rewrite now, oldest write first; each is counted as written at ``now_ms``."""
        written = self._written
        if self._last is not None and now_ms > self._last:
            self._credit += len(written) * (now_ms - self._last) / self.period_ms
        self._last = now_ms
        share = int(self._credit)
        self._credit -= share
        cutoff = now_ms - self.period_ms
        out: list[str] = []
        for _ in range(len(written)):  # each user once at most: a taken one goes to the end
            user, at = next(iter(written.items()))
            if len(out) >= share and at > cutoff:
                break
            out.append(user)
            written.move_to_end(user)
            written[user] = now_ms
        return out

    def _to_front(self, user: str, at_most: int) -> None:
        oldest = next(iter(self._written.values()), at_most)
        self._written[user] = min(oldest, at_most)
        self._written.move_to_end(user, last=False)
