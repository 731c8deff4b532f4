"""Report writers (JUnit validates, HTML is self-contained and renders), history and analyze."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from resilience.cli import app
from resilience.scenario.history import HistoryError, HistoryWriter, read_history
from resilience.scenario.loader import parse_scenario
from resilience.scenario.metrics import evaluate_history, metrics_for
from resilience.scenario.reports import junit_tree, render_html, write_reports
from resilience.scenario.runner import RunResult, run_scenario
from resilience.scenario.testing import fake_stack

SCENARIO = """\
name: report-test
description: a short fake run with one fault
seed: 2
workload: {duration: 4s, warmup: 0.5s, rate: 300, mix: {lookup: 0.9, job: 0.1},
           keys: {unknown_share: 0.05, invalid_share: 0.05}}
steady_state: {probes: 3, timeout: 1s}
faults:
  - {name: pg-down, at: 1s, duration: 1.5s, target: postgres, action: disable}
gates:
  - errors == 0
  - breaker.opens >= 1 @ during pg-down
  - cache.hit_rate > 1
  - lookup.db p(99) < 1ms @ during pg-down
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    import asyncio

    path = tmp_path_factory.mktemp("run") / "history.jsonl"
    scenario = parse_scenario(SCENARIO)
    stack = fake_stack(reset_timeout_s=0.5)
    return asyncio.run(run_scenario(scenario, stack=stack, history_path=path))


def test_run_verdict_and_statuses(run: RunResult) -> None:
    statuses = {r.gate.source: r.status for r in run.results}
    assert statuses["errors == 0"] == "pass"
    assert statuses["breaker.opens >= 1 @ during: pg-down"] == "pass"
    assert statuses["cache.hit_rate > 1"] == "fail"
    assert statuses["lookup.db p(99) < 1ms @ during: pg-down"] == "nodata"  # no DB answers
    assert run.exit_code == 1
    assert run.verdict == "FAIL"


def test_junit_has_one_testcase_per_gate_and_validates(run: RunResult, tmp_path: Path) -> None:
    paths = write_reports(run, tmp_path)
    root = ET.parse(paths["junit"]).getroot()
    assert root.tag == "testsuites"
    [suite] = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == len(run.results)
    assert int(suite.get("tests", "0")) == len(cases)
    assert int(suite.get("failures", "0")) == 2  # the failed gate and the NO DATA one
    assert int(suite.get("skipped", "0")) == 0
    failed = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
    assert failed["cache.hit_rate > 1"].get("type") == "GateFailed"  # type: ignore[union-attr]
    no_data = failed["lookup.db p(99) < 1ms @ during: pg-down"]
    assert no_data.get("type") == "NoData"  # type: ignore[union-attr]
    for case in cases:  # the JUnit schema's required attributes
        assert case.get("classname")
        assert case.get("name")
        assert case.get("time") is not None


def test_junit_reports_an_aborted_run_as_an_error(run: RunResult) -> None:
    aborted = RunResult(
        scenario=run.scenario,
        history_path=run.history_path,
        status="aborted",
        error="environment could not start",
    )
    suite = junit_tree([aborted]).getroot().find("testsuite")
    assert suite is not None
    assert suite.get("errors") == "1"


def test_html_is_self_contained_and_has_shaded_fault_windows(run: RunResult) -> None:
    html = render_html(run, read_history(run.history_path))
    for svg in re.findall(r"<svg.*?</svg>", html, flags=re.S):
        ET.fromstring(svg)  # every chart is well-formed SVG
    urls = re.findall(r"(?:src|href)=\"([^\"]+)\"", html)
    assert urls == []  # no external scripts, styles or images
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert html.count("<svg") == 4  # latency, throughput, rates, breaker band
    assert 'class="fault"' in html
    assert "pg-down" in html
    assert "cache.hit_rate" in html
    assert "FAIL" in html


def test_json_report_holds_gates_metrics_and_faults(run: RunResult, tmp_path: Path) -> None:
    data = json.loads(write_reports(run, tmp_path)["json"].read_text())
    assert data["verdict"] == "FAIL"
    assert data["exit_code"] == 1
    assert len(data["gates"]) == len(run.results)
    assert data["faults"]["pg-down"][0][0] == pytest.approx(1.0, abs=0.05)
    assert data["metrics"]["ops"] > 500


