"""Locust scenarios for Parley: users that speak the WebSocket protocol (docs/protocol.md).

    .venv/bin/python -m parley.loadtest.run smoke                       # one command: cluster, seed, Locust, report
    .venv/bin/locust -f loadtest/locustfile.py --headless --host http://127.0.0.1:8080 \\
        --roster roster.json --scenario steady -u 100 -r 20 -t 60s       # against a running Parley

Each Locust user is one device of one seeded account (``loadtest.seed`` writes the roster): it logs in
through the API (keeping its device), connects to the node the login placed it on, says hello (protocol
v2; the first time without a cursor: the server resumes the device's stored one), syncs, then sends DMs
and group messages at the scenario's Poisson rate, pings every ``heartbeat_s``, acks the newest cursor
the node offered (``cursor``/``synced`` frames; opaque strings) once a second, and reconnects
(``moved`` + 4010 from a draining node, or any disconnect) through ``GET /v1/place`` with that cursor,
resending unacknowledged sends with the same cid. Messages re-sent after a reconnect (those after the
cursor it resumed from) are dropped and counted (``resent``), as the protocol says. Under Locust's
gevent monkey-patching websocket-client's blocking socket is cooperative; each connection has one
reader greenlet and one ticker greenlet.

Request events (request_type ``WS``): ``connect`` (hello → synced), ``reconnect`` (disconnect →
synced), ``send dm``/``send group`` (send → SENT ack), ``deliver dm``/``deliver group`` (end to end:
the send time in the body → arrival at the recipient; clocks must agree across machines), ``ping``
(round trip), ``presence online``/``presence offline`` (a friend's change pushed to us; the time is
since the friend connected/left when that friend runs in this process). Failures: ``lost dm``/``lost
group`` (acked, never delivered to a synced recipient, see loadtest/ledger.py), ``duplicate`` and
``gap`` (per conversation, by its ``prev`` chain: loadtest/harness/chains.py), ``error <code>``,
``send timeout``, ``closed <code>`` (closes that mean a client bug).

HTTP requests are named by their path (``/v1/login``, ``/v1/conversations``, ``/v1/place``); Locust shows
the method beside it. Without ``--host``, the API is the one ``parley up`` runs from ``--run-dir`` (its
run.json; default ``PARLEY_RUN_DIR``, else ``.parley``).

Workers take whole roster cells (``--parley-workers`` = how many workers), so every message's
recipients run in the sender's process and losses are counted exactly. When the run stops, the master
asks every worker to settle its ledger (stop sending, wait ``--loss-timeout`` for what is owed, count the
rest lost) and to send it back (``parley_settle`` / ``parley_summary`` messages); it prints the aggregated
verdict (``loadtest.ledger.verdict``) and exits 1 on any loss, gap, duplicate or silent worker. A run
without workers prints the same line for its own ledger. A summary JSON per process goes to
``--summary-out`` (with ``-<worker index>`` appended on workers; the master's holds the aggregate).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
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
from locust.runners import MasterRunner, WorkerRunner
from parley.loadtest.harness import wire
from parley.loadtest.ledger import Ledger, merge, verdict
from parley.loadtest.traffic import MODEL, Scenario, scenario
from parley.tools.locate import locate

log = logging.getLogger("parley.loadtest")

CLIENT_BUG_CLOSES = {1009, 4000, 4001, 4029}  # never expected from a correct client
ACK_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 10.0


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--roster", default="", help="roster JSON written by python -m parley.loadtest.seed")
    parser.add_argument("--scenario", default="smoke", help="smoke, steady, peak, reconnect-storm, presence-churn")
    parser.add_argument("--parley-workers", type=int, default=1, help="number of Locust workers (cells are split)")
    parser.add_argument("--loss-timeout", type=float, default=10.0,
                        help="seconds a synced recipient may wait for an acked message before it is lost")
    parser.add_argument("--summary-out", default="", help="write this process's counters here (JSON)")
    parser.add_argument("--run-dir", default="", help="without --host: the API of the `parley up` running from "
                                                     "this run dir (its run.json; default PARLEY_RUN_DIR or .parley)")


@events.init.add_listener
def _on_init(environment: Any, **_kw: Any) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        runner.register_message("parley_summary", _on_worker_summary)
    elif isinstance(runner, WorkerRunner):
        runner.register_message("parley_settle", _on_settle_request, concurrent=True)
    opts = environment.parsed_options
    if not environment.host and not isinstance(runner, WorkerRunner) and opts is not None:  # workers: the master's
        where = locate(os.environ, opts.run_dir or None)
        if where.found:
            environment.host = where.api
        elif opts.headless:  # the web UI asks for a host instead
            raise SystemExit(where.not_answering("api", "--host"))


class Shared:
    """What the users of one Locust process share: the roster slice, the ledger, counters."""

    def __init__(self) -> None:
        self.roster: dict[str, Any] = {}
        self.slots: list[dict[str, Any]] = []
        self.next_slot = itertools.count()
        self.by_id: dict[str, dict[str, Any]] = {}
        self.members: dict[str, list[str]] = {}  # conversation -> member user ids
        self.clients: dict[str, ParleyUser] = {}
        self.ledger = Ledger()
        self.sending = True
        self.counts: dict[str, int] = {}
        self.summary: dict[str, Any] = {}
        self.loaded = False
        self.settled = False  # the books are closed (once: at the master's request, or when the run stops)
        self.workers = 1

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def load(self, path: str, worker: int, workers: int) -> None:
        self.roster = json.loads(Path(path).read_text())
        users = self.roster["users"]
        self.workers = max(workers, 1)
        mine = [c for i, c in enumerate(self.roster["cells"]) if i % self.workers == worker]
        self.slots = [users[i] for cell in mine for i in cell]
        self.by_id = {u["id"]: u for u in users}
        for u in users:
            for peer, conv in u["dms"].items():
                self.members[conv] = sorted([u["id"], peer])
        for g in self.roster["groups"]:
            self.members[g["conv"]] = g["members"]
        self.loaded = True


SHARED = Shared()
GATHERED: dict[str, dict[str, Any]] = {}  # the master's: worker id -> its summary
SETTLE_MARGIN_S = 30.0  # beyond the loss timeout: a worker's settling, and its answer's way back


def _scenario(env: Any) -> Scenario:
    return scenario(env.parsed_options.scenario)


@events.test_start.add_listener
def _on_start(environment: Any, **_kw: Any) -> None:
    if isinstance(environment.runner, MasterRunner):
        return
    opts = environment.parsed_options
    if not opts.roster:
        raise SystemExit("--roster is required (python -m parley.loadtest.seed writes one; "
                         "python -m parley.loadtest.run does both)")
    worker = environment.runner.worker_index if isinstance(environment.runner, WorkerRunner) else 0
    SHARED.load(opts.roster, worker, opts.parley_workers)
    SHARED.ledger.loss_timeout = opts.loss_timeout
    gevent.spawn(_watch_losses, environment)


def _report_lost(env: Any, lost: list[tuple[str, int, str]]) -> None:
    for user, msg_id, kind in lost:
        env.events.request.fire(request_type="WS", name=f"lost {kind}", response_time=0, response_length=0,
                                exception=AssertionError(f"message {msg_id} acked, never delivered to {user}"),
                                context={})


def _watch_losses(env: Any) -> None:
    while True:
        gevent.sleep(1.0)
        _report_lost(env, SHARED.ledger.overdue(time.monotonic()))
        for client in list(SHARED.clients.values()):
            client.check_pending()


@events.test_stopping.add_listener
def _on_stopping(environment: Any, **_kw: Any) -> None:
    if isinstance(environment.runner, MasterRunner):
        _gather(environment)
    elif SHARED.loaded and not SHARED.settled:
        _settle(environment)
        if not isinstance(environment.runner, WorkerRunner):
            _judge(environment, SHARED.summary["ledger"], workers=1, missing=0)


def _on_settle_request(environment: Any, msg: Any, **_kw: Any) -> None:
    """A worker, asked by the master: settle, flush the stats (its ``lost`` failures), send the summary."""
    if SHARED.loaded and not SHARED.settled:
        _settle(environment)
    environment.runner._send_stats()  # before the summary, on the same socket: the master counts them first
    environment.runner.send_message("parley_summary", {"worker": environment.runner.worker_index,
                                                       **(SHARED.summary or {"ledger": {}, "counts": {}})})


def _on_worker_summary(environment: Any, msg: Any, **_kw: Any) -> None:
    GATHERED[msg.node_id] = dict(msg.data)


def _gather(environment: Any) -> None:
    """The master: every worker settles and reports; the aggregate ledger is the run's verdict."""
    runner = environment.runner
    asked = [c.id for c in runner.clients.all]
    if not asked:
        return
    runner.send_message("parley_settle", {})
    deadline = time.monotonic() + environment.parsed_options.loss_timeout + SETTLE_MARGIN_S
    while time.monotonic() < deadline and not set(asked) <= set(GATHERED):
        gevent.sleep(0.2)
    reports = [GATHERED[w] for w in asked if w in GATHERED]
    ledger = merge([r.get("ledger", {}) for r in reports])
    SHARED.summary = {"ledger": ledger, "counts": merge([r.get("counts", {}) for r in reports]),
                      "clients": sum(int(r.get("clients", 0)) for r in reports), "workers": len(asked),
                      "workers_reported": len(reports)}
    _judge(environment, ledger, workers=len(asked), missing=len(asked) - len(reports))


