"""The cluster page's health panel: processes from run.json or the settings, their state and error rates
(discovery/health.py), NATS/JetStream from the JetStream API's answers (discovery/jetstream.py), alerts
from Prometheus' /api/v1/alerts (discovery/alerts.py). Bodies below follow those APIs' documented JSON."""

import pytest
from parley.discovery.alerts import alerts_view, parse_alerts
from parley.discovery.health import Watched, process_health, processes_summary, watched
from parley.discovery.jetstream import bus_health, kind_of, peer_state
from parley.discovery.traffic import API_5XX, History, Reading
from parley.tools.runfile import Process, RunInfo

from parley.settings import Settings


def test_without_run_json_one_of_each_role_on_the_settings_ports_and_push_off_without_credentials():
    s = Settings(api_port=1, archiver_port=2, presence_port=3, pusher_port=4)
    assert [(w.name, w.url, w.expected) for w in watched(s, None)] == [
        ("api", "http://127.0.0.1:1", True), ("archiver", "http://127.0.0.1:2", True),
        ("presence", "http://127.0.0.1:3", True), ("pusher", "http://127.0.0.1:4", False)]
    assert watched(s.replace(fcm_credentials="/x.json"), None)[-1].expected


def test_run_json_names_every_worker_parley_up_started():
    procs = [Process("node1", "node", 10, 9001, "http://127.0.0.1:9001"),
             Process("archiver2", "archiver", 11, 8175, "http://127.0.0.1:8175"),
             Process("archiver", "archiver", 12, 8075, "http://127.0.0.1:8075"),
             Process("api", "api", 13, 8080, "http://127.0.0.1:8080"),
             Process("nats", "nats", 14, 4222, "nats://127.0.0.1:4222")]
    run = RunInfo(up_pid=1, started=0.0, urls={}, processes=procs)
    assert [(w.name, w.metrics_url) for w in watched(Settings(), run)] == [
        ("api", "http://127.0.0.1:8080/metrics"), ("archiver", "http://127.0.0.1:8075/metrics"),
        ("archiver2", "http://127.0.0.1:8175/metrics")]


def test_process_rows_states_errors_store_and_gauges():
    h = History()
    h.record("api", Reading(0, {API_5XX: 1, "parley_store_up": 1}))
    h.record("api", Reading(2, {API_5XX: 5, "parley_store_up": 0}))
    h.record("archiver", None)
    h.record("presence", Reading(1, {"parley_presence_online": 7}))
    h.record("pusher", None)
    procs = (Watched("api", "api", "u"), Watched("archiver", "archiver", "u"), Watched("presence", "presence", "u"),
             Watched("pusher", "pusher", "u", False), Watched("archiver2", "archiver", "u"))
    rows = [process_health(h, w) for w in procs]
    assert [(r["name"], r["state"]) for r in rows] == [
        ("api", "up"), ("archiver", "down"), ("presence", "up"), ("pusher", "off"), ("archiver2", "waiting")]
    assert rows[0]["errors_per_s"] == 2 and rows[0]["store"] == "down"
    assert rows[2]["gauges"] == {"online": 7} and rows[2]["errors_per_s"] is None
    assert processes_summary(rows) == {"up": 2, "down": 1, "off": 1, "waiting": 1}


def stream(name, leader="n1", replicas=(), r=1, messages=3, bytes_=300, clustered=True):
    info = {"config": {"name": name, "num_replicas": r},
            "state": {"messages": messages, "bytes": bytes_, "first_seq": 1, "last_seq": messages, "consumer_count": 1}}
    if clustered:
        info["cluster"] = {"name": "c", "leader": leader,
                           "replicas": [{"name": n, "current": cur, "offline": off, "active": 1_500_000_000, "lag": lag}
                                        for n, cur, off, lag in replicas]}
    return info


@pytest.mark.parametrize("name, kind", [("MSG_0", "messages"), ("MSG", "messages"), ("KV_nodes", "bucket"),
                                        ("MSGX", "other"), ("OTHER", "other")])
def test_stream_kinds(name, kind):
    assert kind_of(name, "MSG") == kind