def test_history_format(run: RunResult) -> None:
    lines = run.history_path.read_text().splitlines()
    meta = json.loads(lines[0])
    assert meta["type"] == "meta"
    assert meta["scenario"] == "report-test"
    assert meta["seed"] == 2
    assert meta["mode"] == "fake"
    assert meta["config"]["workload"]["rate"] == 300
    kinds = {json.loads(line)["type"] for line in lines}
    assert {"op", "fault", "breaker", "sample", "steady", "end"} <= kinds
    op = next(json.loads(line) for line in lines if '"type":"op"' in line)
    assert set(op) >= {
        "t_us",
        "op",
        "slug",
        "outcome",
        "path",
        "latency_us",
        "attempts",
        "late_us",
        "phase",
    }


def test_metrics_recomputed_from_history_match_the_run(run: RunResult) -> None:
    history = read_history(run.history_path)
    again = evaluate_history(history, [r.gate for r in run.results])
    assert [(r.status, r.observed) for r in again] == [(r.status, r.observed) for r in run.results]
    m = metrics_for(history, [(0.5, 4.0)])
    assert m["invalid.refused_rate"] == 1.0
    assert m["window_s"] == pytest.approx(3.5)


def test_reading_a_bad_history_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    with HistoryWriter(path) as writer:
        writer.write({"type": "meta", "scenario": "x"})
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(HistoryError, match=r"h.jsonl:2: not a JSON record"):
        read_history(path)
    path.write_text('{"type": "op"}\n')
    with pytest.raises(HistoryError, match="first record must be 'meta'"):
        read_history(path)


def test_analyze_reevaluates_a_stored_history(run: RunResult, tmp_path: Path) -> None:
    cli = CliRunner()
    stored = cli.invoke(app, ["analyze", str(run.history_path)])
    assert stored.exit_code == 1
    assert "cache.hit_rate" in stored.output
    ok = cli.invoke(
        app,
        [
            "analyze",
            str(run.history_path),
            "-g",
            "errors == 0",
            "-g",
            "breaker.opens >= 1 @ during pg-down",
            "-o",
            str(tmp_path),
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "report.html").is_file()
    bad = cli.invoke(app, ["analyze", str(run.history_path), "-g", "errors =="])
    assert bad.exit_code == 2
    assert "expected a number" in bad.output
    missing = cli.invoke(app, ["analyze", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2


def test_run_with_a_bad_scenario_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nworkload: {duration: 1s, rate: 10, warmpu: 1s}\n")
    result = CliRunner().invoke(app, ["run", str(bad)])
    assert result.exit_code == 2
    assert "bad.yaml:2: workload.warmpu" in result.output
    assert "did you mean 'warmup'" in result.output


def test_run_check_validates_the_default_suite() -> None:
    suite = Path(__file__).resolve().parents[2] / "scenarios"
    result = CliRunner().invoke(app, ["run", "--check", str(suite)])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok ") >= 10


def test_live_progress_shows_phase_rates_breaker_and_faults() -> None:
    import io

    from rich.console import Console

    from resilience.scenario.progress import LiveProgress, PlainProgress, Snapshot, render

    snap = Snapshot(
        scenario="pg",
        t_s=12.0,
        duration_s=30.0,
        phase="during",
        rate=199.0,
        hit_rate=0.93,
        fallback_rate=0.04,
        breaker="open",
        faults=("pg-down",),
        in_flight=3,
        ops=2400,
        late=2,
        errors=0,
    )
    out = io.StringIO()
    Console(file=out, width=120).print(render(snap))
    text = out.getvalue()
    for fragment in ("pg", "during", "199/s", "93.0%", "4.0%", "breaker open", "pg-down"):
        assert fragment in text
    plain = io.StringIO()
    with PlainProgress(plain) as sink:
        sink(snap)
    assert "breaker=open faults=pg-down" in plain.getvalue()
    with LiveProgress(Console(file=io.StringIO())) as live:
        live(snap)  # renders without a terminal
