"""Locust users for the ``live-event`` scenario (``loadtest/live_event.py``): viewers of live rooms.

    .venv/bin/python -m parley.loadtest.run live-event                 # one command: cluster, seed, Locust, report

Each Locust user is one seeded account's device: it logs in through the API, connects to the node the
login placed it on, says hello (protocol v2), waits for ``synced``, joins its room (``live_join``) and
reads. Chatters send ``live_send`` frames at the scenario's rate (×10 in the score burst) once every user
of the process has joined. Request events (type ``WS``): ``connect`` (hello → synced), ``join`` (live_join
→ live_joined), ``send live`` (live_send → live_sent), ``deliver live`` (the send time in the body → arrival
at a viewer), ``deliver live burst`` (the same, for messages sent in the burst). Failures: ``lost live``
(accepted, never delivered to a viewer of its room; ``LiveBooks``), ``duplicate``, ``error <code>``,
``closed <code>``. A summary JSON (the ledger, counters and Locust's rows) goes to ``--summary-out``.
One process: the books are that process's (distributed workers, as ``locustfile.py`` has them, are not built
for this scenario).
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import secrets
import time
from pathlib import Path
from typing import Any

import gevent
import orjson
import websocket
from gevent.event import Event
from locust import HttpUser, events, task
from locust.exception import StopUser
from parley.loadtest.harness import wire
from parley.loadtest.ledger import verdict
from parley.loadtest.live_event import LiveBooks, LiveEvent, live_scenario

log = logging.getLogger("parley.loadtest")
TIMEOUT_S = 10.0


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--roster", default="", help="roster JSON (loadtest.run writes it, with the rooms)")
    parser.add_argument("--scenario", default="live-event", help="live-event")
    parser.add_argument("--loss-timeout", type=float, default=10.0)
    parser.add_argument("--summary-out", default="", help="write the ledger, counters and statistics here (JSON)")


class Shared:
    def __init__(self) -> None:
        self.roster: dict[str, Any] = {}
        self.slots = itertools.count()
        self.books = LiveBooks()
        self.joined = 0
        self.expected = 0  # users this process runs
        self.chat_from: float | None = None  # when the chat started (monotonic)
        self.sending = True
        self.counts: dict[str, int] = {}
        self.summary: dict[str, Any] = {}

    def count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def since_start(self) -> float | None:
        if self.chat_from is None and self.joined >= self.expected > 0:
            self.chat_from = time.monotonic()
        return None if self.chat_from is None else time.monotonic() - self.chat_from


SHARED = Shared()


@events.test_start.add_listener
def _on_start(environment: Any, **_kw: Any) -> None:
    opts = environment.parsed_options
    if not opts.roster:
        raise SystemExit("--roster is required (python -m parley.loadtest.run live-event writes one)")
    SHARED.roster = json.loads(Path(opts.roster).read_text())
    SHARED.expected = environment.runner.target_user_count or opts.num_users or 1


@events.test_stopping.add_listener
def _on_stopping(environment: Any, **_kw: Any) -> None:
    """Stop chatting, wait for what viewers are owed, then count the rest lost."""
    if SHARED.summary:
        return
    SHARED.sending = False
    deadline = time.monotonic() + environment.parsed_options.loss_timeout
    while time.monotonic() < deadline and any(SHARED.books.owed().values()):
        gevent.sleep(0.2)
    for viewer, missing in SHARED.books.owed().items():
        if missing:
            environment.events.request.fire(request_type="WS", name="lost live", response_time=0, response_length=0,
                                            exception=AssertionError(f"{missing} accepted, never shown to {viewer}"),
                                            context={})
    ledger = SHARED.books.summary()
    SHARED.summary = {"ledger": ledger, "counts": SHARED.counts, "clients": len(SHARED.books.rooms)}
    ok, line = verdict(ledger)
    print(line, flush=True)
    if not ok:
        environment.process_exit_code = 1


@events.quitting.add_listener
def _on_quitting(environment: Any, **_kw: Any) -> None:
    out = environment.parsed_options.summary_out
    if out:
        stats = environment.runner.stats
        rows = [_stats_row(e) for e in sorted(stats.entries.values(), key=lambda e: (e.method, e.name))]
        errors = [{"method": e.method, "name": e.name, "error": str(e.error)[:300], "occurrences": e.occurrences}
                  for e in stats.errors.values()]
        Path(out).write_text(json.dumps({**SHARED.summary, "stats": rows + [_stats_row(stats.total)],
                                         "errors": errors}))


def _stats_row(e: Any) -> dict[str, Any]:  # the same row as loadtest/locustfile.py's
    def pct(q: float) -> float | None:
        return float(e.get_response_time_percentile(q)) if e.num_requests else None

    return {"type": e.method or "", "name": e.name, "count": e.num_requests, "failures": e.num_failures,
            "rps": round(e.total_rps, 2), "p50_ms": pct(0.5), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
            "max_ms": round(e.max_response_time, 2) if e.num_requests else None,
            "mean_ms": round(e.avg_response_time, 2)}


class LiveViewer(HttpUser):
    """One viewer (and maybe chatter) of one live room."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self.sc: LiveEvent = live_scenario(env.parsed_options.scenario)
        self.ws: websocket.WebSocket | None = None
        self.joined = Event()
        self.pending: dict[str, tuple[float, bool]] = {}  # cid -> (sent at, in the burst)
        self.cids = (f"{secrets.token_hex(4)}-{n}" for n in itertools.count(1))
        self.stopping = False
        self.run_s = float(env.parsed_options.run_time or self.sc.run_time_s)

    def wait_time(self) -> float:
        since = SHARED.since_start()
        if not self.chatter or since is None:
            return 0.2
        return self.sc.wait_s(since, self.run_s, random.expovariate(1.0))

    def event(self, name: str, ms: float = 0.0, error: Exception | None = None) -> None:
        self.environment.events.request.fire(request_type="WS", name=name, response_time=ms, response_length=0,
                                             exception=error, context={})

    def on_start(self) -> None:
        n = next(SHARED.slots)
        users = SHARED.roster["users"]
        if n >= len(users):
            self.event("no roster slot", error=RuntimeError("seed more users"))
            raise StopUser()
        self.account, self.index = users[n], n
        self.me = f"{self.account['id']}/{n}"
        self.room = self.sc.room_of(n, SHARED.expected, SHARED.roster["live"]["rooms"])
        self.chatter = self.sc.chats(n)
        body = {"username": self.account["name"], "password": SHARED.roster["password"],
                "device_id": self.account["device_id"], "device_name": "locust-live"}
        with self.client.post("/v1/login", json=body, name="/v1/login", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code} {r.text[:200]}")
                raise StopUser()
            login = r.json()
        t0 = time.monotonic()
        self.ws = websocket.create_connection(login["node"]["url"], timeout=TIMEOUT_S, enable_multithread=True)
        self.ws.send(wire.hello(login["token"], client="parley-locust-live/1"))
        while self.read().get("type") != "synced":
            pass
        self.event("connect", (time.monotonic() - t0) * 1000)
        self.ws.settimeout(None)
        self.reader = gevent.spawn(self.read_all)
        self.pinger = gevent.spawn(self.ping_every)
        t0 = time.monotonic()
        self.ws.send(orjson.dumps({"type": "live_join", "room": self.room}).decode())
        if not self.joined.wait(TIMEOUT_S * 3):
            self.event("join", error=TimeoutError("no live_joined"))
            raise StopUser()
        self.event("join", (time.monotonic() - t0) * 1000)

    def on_stop(self) -> None:
        self.stopping = True
        gevent.killall([g for g in (getattr(self, "reader", None), getattr(self, "pinger", None)) if g],
                       block=True, timeout=2)
        if self.ws is not None:
            try:
                self.ws.close(timeout=1)
            except (OSError, websocket.WebSocketException):
                pass

    def read(self) -> dict[str, Any]:
        assert self.ws is not None
        opcode, frame = self.ws.recv_data_frame(True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            code = int.from_bytes(frame.data[:2], "big") if len(frame.data) >= 2 else None
            raise ConnectionError(f"closed {code}")
        return dict(orjson.loads(frame.data)) if opcode == websocket.ABNF.OPCODE_TEXT else {}

    def read_all(self) -> None:
        try:
            while True:
                self.on_frame(self.read())
        except (OSError, websocket.WebSocketException, ConnectionError) as err:
            if not self.stopping:
                self.event(str(err) if str(err).startswith("closed") else "closed", error=err)

    def on_frame(self, f: dict[str, Any]) -> None:
        kind = f.get("type")
        if kind == "live_msg":
            self.on_message(f)
        elif kind == "live_sent":
            sent = self.pending.pop(f["cid"], None)
            if sent is not None:
                self.event("send live", (time.monotonic() - sent[0]) * 1000)
            if not f.get("duplicate"):
                SHARED.books.on_ack(f["room"], int(f["id"]))
        elif kind == "live_joined":
            SHARED.books.watching(self.me, self.room)
            SHARED.joined += 1
            self.joined.set()
        elif kind == "live_dropped":
            SHARED.books.on_dropped(self.me)
            SHARED.count("dropped")
        elif kind == "error":
            self.pending.pop(f.get("ref", ""), None)
            self.event(f"error {f.get('code')}", error=RuntimeError(f"{f.get('code')}: {f.get('message')}"))

    def on_message(self, f: dict[str, Any]) -> None:
        before = SHARED.books.duplicates
        SHARED.books.on_message(self.me, int(f["id"]))
        if SHARED.books.duplicates > before:
            self.event("duplicate", error=AssertionError(f"live message {f['id']} shown twice"))
            return
        sent_ns, burst = str(f["body"]).split(" ", 2)[:2] if f["body"].count(" ") >= 2 else ("", "")
        if sent_ns.isdigit():
            name = "deliver live burst" if burst == "burst" else "deliver live"
            self.event(name, max(0.0, (time.time_ns() - int(sent_ns)) / 1e6))

    def ping_every(self) -> None:
        while not self.stopping:
            gevent.sleep(self.sc.heartbeat_s)
            self.send_raw(wire.ping())

    def send_raw(self, frame: str) -> None:
        try:
            if self.ws is not None:
                self.ws.send(frame)
        except (OSError, websocket.WebSocketException):
            pass

    @task
    def chat(self) -> None:
        since = SHARED.since_start()
        if not self.chatter or since is None or not SHARED.sending:
            return
        cid = next(self.cids)
        burst = self.sc.in_burst(since, self.run_s)
        body = f"{time.time_ns()} {'burst' if burst else 'calm'} {cid}"
        self.pending[cid] = (time.monotonic(), burst)
        self.send_raw(orjson.dumps({"type": "live_send", "room": self.room, "cid": cid, "body": body}).decode())
        SHARED.count("sent_in_burst" if burst else "sent_calm")
