"""Live connections whose session ended while this node was not listening.

A revocation reaches a node as ``wire.Revoke`` on the user's control subject (``subscriptions`` closes
the session's connections with 4003); a node cut off from NATS when it passed never sees it, and the
API's retries stop once NATS has taken it. So when NATS comes back the node checks each live
connection's session in the store (a wave of sessions at a time) and closes those that were logged out
or passed their lifetime, with 4003 as the control subject would. A store that does not answer leaves
the connections as they are: the next hello of each is checked (and refused while it is down,
``revocation_fail_closed``).

One more gap is a connection's own set-up: a revocation announced after its hello's check and before
the connection is in the hub (and its user's control subject subscribed) finds nothing to close. So a
connection's session is read once more when its set-up is done (``check_again``): one store read per
connection, for a logout that never leaves a connection behind. For the first device of a user here that read
is one with the user's groups and friends (``connect_reads``, made by ``subscriptions`` once the user's control
subject is subscribed; ADR 0035).

A session also ends by itself, at its absolute lifetime (``expires_at``): that read puts the connection on
the node's one heap of session ends (``end_at_expiry``, ``node.expiry``), which closes it then, with an
``error`` frame ``session_expired`` and close 4003, as a hello would be refused (protocol.md §1), rather than
letting it live until its next reconnect.
A connection admitted while the store was down (``revocation_fail_closed`` off) has no timer until the
check of every live session when NATS comes back (``close_ended_sessions``) arms one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from parley.node.expiry import Ending, end_at
from parley.node.link import DeviceLink
from parley.node.ports import Sessions

from parley.auth import live_session
from parley.errors import CLOSE_REVOKED, Unauthorized, Unavailable
from parley.ids import SessionId
from parley.store import ConnectReads, Session

log = logging.getLogger("parley.node")
WAVE = 64  # sessions read at once


async def close_ended_sessions(links: Iterable[DeviceLink], sessions: Sessions, *, now: int) -> int:
    """Close the links of sessions that ended; how many were closed."""
    by_session: dict[SessionId, list[DeviceLink]] = {}
    for link in links:
        by_session.setdefault(link.session, []).append(link)
    ids, closed = list(by_session), 0
    for start in range(0, len(ids), WAVE):
        wave = ids[start:start + WAVE]
        try:
            found = await asyncio.gather(*(sessions.get_session(s) for s in wave))
        except Unavailable as err:
            log.warning("could not check %d live sessions: %s", len(ids) - start, err.message)
            return closed
        for sid, session in zip(wave, found, strict=True):
            try:
                live = live_session(session, now=now)
            except Unauthorized as ended:
                for link in by_session[sid]:
                    link.close(CLOSE_REVOKED, ended.code)
                closed += len(by_session[sid])
                continue
            for link in by_session[sid]:
                if link.ends is None:  # admitted while the store was down: its session's end is known now
                    link.ends = end_at_expiry(link, live, now=now)
    return closed


async def check_again(link: DeviceLink, sessions: Sessions, *, now: int,
                      read: ConnectReads | None = None) -> Session | None:
    """Raise ``Unauthorized`` (close 4003) if the link's session ended since its hello was checked; a store
    that does not answer now changes nothing (the hello's check passed): None. ``read``: the session was read
    already, after the set-up (the user's subscriptions' own reads, ADR 0035)."""
    if read is not None:
        return live_session(read.session, now=now)
    try:
        session = await sessions.get_session(link.session)
    except Unavailable:
        return None
    return live_session(session, now=now)


def end_at_expiry(link: DeviceLink, session: Session, *, now: float) -> Ending:
    """Close ``link`` when ``session`` passes its lifetime (``node.expiry``: one heap and one timer for all);
    cancel the ending when the link ends first. ``now`` is kept for the callers' sake: the heap reads the clock."""
    return end_at(link, session.expires_at)
