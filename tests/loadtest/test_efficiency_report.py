"""The efficiency table (loadtest/efficiency_report.py) and the docs' region written from
loadtest/results/efficiency.jsonl: ratios Parley / baseline, the newest run only."""

from __future__ import annotations

from typing import Any

from parley.loadtest import efficiency_report
from parley.loadtest.docs import ROOT, records
from parley.loadtest.efficiency_report import newest_run, table, times


def rec(run: str, system: str, workload: str, **figures: Any) -> dict[str, Any]:
    base = {"run": run, "system": system, "workload": workload, "commit": "0123456789abcdef", "clean_tree": True,
            "machine": {"cpu_count": 2, "cpu_model": "CPU", "loadavg_at_start": [1.0, 0.5, 0.25]},
            "pinning": "servers on core 0, generator on core 1",
            "args": {"pairs": 100, "rooms": 10, "room_size": 50, "idle": 1000},
            "cpu_ms_per_delivery": None, "max_deliveries_per_s": None, "p50_ms": None, "p99_ms": None,
            "kb_per_conn": None, "connects_per_s": None, "lost": 0, "duplicates": 0,
            "quoted_at": {"rule": "p99<=50ms", "deliveries_per_s": 1000.0, "p99_ms": 9.0}}
    return base | figures


def run(name: str, parley_dm_cost: float) -> list[dict[str, Any]]:
    return [
        rec(name, "baseline", "dm", cpu_ms_per_delivery=0.01, max_deliveries_per_s=20_000.0, p50_ms=1.0, p99_ms=5.0,
            limit_reached=False, cpu_pct_at_max={"baseline": 60.0, "client": 97.0},
            core_busy_pct_at_max={"0": 90.0, "1": 99.0}),
        rec(name, "baseline", "fanout", cpu_ms_per_delivery=0.005, max_deliveries_per_s=50_000.0, p50_ms=2.0,
            p99_ms=8.0),
        rec(name, "baseline", "idle", kb_per_conn=10.0, connects_per_s=2_000.0, idle={"idle_cpu_pct": 0.5}),
        rec(name, "parley", "dm", cpu_ms_per_delivery=parley_dm_cost, max_deliveries_per_s=1_000.0, p50_ms=20.0,
            p99_ms=100.0),
        rec(name, "parley", "fanout", cpu_ms_per_delivery=None, max_deliveries_per_s=None),  # nothing sustained
        rec(name, "parley", "idle", kb_per_conn=45.0, connects_per_s=300.0, idle={"idle_cpu_pct": 4.0}),
    ]


def row(lines: list[str], workload: str, label: str) -> list[str]:
    return next(line.split(" | ")[2:] for line in lines if line.startswith(f"| {workload} | {label} |"))


def test_each_figure_is_shown_with_its_ratio_parley_over_baseline() -> None:
    lines = table(run("2026-12-02T15:00:00+00:00", 0.3))
    assert row(lines, "dm", "server CPU ms per delivery") == ["0.3000", "0.0100", "30× |"]
    assert row(lines, "dm", "max deliveries/s") == ["1,000", "≥ 20,000", "0.05× |"]  # the ladder ran out first
    assert row(lines, "idle", "KB per connection (all server processes)") == ["45.0", "10.0", "4.50× |"]
    assert row(lines, "fanout", "server CPU ms per delivery") == ["-", "0.0050", "- |"]  # no figure, no ratio


def test_the_same_load_row_compares_both_systems_at_the_busiest_rate_both_sustained() -> None:
    def steps(*good: float) -> list[dict[str, Any]]:
        return [{"offered_rate": r, "offered_deliveries_per_s": r, "missing_after_drain": 0, "e2e": {"p99_ms": 5.0},
                 "window": {"wall_s": 1.0, "deliveries": int(r) if ok else 0, "deliveries_per_s": r,
                            "cpu_ms_per_delivery": cpu}} for r, ok, cpu in good]
    records = run("2026-12-02T15:00:00+00:00", 0.3)
    records[0]["steps"] = steps((100, True, 0.02), (200, True, 0.01), (400, True, 0.01))
    records[3]["steps"] = steps((100, True, 0.5), (200, True, 0.4), (400, False, 0.3))
    lines = table(records)
    assert "| dm | server CPU ms per delivery at the same load (200 msg/s offered) | 0.4000 | 0.0100 | 40× |" in lines
    assert "| fanout | server CPU ms per delivery at the same load (none both sustained) | - | - | - |" in lines


def test_only_the_newest_run_is_shown() -> None:
    older, newer = run("2026-12-01T10:00:00+00:00", 0.9), run("2026-12-02T10:00:00+00:00", 0.2)
    assert newest_run(older + newer) == newer
    assert row(table(older + newer), "dm", "server CPU ms per delivery")[0] == "0.2000"


