"""The metrics ops/ alerts on beyond test_metrics.py's (the store probe's ``parley_store_up`` and
``parley_store_probe_seconds``, the pusher's consumer lag ``parley_pusher_lag``), and a real Prometheus
(Debian's) running ops/prometheus.yml against a test cluster: every process scraped, every alert loaded."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from parley.tools import promtargets
from parley.tools.fcm_stub import FcmStub, service_account_file
from parley.tools.up import run_info
from prometheus_client import CollectorRegistry

from parley.runtime import StoreProbe
from parley.store.sqlite import SQLiteStore
from tests.integration.cluster import Cluster, free_port
from tests.integration.conftest import World
from tests.integration.test_metrics import value
from tests.poll import eventually

pytestmark = pytest.mark.integration
OPS = Path(__file__).resolve().parents[2] / "ops"
ALERTS = {r["alert"] for g in yaml.safe_load((OPS / "alerts.yml").read_text())["groups"] for r in g["rules"]}
GRACE_S = 7.0  # longer than the lag's 5 s refresh, so one refresh sees the batch waiting out the grace


async def test_store_probe_publishes_whether_the_store_answers(tmp_path: Path):
    store, registry = SQLiteStore(str(tmp_path / "probe.db")), CollectorRegistry()
    await store.migrate()
    probe = StoreProbe(store, every_s=0.05, registry=registry)
    probe.start()
    try:
        await eventually(lambda: _sample(registry, "parley_store_probe_seconds_count", lambda v: v >= 2), timeout=5,
                         what="two probes timed")
        assert registry.get_sample_value("parley_store_up") == 1
        await store.close()  # from here every read fails, as with a store that went away
        await eventually(lambda: _sample(registry, "parley_store_up", lambda v: v == 0), timeout=5,
                         what="the probe saying the store is down")
        assert not probe.ok
    finally:
        await probe.stop()


async def _sample(registry: CollectorRegistry, name: str, test) -> bool:
    got = registry.get_sample_value(name)
    return got is not None and test(got)


@pytest.fixture(scope="module")
def push_cluster(tmp_path_factory: pytest.TempPathFactory, fcm: FcmStub) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("ops-push-cluster")
    key = service_account_file(root, fcm.token_uri)
    c = Cluster(root, nodes=1, fcm_credentials=str(key), fcm_endpoint=fcm.url, push_grace_s=GRACE_S,
                pusher_port=free_port())
    try:
        c.start()
        c.start_pusher()
        yield c
    finally:
        c.shutdown()


async def test_pusher_lag_counts_messages_until_their_pushes_are_done(push_cluster, http: aiohttp.ClientSession,
                                                                       fcm: FcmStub):
    world = World(push_cluster, http)
    url = f"http://127.0.0.1:{push_cluster.settings.pusher_port}/metrics"

    async def lag_is(n: int) -> bool:
        async with http.get(url) as resp:
            return value(await resp.text(), "parley_pusher_lag") == n

    try:
        alice, bob = await world.person("alice"), await world.person("bob")
        conv = await alice.befriend(bob)
        login = await bob.login()  # bob has a push token and no device online: every message is pushed
        token = f"fcm-token-{login['device_id']}-" + "x" * 120
        await world.api.call("PUT", f"/v1/devices/{login['device_id']}/push-token", login["token"],
                             {"platform": "android", "token": token})
        a = await alice.device(node=0)
        for i in range(3):
            await a.send(conv, f"m{i}")
        # held for the grace: handed out, not yet acked (a lag of 3 is there to be seen only until the grace ends)
        await eventually(lambda: lag_is(3), timeout=GRACE_S + 1, every=0.2, what="a pusher lag of 3")
        await eventually(lambda: lag_is(0), timeout=GRACE_S + 10, every=0.2, what="a pusher lag of 0")
        assert len(fcm.delivered(token)) == 3
        async with http.get(url) as resp:
            page = await resp.text()
        assert value(page, "parley_store_up") == 1 and value(page, "parley_store_probe_seconds_count") >= 1
    finally:
        await world.close()


def prometheus_config(cluster: Cluster, root: Path, source: str = "prometheus.yml") -> Path:
    """ops/prometheus.yml (or ``source``) reading the file_sd targets written for the test cluster (as parley up
    writes them into its run dir), with a 1 s scrape; a job's CA is the cluster's (``<run dir>/tls/ca.pem``)."""
    config = yaml.safe_load((OPS / source).read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(OPS / rules) for rules in config["rule_files"]]
    promtargets.write(root, run_info(cluster))
    jobs = set(promtargets.JOBS.values())
    for job in config["scrape_configs"]:
        job["file_sd_configs"] = [{"files": [str(promtargets.file_of(root, job["job_name"]))]}]
        if "tls_config" in job:
            assert cluster.tls is not None and job["tls_config"]["ca_file"] == "../.parley/tls/ca.pem"
            job["tls_config"]["ca_file"] = cluster.tls.ca
        jobs.discard(job["job_name"])
    assert not jobs, f"ops/{source} lacks jobs {sorted(jobs)}"
    path = root / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


class Prometheus:
    """Debian's prometheus on a config, its HTTP API read with ``get``."""

    def __init__(self, config: Path, tmp_path: Path, http: aiohttp.ClientSession) -> None:
        exe = shutil.which("prometheus") or "/usr/bin/prometheus"
        if not Path(exe).exists():
            pytest.fail("prometheus not found: install Debian's prometheus package (ops/test-deps.sh does)")
        port, self.http, self.log_path = free_port(), http, tmp_path / "prometheus.log"
        self.log = open(self.log_path, "wb")  # closed in stop, after the process
        self.proc = subprocess.Popen([exe, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                                      f"--web.listen-address=127.0.0.1:{port}"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.api = f"http://127.0.0.1:{port}/api/v1"
        self.health: dict[str, str] = {}

    async def get(self, path: str) -> dict:
        try:
            async with self.http.get(self.api + path) as resp:
                return dict((await resp.json())["data"]) if resp.status == 200 else {}
        except aiohttp.ClientError:
            return {}

    async def all_up(self, count: int) -> None:
        async def up() -> bool:
            self.health.clear()
            targets = (await self.get("/targets")).get("activeTargets", [])
            self.health.update({f'{t["labels"]["job"]} {t["labels"]["instance"]}': t["health"] + t["lastError"]
                                for t in targets})
            return len(self.health) == count and set(self.health.values()) == {"up"}

        try:
            await eventually(up, timeout=20, every=0.2, what="every target up in Prometheus")
        except AssertionError as err:
            raise AssertionError(f"{err}: targets {self.health}; {self.log_path.read_text()[-2000:]}") from None

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


async def test_prometheus_scrapes_every_process_and_loads_the_alerts(push_cluster, http: aiohttp.ClientSession,
                                                                      tmp_path: Path):
    prometheus = Prometheus(prometheus_config(push_cluster, tmp_path), tmp_path, http)
    try:
        await prometheus.all_up(6)  # one node, five other roles
        rules = [r for g in (await prometheus.get("/rules"))["groups"] for r in g["rules"]]
        assert len(rules) == len(ALERTS) and {r["name"] for r in rules} == ALERTS
        assert all(r["type"] == "alerting" and r["health"] in ("ok", "unknown") for r in rules), rules
        lag = (await prometheus.get("/query?query=parley_pusher_lag"))["result"]
        assert [x["metric"]["job"] for x in lag] == ["parley-pusher"]
    finally:
        prometheus.stop()


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("promtls"), nodes=1, tls=True)
    try:
        c.start()
        yield c
    finally:
        c.shutdown()


async def test_prometheus_scrapes_a_tls_cluster_over_https_with_its_ca(tls_cluster, http: aiohttp.ClientSession,
                                                                        tmp_path: Path):
    """ops/prometheus-tls.yml: the node, the API and discovery over https (checked against the run dir's CA),
    the workers over plain HTTP, as ``parley up --tls`` runs them."""
    prometheus = Prometheus(prometheus_config(tls_cluster, tmp_path, "prometheus-tls.yml"), tmp_path, http)
    try:
        await prometheus.all_up(5)  # one node, the API, discovery, the archiver and the presence worker
        schemes = {t["labels"]["job"]: t["scrapeUrl"].split(":")[0]
                   for t in (await prometheus.get("/targets"))["activeTargets"]}
        assert schemes == {"parley-node": "https", "parley-api": "https", "parley-discovery": "https",
                           "parley-archiver": "http", "parley-presence": "http"}
    finally:
        prometheus.stop()
