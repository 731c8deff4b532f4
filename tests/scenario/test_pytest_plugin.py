"""``pytest scenarios/``: each scenario file is one test; failing gates fail it (via pytester)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

CONFTEST = "from resilience.pytest_scenarios import *  # noqa: F403\n"

SCENARIO = """\
name: {name}
description: plugin test
workload: {{duration: 1.5s, warmup: 0.5s, rate: 200}}
steady_state: {{probes: 3, timeout: 1s}}
gates: [{gate}]
"""


def test_each_scenario_is_a_test_and_gates_decide(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makefile(".yaml", good=SCENARIO.format(name="good", gate="errors == 0"))
    pytester.makefile(".yaml", bad=SCENARIO.format(name="bad", gate="cache.hit_rate > 1"))
    pytester.makefile(".yaml", broken="name: broken\nworkload: {duraton: 1s}\n")
    result = pytester.runpytest("--scenario-stack=fake", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*scenario bad: FAIL*",
            "*FAIL cache.hit_rate > 1*observed*",
            "*broken.yaml:2: workload.duraton: unknown key*",
        ]
    )


def test_reports_are_written_per_scenario(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makefile(".yaml", one=SCENARIO.format(name="one", gate="errors == 0"))
    out = pytester.path / "out"
    result = pytester.runpytest("--scenario-stack=fake", f"--scenario-reports={out}")
    result.assert_outcomes(passed=1)
    assert {p.name for p in (out / "one").iterdir()} >= {
        "history.jsonl",
        "report.json",
        "junit.xml",
        "report.html",
    }
