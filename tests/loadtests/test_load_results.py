"""Locust statistics and /stats become gate metrics; gates judge them like scenarios do."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from loadtests.gates import DEFAULT_GATES, judge
from loadtests.report import render_table, write_json, write_junit
from loadtests.results import EndpointRecord, endpoint_key, load_metrics

SERVICE_STATS = {
    "lookups": 1000,
    "hit_rate": 0.8,
    "success_rate": 0.97,
    "fallback_rate": 0.03,
    "error_rate": 0.0,
    "latency_us": {
        "cache": {"count": 800, "mean": 40.0, "p50": 30, "p95": 90, "p99": 200, "max": 900},
        "db": {"count": 170, "mean": 2500.0, "p50": 2000, "p95": 6000, "p99": 9000, "max": 12000},
    },
    "breaker": {"state": "closed", "opens": 0},
    "jobs": {"stored": 12, "replayed": 1},
}

RECORDS = [
    EndpointRecord("GET", "/services/[slug]", 100, 1, {2: 90, 30: 8, 120: 2}),
    EndpointRecord("POST", "/jobs", 20, 0, {10: 20}),
]


def metrics() -> dict[str, object]:
    return load_metrics(RECORDS, window_s=10.0, service_stats=SERVICE_STATS)


def test_endpoint_names() -> None:
    assert endpoint_key("GET", "/services/[slug]") == "lookup"
    assert endpoint_key("get", "/jobs/[id]") == "job_read"
    assert endpoint_key("DELETE", "/x/[y]") == "delete_x_y"


def test_locust_histograms_become_samples_in_seconds() -> None:
    m = metrics()
    assert m["http.lookup"] == [0.002] * 90 + [0.030] * 8 + [0.120] * 2
    assert m["http.lookup.failure_ratio"] == 0.01
    assert m["http.all.requests"] == 120
    assert m["failure_ratio"] == pytest.approx(1 / 120)


def test_service_stats_use_the_scenario_names() -> None:
    m = metrics()
    assert m["cache.hit_rate"] == 0.8
    assert m["breaker.opens"] == 0.0
    assert m["breaker.open"] == 0.0
    assert m["lookup.db"] == pytest.approx(0.0025)
    assert m["lookup.db.p95"] == pytest.approx(0.006)
    assert m["service.jobs.stored"] == 12.0


def test_gates_pass_and_fail_on_the_right_side_of_the_threshold() -> None:
    results = judge(
        (
            "http.lookup p(95) < 50ms",
            "http.lookup p(99) < 50ms",  # the two 120 ms requests reach p(99)
            "http.all per_s > 10",
            "cache.hit_rate >= 70%",
            "lookup.db.p95 < 5ms",
            "http.job_read p(95) < 1ms",  # never called: no data
        ),
        metrics(),
    )
    assert [r.status for r in results] == ["pass", "fail", "pass", "pass", "fail", "fail"]
    assert results[1].message == "http.lookup p(99) must be < 50ms but was 120ms"


def test_percentile_of_a_summary_number_is_refused_not_faked() -> None:
    (result,) = judge(("lookup.db p(95) < 50ms",), metrics())
    assert result.status == "fail"
    assert "lookup.db.p95" in result.message


def test_default_gates_are_the_documented_targets() -> None:
    results = judge(DEFAULT_GATES, metrics())
    assert {r.gate.source for r in results if r.status == "fail"} == set()


def test_reports_table_json_and_junit(tmp_path: Path) -> None:
    results = judge(("failure_ratio < 0.5%", "success_rate >= 95%"), metrics())
    table = render_table(results)
    assert "FAIL" in table
    assert "1 of 2 gates FAILED" in table
    write_json(tmp_path / "g.json", results, {"profile": "t"})
    document = json.loads((tmp_path / "g.json").read_text())
    assert document["passed"] is False
    assert [g["status"] for g in document["gates"]] == ["fail", "pass"]
    write_junit(tmp_path / "g.xml", results, suite="t", run_errors=["fault start x: refused"])
    suite = ET.parse(tmp_path / "g.xml").getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    failure = suite.find("testcase/failure")
    assert failure is not None
    assert failure.get("type") == "GateFailed"
