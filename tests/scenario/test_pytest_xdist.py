"""``pytest scenarios/ -n N``: scenarios spread over xdist workers, one merged suite report."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.servers import requires_servers

pytest_plugins = ["pytester"]
pytest.importorskip("xdist")

CONFTEST = "from resilience.pytest_scenarios import *  # noqa: F403\n"

SCENARIO = """\
name: {name}
seed: {seed}
workload: {{duration: 4s, warmup: 0.5s, rate: 50}}
steady_state: {{probes: 2, timeout: 2s}}
gates: [{gate}]
"""


def _suite(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    for i in range(4):
        pytester.makefile(
            ".yaml", **{f"s{i}": SCENARIO.format(name=f"s{i}", seed=i, gate="errors == 0")}
        )
    pytester.makefile(".yaml", bad=SCENARIO.format(name="bad", seed=9, gate="cache.hit_rate > 1"))


def test_xdist_workers_run_the_scenarios_and_the_controller_merges_one_report(
    pytester: pytest.Pytester,
) -> None:
    _suite(pytester)
    out = pytester.path / "out"
    result = pytester.runpytest_subprocess(
        "-n",
        "2",
        "--scenario-stack=simulated",
        f"--scenario-reports={out}",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=4, failed=1)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["exit_code"] == 1
    entries = {e["scenario"]: e for e in summary["scenarios"]}
    assert set(entries) == {"s0", "s1", "s2", "s3", "bad"}
    assert {e["worker"] for e in entries.values()} == {"gw0", "gw1"}
    assert entries["bad"]["failed"] == ["cache.hit_rate > 1"]
    junit = ET.parse(out / "junit.xml").getroot()
    assert sorted(s.get("name") for s in junit) == ["bad", "s0", "s1", "s2", "s3"]
    page = (out / "report.html").read_text()
    assert "4 of 5 scenarios pass" in page
    assert 'href="s0/report.html"' in page


def test_without_xdist_the_same_suite_report_is_written(pytester: pytest.Pytester) -> None:
    _suite(pytester)
    out = pytester.path / "out"
    result = pytester.runpytest(
        "--scenario-stack=simulated", f"--scenario-reports={out}", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=4, failed=1)
    summary = json.loads((out / "summary.json").read_text())
    assert {e["worker"] for e in summary["scenarios"]} == {"main"}
    assert len(summary["scenarios"]) == 5
    result.stdout.fnmatch_lines(["*scenario suite: 5 scenario(s); report*report.html*"])


@pytest.mark.slow
@requires_servers
def test_each_xdist_worker_has_its_own_real_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, state_dir_private: Path
) -> None:
    """One scenario cuts PostgreSQL off while the other runs clean: had they shared a
    proxy, the clean one would see fallbacks."""
    monkeypatch.setenv("RESILIENCE_STATE_DIR", str(state_dir_private))
    pytester.makeconftest(CONFTEST)
    pytester.makefile(
        ".yaml",
        cut="name: cut\nservice: {breaker.reset_timeout_s: 1s}\n"
        "workload: {duration: 8s, warmup: 1s, rate: 40}\n"
        "steady_state: {probes: 3, timeout: 10s}\n"
        "faults:\n  - {name: pg, at: 2s, duration: 4s, target: postgres, action: disable}\n"
        "gates: ['breaker.opens >= 1 @ during pg']\n",
    )
    pytester.makefile(
        ".yaml",
        clean="name: clean\nworkload: {duration: 8s, warmup: 1s, rate: 40}\n"
        "steady_state: {probes: 3, timeout: 10s}\n"
        "gates: ['degraded_rate == 0', 'breaker.opens == 0']\n",
    )
    out = pytester.path / "out"
    result = pytester.runpytest_subprocess(
        "-n", "2", f"--scenario-reports={out}", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2)
    summary = json.loads((out / "summary.json").read_text())
    assert {e["worker"] for e in summary["scenarios"]} == {"gw0", "gw1"}