def _judge(environment: Any, ledger: dict[str, int], workers: int, missing: int) -> None:
    ok, line = verdict(ledger, workers, missing)
    print(line, flush=True)
    log.info("%s", line)
    if not ok:
        environment.process_exit_code = 1


def _settle(environment: Any) -> None:
    """Stop sending, give in-flight messages time to arrive, then settle the books (users still run)."""
    SHARED.settled = True
    SHARED.sending = False
    deadline = time.monotonic() + SHARED.ledger.loss_timeout
    while time.monotonic() < deadline and (
            SHARED.ledger.owed_to_online() or any(c.pending for c in SHARED.clients.values())):
        gevent.sleep(0.2)
    _report_lost(environment, SHARED.ledger.overdue(time.monotonic(), final=True))
    unacked = sum(len(c.pending) for c in SHARED.clients.values())
    SHARED.count("unacked_at_end", unacked)
    SHARED.summary = {"ledger": SHARED.ledger.summary(), "counts": SHARED.counts, "clients": len(SHARED.clients)}
    log.info("parley summary: %s", json.dumps(SHARED.summary))
    out = environment.parsed_options.summary_out
    if out and isinstance(environment.runner, WorkerRunner):
        Path(f"{out}-{environment.runner.worker_index}").write_text(json.dumps(SHARED.summary))


