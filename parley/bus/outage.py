"""Which NATS failures mean "the bus is briefly unavailable" (retry), and turning them into ``bus_unavailable``.

During a JetStream leader election (a server of an R3 stream was killed or stepped down) nats-py
raises ``NoStreamResponseError`` (the publish reached no stream leader), request timeouts, no
responders, ``ServiceUnavailableError`` or API errors with status 503 and codes such as 10008
("JetStream system temporarily unavailable"); a pull consumer's fetch gets a bare 503 status
(``ServiceUnavailableError`` with no code at all). None of them is a bug on our side: the client resends
(the dedup id makes that safe) and the stream answers again once a leader is elected. Every request
path (node publish, sync reads, API) maps them to the documented, retryable ``bus_unavailable`` and
logs one line, never a traceback.
"""

from __future__ import annotations

from nats.errors import ConnectionClosedError, ConnectionReconnectingError, NoRespondersError, StaleConnectionError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import APIError, NoStreamResponseError, ServiceUnavailableError

from parley.errors import Unavailable

# JetStream API error codes that an election or a lost quorum produces (nats-server's errors.json):
# 10008 cluster temporarily unavailable, 10009 not leader, 10118 stream offline, 10119 consumer offline
ELECTION_CODES = frozenset({10008, 10009, 10118, 10119})

TRANSIENT: tuple[type[BaseException], ...] = (
    NoStreamResponseError, ServiceUnavailableError, NoRespondersError, NatsTimeout, TimeoutError, ConnectionClosedError,
    ConnectionReconnectingError, StaleConnectionError,
)


def is_transient(err: BaseException) -> bool:
    """True when ``err`` says the bus is briefly away (an election, a reconnect), not that we are wrong."""
    if isinstance(err, TRANSIENT):
        return True
    if isinstance(err, APIError):
        return err.code == 503 or err.err_code in ELECTION_CODES
    return False


def unavailable(err: BaseException, what: str) -> Unavailable:
    """The ``bus_unavailable`` error a client sees for ``err`` while doing ``what``."""
    detail = type(err).__name__ if not str(err) else f"{type(err).__name__}: {err}"
    return Unavailable(f"the message bus is unavailable ({what}: {detail}); try again", code="bus_unavailable")


def as_unavailable(err: BaseException, what: str) -> Unavailable | None:
    """``bus_unavailable`` for a transient bus failure, None for anything else (a real bug: let it show)."""
    if isinstance(err, Unavailable):
        return err
    return unavailable(err, what) if is_transient(err) else None