def test_the_note_says_where_costs_were_quoted_the_tree_and_the_ledger() -> None:
    note = table(run("2026-12-02T15:00:00+00:00", 0.3))[-1]
    assert "commit 0123456789, clean tree" in note
    assert "parley dm at 1,000 deliveries/s (p99<=50ms)" in note
    assert "parley dm: 0 lost, 0 doubled" in note
    assert "baseline dm: generator 97%, server core 60% ours of 90% busy" in note


def test_runs_of_one_commit_say_how_far_apart_they_were_and_their_median() -> None:
    runs = [run("2026-12-02T10:00:00+00:00", 0.5), run("2026-12-02T11:00:00+00:00", 0.3),
            run("2026-12-02T12:00:00+00:00", 0.4)]
    for r in runs[0]:
        r["commit"] = "ffffffffffffffff"  # another commit's run: not counted
    lines = table([r for one in runs for r in one])
    assert lines[-1] == ("Parley over the 2 runs of commit 0123456789: dm CPU ms per delivery (quoted) "
                         "0.3000–0.4000 (median 0.3500); KB per connection 45.0–45.0 (median 45.0); "
                         "connects/s 300–300 (median 300).")
    assert not table(runs[0])[-1].startswith("Parley over")  # one run: nothing to compare


def test_no_run_yet_says_so() -> None:
    assert table([])[-1].startswith("No efficiency run recorded yet")


def test_ratio_format() -> None:
    assert [times(v) for v in (None, 0.05, 4.5, 30.4)] == ["-", "0.05×", "4.50×", "30×"]


def test_the_docs_show_the_table_of_the_results_file() -> None:
    expected = "\n".join(efficiency_report.region(records("efficiency.jsonl")))
    for name in ("README.md", "docs/capacity.md"):
        text = (ROOT / name).read_text()
        assert f"<!-- generated: efficiency -->\n{expected}\n<!-- end generated -->" in text, (
            f"{name}: run `make capacity` (python -m parley.loadtest.docs)")


def test_a_run_of_picows_beside_the_baseline_has_its_own_table_and_leaves_parleys_alone() -> None:
    records = [{**r, "system": "picows"} if r["system"] == "parley" else r
               for r in run("2026-12-04T18:00:00+00:00", 0.02)]
    lines = table(records, ("picows", "baseline"))
    assert lines[0] == "| workload | figure | picows | baseline | picows / baseline |"
    assert row(lines, "dm", "server CPU ms per delivery") == ["0.0200", "0.0100", "2.00× |"]
    assert "picows dm: 0 lost" in lines[-1]
    assert row(table(records), "dm", "server CPU ms per delivery") == ["-", "0.0100", "- |"]  # Parley's: none


def test_beside_the_durable_floor_each_process_is_compared_at_the_same_load() -> None:
    def steps(cpu: float, by: dict[str, float]) -> list[dict[str, Any]]:
        return [{"offered_rate": 200, "offered_deliveries_per_s": 200, "missing_after_drain": 0, "e2e": {"p99_ms": 5.0},
                 "window": {"wall_s": 1.0, "deliveries": 200, "deliveries_per_s": 200, "cpu_ms_per_delivery": cpu,
                            "cpu_ms_per_delivery_by_process": by}}]
    records = [{**r, "system": "durable"} if r["system"] == "baseline" else r
               for r in run("2026-12-02T15:00:00+00:00", 0.3)]
    records[0]["steps"] = steps(0.1, {"relay": 0.06, "nats-server": 0.03, "archiver": 0.01})
    records[3]["steps"] = steps(0.2, {"node1": 0.12, "nats-server": 0.04, "archiver": 0.02, "api": 0.0})
    lines = table(records, ("parley", "durable"))
    assert row(lines, "dm", "… of which edge (node1, relay)") == ["0.1200", "0.0600", "2.00× |"]
    assert row(lines, "dm", "… of which nats-server") == ["0.0400", "0.0300", "1.33× |"]
    assert row(lines, "dm", "… of which archiver") == ["0.0200", "0.0100", "2.00× |"]
    assert not [line for line in lines if "of which api" in line]  # no CPU tick in either window
    assert not [line for line in table(records, ("parley", "baseline")) if "of which" in line]


def test_the_region_adds_parley_beside_the_durable_floor_only_when_the_newest_run_ran_it() -> None:
    plain = run("2026-12-05T08:00:00+00:00", 0.2)
    assert efficiency_report.region(plain) == table(plain)
    floor = [{**r, "system": "durable"} for r in run("2026-12-05T09:00:00+00:00", 0.1) if r["system"] == "baseline"]
    newest = plain + [{**r, "run": "2026-12-05T09:00:00+00:00"} for r in plain] + floor
    lines = efficiency_report.region(newest)
    assert lines[:len(table(newest))] == table(newest)
    assert "| workload | figure | Parley | durable | Parley / durable |" in lines
    assert row(lines[len(table(newest)):], "dm", "server CPU ms per delivery") == ["0.2000", "0.0100", "20× |"]
    assert efficiency_report.region(newest + plain[:1]) == table(newest + plain[:1])  # a newer run without it