@events.quitting.add_listener
def _on_quitting(environment: Any, **_kw: Any) -> None:
    """The final figures (Locust's CSV may be a few events behind): ledger and request statistics."""
    out = environment.parsed_options.summary_out
    if out and not isinstance(environment.runner, WorkerRunner):
        stats = environment.runner.stats
        rows = [_stats_row(e) for e in sorted(stats.entries.values(), key=lambda e: (e.method, e.name))]
        errors = [{"method": e.method, "name": e.name, "error": str(e.error)[:300], "occurrences": e.occurrences}
                  for e in stats.errors.values()]
        Path(out).write_text(json.dumps({**SHARED.summary, "stats": rows + [_stats_row(stats.total)],
                                         "errors": errors}))


def _stats_row(e: Any) -> dict[str, Any]:
    def pct(q: float) -> float | None:
        return float(e.get_response_time_percentile(q)) if e.num_requests else None

    return {"type": e.method or "", "name": e.name, "count": e.num_requests, "failures": e.num_failures,
            "rps": round(e.total_rps, 2), "p50_ms": pct(0.5), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
            "max_ms": round(e.max_response_time, 2) if e.num_requests else None,
            "mean_ms": round(e.avg_response_time, 2)}


class Closed(Exception):
    """The WebSocket closed (``code`` None: no close frame)."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"closed {code} {reason}".strip())
        self.code = code


class ParleyUser(HttpUser):
    """One device of one seeded user."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self.sc = _scenario(env)
        self.rate = self.sc.send_rate_per_client(MODEL)
        self.ws: websocket.WebSocket | None = None
        self.gen = 0  # connection generation: a stale reader never acts on a newer connection
        self.synced = Event()
        self.cursor: str | None = None  # the newest cursor the node offered (opaque); sent on reconnect
        self.acked_cursor: str | None = None
        self.pending: dict[str, tuple[str, str, float, str, bool]] = {}  # cid -> conv, kind, t0, frame, late
        self.moved: list[str] = []
        self.greenlets: list[gevent.Greenlet] = []
        self.stopping = False
        self.offline = False
        self.session_end = float("inf")
        self.last_rx = time.monotonic()
        self.ping_sent: dict[int, float] = {}
        self.cid_prefix = secrets.token_hex(4)
        self.cids = itertools.count(1)
        self.changed_at = time.monotonic()

    def wait_time(self) -> float:
        return random.expovariate(self.rate) if self.rate > 0 else 1.0

    # ---- reporting -----------------------------------------------------------------------------
    def event(self, name: str, ms: float = 0.0, length: int = 0, error: Exception | None = None) -> None:
        self.environment.events.request.fire(request_type="WS", name=name, response_time=ms, response_length=length,
                                             exception=error, context={"user": self.me})

    # ---- lifecycle -----------------------------------------------------------------------------
    def on_start(self) -> None:
        n = next(SHARED.next_slot)
        if n >= len(SHARED.slots):
            cells = len(SHARED.roster["cells"])
            advice = (f"the roster has {cells} cells for {SHARED.workers} workers: seed with --cell at most "
                      f"users/workers" if cells < SHARED.workers else "seed more users")
            log.error("no roster slot left for user %d (%d here): %s", n, len(SHARED.slots), advice)
            self.event("no roster slot", error=RuntimeError(advice))  # a failure: the run must not pass
            raise StopUser()
        self.account = SHARED.slots[n]
        self.me: str = self.account["id"]
        self.convs = list(self.account["dms"].values())
        self.groups = [g["conv"] for g in SHARED.roster["groups"] if self.me in g["members"]]
        SHARED.clients[self.me] = self
        SHARED.ledger.away(self.me)
        self.token, urls = self.login()
        SHARED.ledger.start(self.me, self.start_floors())
        t0 = time.monotonic()
        self.connect_any(urls)
        self.event("connect", (time.monotonic() - t0) * 1000)
        self.greenlets.append(gevent.spawn(self.ticker))
        self.new_session()

    def on_stop(self) -> None:
        self.stopping = True
        if hasattr(self, "me"):
            SHARED.ledger.away(self.me)
        # the reader first: blocked in a receive it holds the socket's read lock, which close() waits for
        # (forever, should the node not answer the close frame); suspected, not proven, to be why Locust
        # did not exit after the summary in 2 of 6 presence-churn runs (2026-12-02)
        gevent.killall(self.greenlets, block=True, timeout=2)
        self.close_ws(1000)

    def login(self) -> tuple[str, list[str]]:
        body = {"username": self.account["name"], "password": SHARED.roster["password"],
                "device_id": self.account["device_id"], "device_name": "locust"}
        with self.client.post("/v1/login", json=body, name="/v1/login", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code} {r.text[:200]}")
                raise StopUser()
            data = r.json()
        return data["token"], [data["node"]["url"]] + [f["url"] for f in data.get("fallbacks", [])]

    def start_floors(self) -> dict[str, int]:
        """Start "from now": per conversation, its newest message id (ids compare only within one)."""
        r = self.client.get("/v1/conversations", headers=self.auth(), name="/v1/conversations")
        convs = r.json().get("conversations", []) if r.status_code == 200 else []
        return {c["id"]: (c.get("last_message") or {}).get("id", 0) for c in convs}

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def place(self) -> list[str]:
        with self.client.get("/v1/place", headers=self.auth(), name="/v1/place", catch_response=True) as r:
            if r.status_code == 401:
                r.success()
                self.token, urls = self.login()
                return urls
            if r.status_code != 200:
                r.failure(f"{r.status_code} {r.text[:200]}") if r.status_code != 503 else r.success()
                return []
            data = r.json()
        return [data["node"]["url"]] + [f["url"] for f in data.get("fallbacks", [])]

    # ---- connecting ----------------------------------------------------------------------------
    def connect_any(self, urls: list[str]) -> None:
        """Connect to the first of ``urls`` that takes us, else keep asking /v1/place, with backoff."""
        backoff = 0.2
        while not self.stopping:
            for url in urls:
                try:
                    self.connect(url)
                    return
                except (OSError, websocket.WebSocketException, Closed, TimeoutError) as err:
                    log.debug("%s: connect to %s failed: %s", self.me, url, err)
            gevent.sleep(backoff * random.uniform(0.5, 1.5))
            backoff = min(backoff * 2, 5.0)
            urls = self.place()
        raise StopUser()

    def connect(self, url: str) -> None:
        ws = websocket.create_connection(url, timeout=CONNECT_TIMEOUT_S, enable_multithread=True)
        ws.send(wire.hello(self.token, self.cursor, client="parley-locust/2"))
        first = self.read(ws)
        if first.get("type") != "welcome":
            ws.close()
            raise Closed(None, f"hello refused: {first}")
        SHARED.ledger.chain(self.me).reconnected(with_cursor=self.cursor is not None)
        self.cursor = first.get("cursor") or self.cursor  # where the node syncs this device from
        ws.settimeout(None)
        self.gen += 1
        self.ws, self.synced = ws, Event()
        self.last_rx = time.monotonic()
        self.greenlets = [g for g in self.greenlets if not g.dead] + [gevent.spawn(self.reader, ws, self.gen)]
        if not self.synced.wait(CONNECT_TIMEOUT_S * 3):
            self.close_ws(1000)
            raise Closed(None, "no synced")
        for _conv, _kind, _t0, frame, _late in list(self.pending.values()):
            ws.send(frame)  # unanswered sends again, same cid: the node de-duplicates

    @staticmethod
    def read(ws: websocket.WebSocket) -> dict[str, Any]:
        opcode, frame = ws.recv_data_frame(True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            code = int.from_bytes(frame.data[:2], "big") if len(frame.data) >= 2 else None
            raise Closed(code, frame.data[2:].decode(errors="replace"))
        if opcode != websocket.ABNF.OPCODE_TEXT:
            return {}
        data: dict[str, Any] = orjson.loads(frame.data)
        return data

    def close_ws(self, code: int) -> None:
        ws, self.ws = self.ws, None
        if ws is not None:
            try:
                ws.close(status=code, timeout=1)
            except (OSError, websocket.WebSocketException):
                pass

    def reader(self, ws: websocket.WebSocket, gen: int) -> None:
        code: int | None = None
        try:
            while True:
                frame = self.read(ws)
                self.last_rx = time.monotonic()
                if frame:
                    self.on_frame(frame)
        except Closed as err:
            code = err.code
        except (OSError, websocket.WebSocketException):
            code = None
        if gen == self.gen and not self.stopping:
            self.on_disconnect(code)

    def on_disconnect(self, code: int | None) -> None:
        self.ws = None
        SHARED.ledger.away(self.me)
        if self.offline:  # we closed it ourselves: the session ended
            return
        t0 = time.monotonic()
        self.changed_at = t0
        SHARED.count(f"disconnect_{code}")
        if code in CLIENT_BUG_CLOSES:
            self.event(f"closed {code}", error=Closed(code))
        urls, self.moved = self.moved, []
        if code in (4002, 4003):
            self.token, urls = self.login()
        self.connect_any(urls or self.place())
        self.event("reconnect", (time.monotonic() - t0) * 1000)
        SHARED.count("reconnects")

    # ---- frames --------------------------------------------------------------------------------
    def on_frame(self, f: dict[str, Any]) -> None:
        kind = f.get("type")
        if kind == "msg":
            self.on_msg(f)
        elif kind == "ack":
            self.on_ack(f)
        elif kind == "cursor":
            self.offered(f["cursor"])
        elif kind == "synced":
            self.offered(f["cursor"])
            SHARED.ledger.online(self.me, time.monotonic())
            self.synced.set()
        elif kind == "pong":
            sent = self.ping_sent.pop(f.get("ts") or -1, None)
            if sent is not None:
                self.event("ping", (time.monotonic() - sent) * 1000)
        elif kind == "error":
            self.on_error(f)
        elif kind == "presence":
            self.on_presence(f)
        elif kind == "moved":
            node = f.get("node") or {}
            self.moved = ([node["url"]] if node.get("url") else []) + [n["url"] for n in f.get("fallbacks") or []]
            SHARED.count("moved")

    def offered(self, cursor: str) -> None:
        """A cursor covering every frame before it: those were processed (one reader, in order)."""
        self.cursor = cursor
        SHARED.ledger.chain(self.me).offered()

    def on_msg(self, f: dict[str, Any]) -> None:
        msg_id, conv, prev, own = int(f["id"]), f["conv"], int(f.get("prev", 0)), f.get("from") == self.me
        tail = SHARED.ledger.chain(self.me).tail.get(conv)
        verdict = SHARED.ledger.on_delivery(self.me, conv, msg_id, prev, own=own)
        if verdict == "resent":  # after a reconnect, what followed our cursor comes again: dropped
            SHARED.count("resent_after_reconnect")
            return
        if verdict == "duplicate":
            self.event("duplicate", error=AssertionError(f"{conv}: message {msg_id} delivered twice"))
            return
        if verdict == "gap":
            self.event("gap", error=AssertionError(f"{conv}: got {msg_id} after {tail}, prev {prev}"))
        if own:
            return
        kind = "group" if conv.startswith("g.") else "dm"
        body = str(f.get("body", ""))
        try:
            sent_ns = int(body.split(" ", 1)[0])
        except ValueError:
            return  # not one of ours (another client's message)
        self.event(f"deliver {kind}", max(0.0, (time.time_ns() - sent_ns) / 1e6), len(body))

    def on_ack(self, f: dict[str, Any]) -> None:
        entry = self.pending.pop(f.get("cid", ""), None)
        if entry is None:
            return
        conv, kind, t0, _frame, _late = entry
        self.event(f"send {kind}", (time.monotonic() - t0) * 1000)
        if f.get("duplicate"):
            SHARED.count("duplicate_sends_acked")
        recipients = [m for m in SHARED.members.get(conv, []) if m != self.me]
        SHARED.ledger.on_ack(recipients, conv, int(f["id"]), kind, time.monotonic())

    def on_error(self, f: dict[str, Any]) -> None:
        code, ref = f.get("code", "?"), f.get("ref")
        if code == "bad_cursor" and not self.synced.is_set():  # the node syncs us from the beginning
            SHARED.ledger.chain(self.me).cursor_refused()
        self.event(f"error {code}", error=RuntimeError(f"{code}: {f.get('message')}"))
        if ref in self.pending and not f.get("retryable"):
            self.pending.pop(ref)
        elif ref in self.pending:
            frame = self.pending[ref][3]
            gevent.spawn_later(f.get("retry_after_ms", 500) / 1000, self.send_raw, frame)

    def on_presence(self, f: dict[str, Any]) -> None:
        for u in f.get("users", []):
            friend = SHARED.clients.get(u.get("user"))
            state = "online" if u.get("online") else "offline"
            ms = 0.0
            if friend is not None and (friend.ws is not None) == bool(u.get("online")):
                ms = (time.monotonic() - friend.changed_at) * 1000
            self.event(f"presence {state}", ms)
            SHARED.count(f"presence_{state}")

    # ---- sending -------------------------------------------------------------------------------
    def send_raw(self, frame: str) -> bool:
        ws = self.ws
        if ws is None:
            return False
        try:
            ws.send(frame)
            return True
        except (OSError, websocket.WebSocketException):
            return False

    @task
    def tick(self) -> None:
        if time.monotonic() >= self.session_end:
            self.take_a_break()
        if not SHARED.sending or self.ws is None or not self.synced.is_set():
            return
        dm = random.random() < MODEL.dm_share or not self.groups
        conv = random.choice(self.convs if dm or not self.groups else self.groups) if self.convs else None
        if conv is None:
            return
        kind = "dm" if conv.startswith("dm.") else "group"
        cid = f"{self.cid_prefix}-{next(self.cids)}"
        body = f"{time.time_ns()} {cid} ".ljust(MODEL.body_bytes, ".")
        frame = wire.send(cid, conv, body)
        self.pending[cid] = (conv, kind, time.monotonic(), frame, False)
        self.send_raw(frame)  # a failed write is resent after the reconnect

    def check_pending(self) -> None:
        now = time.monotonic()
        for cid, (conv, kind, t0, frame, late) in list(self.pending.items()):
            if not late and now - t0 > ACK_TIMEOUT_S and self.synced.is_set():
                self.pending[cid] = (conv, kind, t0, frame, True)
                self.event("send timeout", error=TimeoutError(f"no ack for {cid} in {ACK_TIMEOUT_S:.0f} s"))

    # ---- upkeep --------------------------------------------------------------------------------
    def ticker(self) -> None:
        """Once a second: ack the newest cursor offered if it changed; ping every heartbeat; notice a silent node."""
        last_ping = time.monotonic()
        while not self.stopping:
            gevent.sleep(1.0)
            now = time.monotonic()
            if self.ws is None or not self.synced.is_set():
                continue
            if self.cursor is not None and self.cursor != self.acked_cursor:
                self.acked_cursor = self.cursor
                self.send_raw(wire.ack(self.cursor))
            if now - last_ping >= self.sc.heartbeat_s:
                last_ping = now
                ts = time.time_ns() // 1_000_000
                self.ping_sent[ts] = now
                self.send_raw(wire.ping(ts))
            if now - self.last_rx > 3 * self.sc.heartbeat_s + 5:
                log.warning("%s: nothing from the node for %.0f s; reconnecting", self.me, now - self.last_rx)
                self.close_ws(1000)  # the reader sees the close and reconnects

    def new_session(self) -> None:
        s = self.sc.session_s
        self.session_end = time.monotonic() + random.expovariate(1 / s) if s > 0 else float("inf")

    def take_a_break(self) -> None:
        """Presence churn: the device goes offline for a while, then comes back through /v1/place."""
        self.offline = True
        self.changed_at = time.monotonic()
        SHARED.ledger.away(self.me)
        self.close_ws(1000)
        gevent.sleep(random.expovariate(1 / max(self.sc.offline_s, 0.1)))
        self.offline = False
        self.changed_at = time.monotonic()
        self.connect_any(self.place())
        SHARED.count("sessions")
        self.new_session()
