"""Where the cluster is: the URLs an operator's command talks to (``parley status``, ``parley node drain``,
``parley bus``, the load tests, the FCM demo).

Each URL comes from the first of: a flag given on the command line (``--discovery-url``, ``--nats-url``,
``--api``); a ``PARLEY_*`` variable that is set (``PARLEY_DISCOVERY_URL``, ``PARLEY_NATS_URL``,
``PARLEY_ARCHIVER_PORT``…, as a hand-made deployment configures its processes); ``<run dir>/run.json``
of a live ``parley up`` (``--run-dir``, default ``PARLEY_RUN_DIR`` or ``.parley``); the defaults
``parley up`` listens on. The NATS credentials of operators' commands: ``PARLEY_NATS_USER`` (or token, or
.creds) when set, else the ``ops`` user's file that run.json names (or the run dir holds).
``resolve`` is that rule alone (pure); ``locate`` reads the run file for it.
A command that finds nothing answering where the defaults say prints ``no_cluster`` and exits 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from parley.tools import busauth, runfile
from parley.tools.runfile import RunInfo

from parley.settings import Settings


@dataclass(frozen=True)
class Where:
    api: str  # http://host:port
    discovery: str
    nats: str  # a comma list with several servers
    archiver: str  # the first archiver's health/metrics base URL
    presence: str  # the first presence worker's
    run_dir: str
    found: bool  # run.json of a live ``parley up`` named the cluster
    given: frozenset[str] = frozenset()  # the URLs a flag or a variable named: "api", "discovery", "nats"…
    # the CA to trust over TLS: --ca, else PARLEY_TLS_CA, else run.json's (``parley up --tls``) when the URLs are
    ca: str = ""
    nats_credentials: str = ""  # the ``ops`` user's credentials file (run.json's, else the run dir's)

    def metrics(self, base: str) -> str:
        return base.rstrip("/") + "/metrics"

    def guessed(self, key: str) -> bool:
        """Only the defaults say ``key`` is there: nothing named it."""
        return not self.found and key not in self.given

    def not_answering(self, key: str, flag: str) -> str:
        """What to say when ``key`` (its URL in the ``key`` field) did not answer."""
        if self.guessed(key):
            return no_cluster(self, flag)
        whence = "" if key in self.given else f" (as run.json in {self.run_dir} says)"
        return f"{key} at {getattr(self, key)} is not answering{whence}"


def _first_of_role(info: RunInfo, role: str) -> str | None:
    procs = info.of_role(role)
    return procs[0].url if procs else None


def resolve(env: Mapping[str, str], info: RunInfo | None, run_dir: str, *, api: str | None = None,
            discovery: str | None = None, nats: str | None = None, ca: str | None = None) -> Where:
    """Flags (the keyword arguments) over variables over run.json over defaults, URL by URL."""
    base = Settings.from_env({k: v for k, v in env.items() if k.startswith("PARLEY_")})
    urls = info.urls if info is not None else {}

    given: set[str] = set()

    def pick(key: str, flag: str | None, names: tuple[str, ...], from_run: str | None, default: str) -> str:
        if flag:
            given.add(key)
            return flag
        if any(env.get(n) for n in names):
            given.add(key)
            return default  # ``default`` is what the variables make of it (``base``)
        return from_run or default

    def worker(role: str) -> str:
        host, port = getattr(base, f"{role}_host"), getattr(base, f"{role}_port")
        return pick(role, None, (f"PARLEY_{role.upper()}_HOST", f"PARLEY_{role.upper()}_PORT"),
                    _first_of_role(info, role) if info else None, f"http://{host}:{port}")

    return Where(
        api=pick("api", api, ("PARLEY_API_HOST", "PARLEY_API_PORT"), urls.get("api"),
                 f"http://{base.api_host}:{base.api_port}").rstrip("/"),
        discovery=pick("discovery", discovery, ("PARLEY_DISCOVERY_URL",), urls.get("discovery"),
                       base.discovery_url).rstrip("/"),
        nats=pick("nats", nats, ("PARLEY_NATS_URL",), urls.get("nats"), base.nats_url),
        archiver=worker("archiver"),
        presence=worker("presence"),
        run_dir=run_dir,
        found=info is not None,
        given=frozenset(given),
        ca=ca or env.get("PARLEY_TLS_CA") or (info.tls_ca if info and not given else ""),
        nats_credentials=info.nats_credentials if info is not None else "",
    )


def locate(env: Mapping[str, str], run_dir: str | Path | None = None, **flags: str | None) -> Where:
    """``resolve`` with the run dir's run.json (absent or stale: None)."""
    where = str(run_dir or env.get("PARLEY_RUN_DIR") or ".parley")
    found = resolve(env, runfile.read(where), where, **flags)
    ops = Path(where) / busauth.DIR / f"{busauth.OPS}.json"  # a run dir whose `parley up` is gone or older
    if not found.nats_credentials and ops.exists():
        return replace(found, nats_credentials=str(ops))
    return found


def no_cluster(where: Where, flag: str) -> str:
    """The one line a command prints when no cluster answers where it looked."""
    return f"no cluster found in {where.run_dir} (start one with `make run`), or pass --run-dir DIR or {flag} URL"