def test_a_healthy_r3_cluster():
    streams = [stream("KV_nodes", "n2", [("n1", True, False, 0), ("n3", True, False, 0)], r=3),
               stream("MSG_1", "n1", [("n2", True, False, 0), ("n3", True, False, 0)], r=3),
               stream("MSG_0", "n2", [("n1", True, False, 0), ("n3", True, False, 0)], r=3)]
    view = bus_health(streams, {"storage": 1234, "memory": 56}, {"server_name": "n1", "version": "2.11"}, "MSG")
    assert view["state"] == "ok" and view["storage_bytes"] == 1234 and view["memory_bytes"] == 56
    assert [s["name"] for s in view["streams"]] == ["MSG_0", "MSG_1", "KV_nodes"]
    msg0 = view["streams"][0]
    assert msg0["leader"] == "n2" and msg0["replicas"] == 3 and msg0["bytes"] == 300
    assert [(p["name"], p["role"], p["state"], p["active_s"]) for p in msg0["peers"]] == [
        ("n2", "leader", "current", 0.0), ("n1", "replica", "current", 1.5), ("n3", "replica", "current", 1.5)]
    assert [(s["name"], s["leads"], s["replicates"], s["state"], s["connected"]) for s in view["servers"]] == [
        ("n1", 1, 2, "ok", True), ("n2", 2, 1, "ok", False), ("n3", 0, 3, "ok", False)]


def test_an_offline_replica_or_no_leader_is_degraded():
    lagging = [stream("MSG_0", "n1", [("n2", False, False, 40), ("n3", False, True, 0)], r=3)]  # heard 1.5 s ago
    view = bus_health(lagging, {}, {"server_name": "n1"}, "MSG")
    assert view["state"] == "degraded"
    assert {s["name"]: s["state"] for s in view["servers"]} == {"n1": "ok", "n2": "catching up", "n3": "offline"}
    assert view["streams"][0]["peers"][1]["lag"] == 40
    electing = [stream("MSG_0", None, [("n2", True, False, 0)], r=3)]
    assert bus_health(electing, {}, {}, "MSG")["state"] == "degraded"


@pytest.mark.parametrize("peer, state", [
    ({"current": True, "active": 10_000_000_000}, "current"),
    ({"current": False, "active": 1_000_000_000, "lag": 5}, "catching up"),
    # what nats-server 2.15 answers 10 s after a replica's server was killed: not flagged offline yet
    ({"current": False, "active": 10_096_585_032}, "offline"),
    ({"current": False, "offline": True}, "offline"),
])
def test_peer_states(peer, state):
    assert peer_state(peer) == state


def test_a_single_server_leads_every_stream_and_an_api_that_did_not_answer_is_down():
    single = [stream("MSG_0", clustered=False)]
    view = bus_health(single, {"storage": 9}, {"server_name": "solo"}, "MSG")
    assert view["state"] == "ok" and view["streams"][0]["leader"] == "solo"
    assert [(s["name"], s["leads"]) for s in view["servers"]] == [("solo", 1)]
    down = bus_health(None, None, {"server_name": "solo"}, "MSG", "nats: timeout")
    assert (down["state"], down["error"], down["streams"]) == ("down", "nats: timeout", [])
    assert bus_health(None, None, {}, "MSG")["state"] == "waiting"  # not asked yet


ALERTS = {"status": "success", "data": {"alerts": [
    {"labels": {"alertname": "ParleyArchiverLagGrowing", "severity": "warning"},
     "annotations": {"summary": "archiver lag growing"}, "state": "pending",
     "activeAt": "2026-12-02T17:00:00Z", "value": "1e+02"},
    {"labels": {"alertname": "ParleyProcessDown", "severity": "critical", "instance": "127.0.0.1:8075",
                "job": "parley"},
     "annotations": {"description": "a process is down"}, "state": "firing",
     "activeAt": "2026-12-02T17:01:02.5Z", "value": "0e+00"}]}}


def test_prometheus_alerts_parse_firing_first_with_their_labels():
    first, second = parse_alerts(ALERTS)
    assert (first.name, first.state, first.severity, first.summary, first.description) == (
        "ParleyProcessDown", "firing", "critical", "", "a process is down")
    assert first.labels == {"instance": "127.0.0.1:8075", "job": "parley"}
    assert first.since == pytest.approx(1796230862.5)
    assert (second.name, second.state) == ("ParleyArchiverLagGrowing", "pending")


@pytest.mark.parametrize("url, body, error, state", [
    ("", None, None, "off"),
    ("http://p", None, None, "waiting"),
    ("http://p", None, "HTTP 502", "unreachable"),
    ("http://p", {"status": "error", "error": "x"}, None, "unreachable"),
    ("http://p", {"status": "success", "data": {"alerts": []}}, None, "ok"),
    ("http://p", {"status": "success", "data": {"alerts": ALERTS["data"]["alerts"][:1]}}, None, "ok"),  # pending only
    ("http://p", ALERTS, None, "firing"),
])
def test_alert_panel_states(url, body, error, state):
    assert alerts_view(url, body, error)["state"] == state
