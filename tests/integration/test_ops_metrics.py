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


def prometheus_config(cluster: Cluster, root: Path) -> Path:
    """ops/prometheus.yml reading the file_sd targets written for the test cluster (as parley up writes them
    into its run dir), with a 1 s scrape."""
    config = yaml.safe_load((OPS / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(OPS / rules) for rules in config["rule_files"]]
    promtargets.write(root, run_info(cluster))
    jobs = set(promtargets.JOBS.values())
    for job in config["scrape_configs"]:
        job["file_sd_configs"] = [{"files": [str(promtargets.file_of(root, job["job_name"]))]}]
        jobs.discard(job["job_name"])
    assert not jobs, f"ops/prometheus.yml lacks jobs {sorted(jobs)}"
    path = root / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


async def test_prometheus_scrapes_every_process_and_loads_the_alerts(push_cluster, http: aiohttp.ClientSession,
                                                                      tmp_path: Path):
    exe = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(exe).exists():
        pytest.fail("prometheus not found: install Debian's prometheus package (ops/test-deps.sh does)")
    port = free_port()
    log = open(tmp_path / "prometheus.log", "wb")  # closed below, after the process
    proc = subprocess.Popen([exe, f"--config.file={prometheus_config(push_cluster, tmp_path)}",
                             f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{port}/api/v1"

    async def get(path: str) -> dict:
        try:
            async with http.get(api + path) as resp:
                return dict((await resp.json())["data"]) if resp.status == 200 else {}
        except aiohttp.ClientError:
            return {}

    health: dict[str, str] = {}

    async def all_up() -> bool:
        health.clear()
        targets = (await get("/targets")).get("activeTargets", [])
        health.update({f'{t["labels"]["job"]} {t["labels"]["instance"]}': t["health"] for t in targets})
        return len(health) == 6 and set(health.values()) == {"up"}  # one node, five other roles

    try:
        try:
            await eventually(all_up, timeout=20, every=0.2, what="every target up in Prometheus")
        except AssertionError as err:
            tail = (tmp_path / "prometheus.log").read_text()[-2000:]
            raise AssertionError(f"{err}: targets {health}; {tail}") from None
        rules = [r for g in (await get("/rules"))["groups"] for r in g["rules"]]
        assert len(rules) == len(ALERTS) and {r["name"] for r in rules} == ALERTS
        assert all(r["type"] == "alerting" and r["health"] in ("ok", "unknown") for r in rules), rules
        lag = (await get("/query?query=parley_pusher_lag"))["result"]
        assert [x["metric"]["job"] for x in lag] == ["parley-pusher"]
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
