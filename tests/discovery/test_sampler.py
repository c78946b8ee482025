"""discovery/sampler.py: which processes it samples (run.json first, else the settings), and that the page's
requests only read its cache — sampling is the timer's job alone, so watching the page costs the cluster
the same whether one browser or fifty poll it."""

import os
import time

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from parley.discovery.app import NodeDirectory, make_app
from parley.discovery.sampler import TrafficSampler
from parley.tools import runfile
from parley.tools.runfile import Process, RunInfo

from parley.registry import NodeRecord
from parley.settings import Settings
from tests.integration.cluster import free_port


def record(id: str, port: int) -> NodeRecord:
    now = time.time()
    return NodeRecord(id, f"ws://127.0.0.1:{port}/ws", "local", 0, 10, False, now, now - 5)


def test_targets_are_the_nodes_and_the_processes_run_json_names(tmp_path):
    settings = Settings(run_dir=str(tmp_path), api_port=1, archiver_port=2, presence_port=3, pusher_port=4)
    sampler = TrafficSampler(settings, lambda: [record("node1", 9001)])
    assert set(sampler.targets(time.time())) == {"node1", "api", "archiver", "presence", "pusher"}
    assert sampler.targets(time.time())["archiver"][0] == "http://127.0.0.1:2/metrics"
    procs = [Process("api", "api", 1, 8180, "http://127.0.0.1:8180"),
             Process("archiver", "archiver", 1, 8175, "http://127.0.0.1:8175"),
             Process("archiver2", "archiver", 1, 8275, "http://127.0.0.1:8275")]
    runfile.write(tmp_path, RunInfo(up_pid=os.getpid(), started=time.time(), urls={}, processes=procs))
    targets = sampler.targets(time.time())
    assert set(targets) == {"node1", "api", "archiver", "archiver2"}  # no presence, no pusher started
    assert targets["archiver2"][0] == "http://127.0.0.1:8275/metrics"
    assert targets["node1"][0] == "http://127.0.0.1:9001/metrics"
    runfile.path_in(tmp_path).write_text("{not json")  # a broken file: back to the configured ports
    assert set(sampler.targets(time.time())) == {"node1", "api", "archiver", "presence", "pusher"}


async def test_the_page_reads_what_the_timer_sampled_and_asks_nobody_itself(tmp_path):
    closed = free_port()  # nothing listens there: every process and Prometheus read as not answering
    settings = Settings(run_dir=str(tmp_path), api_port=closed, archiver_port=closed, presence_port=closed,
                        pusher_port=closed, prometheus_url=f"http://127.0.0.1:{closed}")
    directory = NodeDirectory()
    directory.apply("node1", record("node1", closed).as_json())
    sampler = TrafficSampler(settings, lambda: directory.nodes.values(), timeout_s=1.0)
    async with TestClient(TestServer(make_app(settings, directory, sampler=sampler))) as client:
        async with aiohttp.ClientSession() as session:
            await sampler.sample(session)
        rings = {t: len(r) for t, r in sampler.history.rings.items()}
        for _ in range(5):
            resp = await client.get("/v1/cluster")
            assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
            body = await resp.json()
        assert {t: len(r) for t, r in sampler.history.rings.items()} == rings  # no request scraped anything
        assert [(n["id"], n["state"], n["scraped"]) for n in body["nodes"]] == [("node1", "eligible", False)]
        health = body["health"]
        assert {p["name"]: p["state"] for p in health["processes"]} == {
            "api": "down", "archiver": "down", "presence": "down", "pusher": "off"}
        assert health["alerts"]["state"] == "unreachable" and health["alerts"]["url"].endswith(str(closed))
        assert health["nats"]["state"] == "down"  # this sampler was given no NATS connection
        alone = await (await client.get("/v1/cluster/health")).json()
        assert alone["processes"] == health["processes"]
        assert sampler.wanted_at > 0  # the page asked: the timer samples while it is watched
