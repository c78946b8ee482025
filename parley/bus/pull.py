"""Pulling from a durable JetStream consumer with one long-lived inbox, not nats-py's ``fetch``.

nats-py's ``fetch`` makes a uuid, a future and a ``wait_for`` per message and a metadata object per
message's stream sequence; at a few thousand messages a second that was a fifth of the archiver's CPU.
Here one subscription (``<inbox>.*``, dispatched inline by ``BusClient.subscribe_raw``) receives every
message; a pull request (``$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>``, ``{batch, expires}``) is
sent with its own reply subject ``<inbox>.<n>`` so a status the server sends about it (408 expired, 404
none, 409 conflict such as a leader change, 503 no responders during an election) names the request it
ends and a late one about an old request closes nothing. At most one request is open per consumer; the
next goes out when it is used up or ended, and only while the owner has room (``room``). Every message
received is handed over (``deliver``), whatever the request bookkeeping says: nothing is dropped.

The pure parts: ``stream_sequence`` (from the ack subject), ``status_of`` (from the raw header block)
and ``PullRequests`` (which request is open, what it may still bring; ``now`` passed in).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable

import orjson

from parley.bus.ordered import BusClient

log = logging.getLogger("parley.bus")

ACK, NAK, PROGRESS = b"+ACK", b"-NAK", b"+WPI"  # answers to a message, published to its ack subject
ENDED = frozenset({"404", "408", "409"})  # a request ended normally (none left, expired, conflict)
HEARTBEAT = "100"
MARGIN_S = 2.0  # a request with no word this long past its expiry is taken as lost (a server restarted)
TROUBLE_PAUSE_S = 0.5  # after any other status (an election's 503): wait before asking again


def stream_sequence(reply: str) -> int:
    """A JetStream message's stream sequence from its ack subject, in either of nats-server's formats:
    ``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`` (9 tokens) or
    ``$JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>``
    with an optional random token (11 or 12). ValueError for anything else."""
    tokens = reply.split(".")
    if len(tokens) < 9 or tokens[0] != "$JS" or tokens[1] != "ACK":
        raise ValueError(f"not a JetStream ack subject: {reply!r}")
    if len(tokens) == 9:
        return int(tokens[5])
    if len(tokens) in (11, 12):
        return int(tokens[7])
    raise ValueError(f"unknown JetStream ack subject format: {reply!r}")


def status_of(headers: bytes | None) -> str | None:
    """The status code of a status message (``NATS/1.0 408 Request Timeout``), None for a message
    (whose header block, if any, starts ``NATS/1.0\\r\\n``)."""
    if headers is None or not headers.startswith(b"NATS/1.0 "):
        return None
    return headers[9:12].decode()


class PullRequests:
    """The pull requests of one consumer: at most one open, with the messages it may still bring."""

    def __init__(self, inbox: str, batch: int, expires_s: float) -> None:
        self.inbox, self.batch, self.expires_s = inbox, batch, expires_s
        self.sent = 0
        self.open: int | None = None
        self.credit = 0
        self.asked = 0  # what the open (or last) request asked for
        self.deadline = 0.0

    def next(self, room: int, now: float, *, no_wait: bool = False) -> tuple[str, bytes] | None:
        """The request to send now (its reply subject and body), or None (one is open, or no room). A
        ``no_wait`` request brings what is pending now and ends at once (404/408), waiting for nothing."""
        if self.open is not None and now > self.deadline:
            self.open = None  # no word from the server long past its expiry: lost
        if self.open is not None or room <= 0:
            return None
        self.sent += 1
        self.open, self.credit = self.sent, min(room, self.batch)
        self.asked = self.credit
        self.deadline = now + self.expires_s + MARGIN_S
        # with an expiry too, nats-server would wait out the expiry for the rest of the batch once anything was pending
        body: dict[str, object] = {"batch": self.credit, "no_wait": True} if no_wait else {
            "batch": self.credit, "expires": int(self.expires_s * 1e9)}
        return f"{self.inbox}.{self.sent}", orjson.dumps(body)

    def on_message(self) -> bool:
        """A message arrived; True if that used up the open request."""
        if self.open is None:
            return False
        self.credit -= 1
        if self.credit > 0:
            return False
        self.open = None
        return True

    def on_status(self, subject: str, code: str) -> bool:
        """A status arrived on ``subject``; True if it ended the open request."""
        if code == HEARTBEAT or self.open is None or subject != f"{self.inbox}.{self.open}":
            return False
        self.open = None
        return True


def next_burst(now: float, linger_s: float, *, burst: bool, asked: int, got: int, lasted_s: float) -> float | None:
    """Lingering (``linger_s`` > 0): when to send the next burst (a ``no_wait`` request for what is pending)
    after a request ended, or None for a plain request (it waits, and brings each message as it comes). A
    request that came full asks again at once (a backlog). A burst that brought something, or a plain request
    that brought more than one message a tick while it lasted (``lasted_s``), waits for the next multiple of
    ``linger_s`` on the loop's clock, the same instant for every stream's puller, so their bursts meet in one
    batch. A burst that found nothing, or a plain request that brought a trickle, goes back to waiting:
    at a trickle a burst would find nothing, and a message as it comes costs no more than a burst."""
    if got == 0:
        return None
    if got >= asked:
        return now
    if not burst and got * linger_s <= lasted_s:
        return None
    tick = (math.floor(now / linger_s) + 1) * linger_s
    return tick if tick > now + 1e-6 else tick + linger_s  # (a float division may land on ``now`` itself)


class Puller:
    """Keeps one pull request open on ``stream``'s ``consumer`` while ``room()`` > 0 and hands every
    message to ``deliver(subject, reply, data)`` inline, in the order received (``deliver`` must not
    block). ``run`` returns once ``stop`` is set and the open request has ended (so nothing is left
    in flight to an inbox nobody reads). With ``linger_s`` > 0, once messages come faster than one a tick it
    keeps no request open (each message its own wakeup) but fetches what is pending every ``linger_s``
    (``next_burst``), so a message reaches ``deliver`` at most ``linger_s`` after it came."""

    def __init__(self, nc: BusClient, stream: str, consumer: str, *, batch: int, expires_s: float,
                 room: Callable[[], int], deliver: Callable[[str, str, bytes], None], linger_s: float = 0.0) -> None:
        self._nc, self._room, self._deliver = nc, room, deliver
        self._subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._requests = PullRequests(nc.new_inbox(), batch, expires_s)
        self._wake = asyncio.Event()
        self._trouble: str | None = None
        self._linger = linger_s
        self._burst_at: float | None = None  # lingering: when to fetch what is pending; None: a plain request
        self._burst = False  # the open request is a burst (no_wait)
        self._got = 0  # messages the open request brought
        self._sent_at = 0.0  # the loop's time the open (or last) request went out

    def wake(self) -> None:
        """Room may have opened up: ask again if no request is open."""
        self._wake.set()

    def _on_message(self, subject: bytes, reply: bytes, headers: bytes | None, data: bytes) -> None:
        if reply:  # a message (JetStream's always have an ack subject)
            self._got += 1
            if self._requests.on_message():
                self._ended()
            self._deliver(subject.decode(), reply.decode(), data)
            return
        code = status_of(headers)
        if code is None:
            log.warning("ignoring a message with neither an ack subject nor a status on %s", subject)
        elif self._requests.on_status(subject.decode(), code):
            if code not in ENDED:
                self._trouble = code
            self._ended()

    def _ended(self) -> None:
        if self._linger > 0:
            now = asyncio.get_running_loop().time()
            self._burst_at = next_burst(now, self._linger, burst=self._burst, asked=self._requests.asked,
                                        got=self._got, lasted_s=now - self._sent_at)
        self._wake.set()

    def _next(self, now: float) -> tuple[str, bytes] | None:
        """The request to send now, if any: a plain one (it waits), or lingering and on a tick, a burst."""
        room = self._room()
        if self._linger <= 0:
            return self._requests.next(room, now)
        if self._burst_at is None:
            request, burst = self._requests.next(room, now), False
        elif now >= self._burst_at:
            request, burst = self._requests.next(room, now, no_wait=True), True
        else:
            return None
        if request is not None:
            self._burst, self._got, self._sent_at = burst, 0, now
        return request

    def _wait_s(self, now: float) -> float:
        if self._requests.open is not None:
            return min(max(0.05, self._requests.deadline - now), 1.0)
        if self._burst_at is not None and self._linger > 0 and self._room() > 0:
            return min(max(0.001, self._burst_at - now), 1.0)
        return 1.0

    async def run(self, stop: asyncio.Event) -> None:
        sub = await self._nc.subscribe_raw(f"{self._requests.inbox}.*", self._on_message)
        loop = asyncio.get_running_loop()
        try:
            while not (stop.is_set() and self._requests.open is None):
                if self._trouble is not None:
                    log.warning("pull request on %s answered %s; asking again shortly", self._subject,
                                self._trouble)
                    self._trouble = None
                    await asyncio.sleep(TROUBLE_PAUSE_S)
                request = None if stop.is_set() else self._next(loop.time())
                if request is not None:
                    await self._send(*request)
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self._wait_s(loop.time()))
                except TimeoutError:
                    pass
                if stop.is_set() and self._requests.open is not None:
                    self._requests.next(0, loop.time())  # closes it once past its deadline
        finally:
            await self._nc.unsubscribe_raw(sub)

    async def _send(self, reply: str, body: bytes) -> None:
        try:
            await self._nc.publish(self._subject, body, reply=reply)
        except Exception as err:  # NATS away: the client reconnects by itself; the request is lost
            log.warning("pull request failed: %s", err)
            self._requests.open = None
            await asyncio.sleep(TROUBLE_PAUSE_S)
