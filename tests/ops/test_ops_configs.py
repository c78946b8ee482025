"""ops/'s Prometheus config, alert rules and Grafana dashboard: valid for promtool, alerts proven by
promtool's own rule tests, and every metric they name defined in the code (so they cannot drift from it).

promtool comes from Debian's ``prometheus`` package, which ops/test-deps.sh installs before the tests;
without it these tests fail rather than skip.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from parley.tools import localca, promtargets
from parley.tools.cluster import TLS_ROLES
from parley.tools.runfile import Process, RunInfo

ROOT = Path(__file__).resolve().parents[2]
OPS = ROOT / "ops"
CONFIG, RULES, RULE_TESTS = OPS / "prometheus.yml", OPS / "alerts.yml", OPS / "alerts_test.yml"
TLS_CONFIG = OPS / "prometheus-tls.yml"  # parley up --tls: https and the run dir's CA for the roles serving TLS
DASHBOARD = OPS / "grafana" / "parley.json"
CODE_DIRS = ("parley", "node", "api", "discovery", "workers")
METRIC = re.compile(r"\b(Counter|Gauge|Histogram|Summary)\(\s*\"([a-zA-Z_:][a-zA-Z0-9_:]*)\"")
USED = re.compile(r"\bparley_[a-z0-9_]+")
ROWS = {"Edge nodes", "Delivery & latency", "Store & archiver", "Presence", "Push", "Discovery", "API",
        "Live rooms"}


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool") or "/usr/bin/promtool"
    if not Path(exe).exists():
        pytest.fail("promtool not found: install Debian's prometheus package (ops/test-deps.sh does, "
                    "e.g. sudo apt-get install prometheus)")
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=60, cwd=ROOT)


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def defined_metrics() -> set[str]:
    """Every sample name the processes expose, from the metric definitions in the code."""
    names = set()
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            for kind, name in METRIC.findall(path.read_text()):
                if kind == "Counter":
                    names.add(name.removesuffix("_total") + "_total")
                elif kind in ("Histogram", "Summary"):
                    names.update(name + suffix for suffix in ("_bucket", "_sum", "_count"))
                else:
                    names.add(name)
    return names


def alert_rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def queries(dash: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def test_prometheus_config_is_valid_and_loads_the_rules():
    out = ok(promtool("check", "config", CONFIG))
    assert "1 rule files found" in out, out


def test_the_tls_config_is_valid_and_loads_the_rules():
    out = ok(promtool("check", "config", TLS_CONFIG))
    assert "1 rule files found" in out, out


def test_the_tls_config_is_the_plain_one_with_https_and_the_ca_for_the_roles_that_serve_tls():
    plain, tls = yaml.safe_load(CONFIG.read_text()), yaml.safe_load(TLS_CONFIG.read_text())
    run_dir_ca = Path("..", ".parley", *Path(localca.files_in(".parley/tls").ca).parts[-2:])  # from ops/
    https = {promtargets.JOBS[role] for role in TLS_ROLES}
    for job in tls["scrape_configs"]:
        serves_tls = job["job_name"] in https
        assert (job.pop("scheme", "http"), job.pop("tls_config", None)) == (
            ("https", {"ca_file": str(run_dir_ca)}) if serves_tls else ("http", None)), job["job_name"]
    assert tls == plain


def test_alert_rules_are_valid():
    ok(promtool("check", "rules", RULES))


def test_alert_rules_fire_on_broken_input_and_stay_quiet_on_healthy_input():
    ok(promtool("test", "rules", RULE_TESTS))


def test_every_alert_is_tested_both_ways():
    cases = [c for t in yaml.safe_load(RULE_TESTS.read_text())["tests"] for c in t.get("alert_rule_test", [])]
    for rule in alert_rules():
        mine = [c for c in cases if c["alertname"] == rule["alert"]]
        assert any(c.get("exp_alerts") for c in mine), f"{rule['alert']}: no test where it fires"
        assert any(not c.get("exp_alerts") for c in mine), f"{rule['alert']}: no test where it stays quiet"


def test_every_alert_waits_says_how_bad_and_tells_the_operator_what_to_do():
    for rule in alert_rules():
        assert rule.get("for"), rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"] and len(rule["annotations"]["description"]) > 80, rule["alert"]


def test_the_config_scrapes_every_role_from_the_files_parley_up_writes():
    jobs = {job["job_name"]: [f for sd in job["file_sd_configs"] for f in sd["files"]]
            for job in yaml.safe_load(CONFIG.read_text())["scrape_configs"]}
    assert jobs == {job: [f"../.parley/prometheus/{job}.json"] for job in promtargets.JOBS.values()}
    assert all("static_configs" not in job for job in yaml.safe_load(CONFIG.read_text())["scrape_configs"])


def test_the_config_reads_the_targets_of_a_cluster_on_other_ports(tmp_path: Path):
    """ops/ beside a run dir .parley whose parley up used other ports: promtool finds every file and target."""
    (tmp_path / "ops").mkdir()
    for f in (CONFIG, RULES):
        shutil.copy(f, tmp_path / "ops" / f.name)
    procs = [Process("node1", "node", 1, 9190, "http://127.0.0.1:9190"), Process("api", "api", 2, 9180,
             "http://127.0.0.1:9180"), Process("discovery", "discovery", 3, 9170, "http://127.0.0.1:9170"),
             Process("archiver", "archiver", 4, 9175, "http://127.0.0.1:9175"),
             Process("presence", "presence", 5, 9176, "http://127.0.0.1:9176")]
    promtargets.write(tmp_path / ".parley", RunInfo(up_pid=1, started=0.0, urls={}, processes=procs))
    exe = shutil.which("promtool") or "/usr/bin/promtool"
    done = subprocess.run([exe, "check", "config", "ops/prometheus.yml"], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    out = ok(done)
    assert "SUCCESS" in out and "WARNING" not in out, out  # a missing file_sd file is a warning
    node = json.loads((tmp_path / ".parley" / "prometheus" / "parley-node.json").read_text())
    assert node == [{"targets": ["127.0.0.1:9190"], "labels": {}}]


def test_dashboard_and_rules_name_only_metrics_the_code_defines():
    defined = defined_metrics()
    assert {"parley_node_connections", "parley_pushes_total", "parley_archiver_write_seconds_bucket"} <= defined
    used = {
        "dashboard": set(USED.findall(" ".join(queries(dashboard())))),
        "alerts.yml": {m for r in alert_rules() for m in USED.findall(r["expr"])},
        "alerts_test.yml": {m for t in yaml.safe_load(RULE_TESTS.read_text())["tests"] for s in t["input_series"]
                            for m in USED.findall(s["series"])},
    }
    for where, names in used.items():
        assert names, where
        assert not names - defined, f"{where} names metrics no process defines: {sorted(names - defined)}"


def test_dashboard_covers_the_metrics_that_matter():
    used = set(USED.findall(" ".join(queries(dashboard()))))
    for name in ("parley_node_connections", "parley_node_users", "parley_node_frames_in_total",
                 "parley_node_frames_out_total", "parley_node_messages_published_total",
                 "parley_node_messages_delivered_total", "parley_node_delivery_seconds_bucket",
                 "parley_node_publish_seconds_bucket", "parley_node_send_wait_seconds_bucket",
                 "parley_archiver_lag", "parley_pusher_lag",
                 "parley_archiver_write_seconds_bucket", "parley_node_errors_total", "parley_presence_online",
                 "parley_discovery_placements_total", "parley_pushes_total", "parley_api_requests_total",
                 "parley_live_room_viewers", "parley_live_room_messages_in_total",
                 "parley_live_room_messages_out_total", "parley_live_room_blocked_total",
                 "parley_live_room_masked_total", "parley_live_room_delivery_seconds_bucket"):
        assert name in used, name


def test_dashboard_is_importable():
    dash = dashboard()
    assert dash["schemaVersion"] >= 36 and dash["uid"] and dash["title"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource" and variables["DS_PROMETHEUS"]["query"] == "prometheus"
    panels = dash["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    assert {p["title"] for p in panels if p["type"] == "row"} >= ROWS
    for p in panels:
        g = p["gridPos"]
        assert g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["y"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        if p["type"] == "row":
            continue
        assert p["type"] in ("timeseries", "stat", "table"), p["title"]
        assert p["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]
        assert p["fieldConfig"]["defaults"]["unit"], p["title"]
        assert p["targets"] and all(t["expr"].strip() and t["refId"] for t in p["targets"]), p["title"]
    cells = [(x, y) for p in panels for x in range(p["gridPos"]["x"], p["gridPos"]["x"] + p["gridPos"]["w"])
             for y in range(p["gridPos"]["y"], p["gridPos"]["y"] + p["gridPos"]["h"])]
    assert len(cells) == len(set(cells)), "panels overlap"


def test_dashboard_import_asks_for_the_prometheus_data_source():
    """Grafana's import offers a data-source picker for each ``__inputs`` entry and puts the choice wherever
    ``${DS_PROMETHEUS}`` stands; provisioned without an import, the DS_PROMETHEUS variable answers it."""
    dash = dashboard()
    assert dash["__inputs"] == [{"name": "DS_PROMETHEUS", "label": "Prometheus", "description": dash["__inputs"][0][
        "description"], "type": "datasource", "pluginId": "prometheus", "pluginName": "Prometheus"}]
    assert {"type": "datasource", "id": "prometheus"}.items() <= next(
        r for r in dash["__requires"] if r["type"] == "datasource").items()
    want = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    for p in dash["panels"]:
        if p["type"] != "row":
            assert p["datasource"] == want, p["title"]
            assert all(t["datasource"] == want for t in p["targets"]), p["title"]
    queried = [v for v in dash["templating"]["list"] if v["type"] == "query"]
    assert queried and all(v["datasource"] == want for v in queried)
    text = DASHBOARD.read_text()
    assert text.count("${DS_PROMETHEUS}") == sum(1 + len(p["targets"]) for p in dash["panels"]
                                                 if p["type"] != "row") + len(queried)


def test_dashboard_queries_are_valid_promql(tmp_path: Path):
    """promtool has no query checker without a server, so the queries go in as recording rules."""
    exprs = [e.replace("$__rate_interval", "1m").replace("$node", ".*") for e in queries(dashboard())]
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:q{i}", "expr": e}
                                                        for i, e in enumerate(exprs)]}]}
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    ok(promtool("check", "rules", path))
