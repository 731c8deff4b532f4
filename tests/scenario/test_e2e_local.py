"""End to end on the local backend: PostgreSQL, Redis and the fault proxy as child processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from resilience.cli import app
from tests.servers import requires_servers

SCENARIO = """\
name: e2e-postgres-blip
description: Short real run; PostgreSQL is cut off for 2 s and the breaker must open and recover.
seed: 11
service:
  breaker.reset_timeout_s: 1s
workload:
  duration: 8s
  warmup: 1s
  rate: 150
  mix: {lookup: 0.9, job: 0.1}
  keys: {catalogue_size: 150, unknown_share: 0.02, invalid_share: 0.02}
steady_state: {probes: 10, timeout: 10s}
faults:
  - {name: pg-blip, at: 3s, duration: 2s, target: postgres, action: disable}
gates:
  - breaker.opens >= 1 @ during pg-blip
  - invalid.refused_rate == 1
  - lookup.cache p(99) < 1ms
  - fallback_rate < 0.10 @ recovery within 3s
"""


@pytest.mark.slow
@requires_servers
def test_short_scenario_with_a_fault_on_the_local_backend(tmp_path: Path) -> None:
    scenario = tmp_path / "blip.yaml"
    scenario.write_text(SCENARIO)
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["run", str(scenario), "-o", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"] == "PASS"
    assert report["mode"] == "real"
    assert report["faults"]["pg-blip"][0][1] - report["faults"]["pg-blip"][0][0] == pytest.approx(
        2.0, abs=0.3
    )
    events = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    kinds = [(e["event"], e["name"]) for e in events if e["type"] == "fault"]
    assert kinds[:2] == [("start", "pg-blip"), ("stop", "pg-blip")]
    assert any(e["type"] == "breaker" and e["to"] == "open" for e in events)
    assert events[-1]["type"] == "end"
    assert events[-1]["status"] == "completed"
    assert {"report.html", "junit.xml", "report.json", "history.jsonl"} <= {
        p.name for p in out.iterdir()
    }


SIGTERM_SCENARIO = """\
name: e2e-sigterm
description: PostgreSQL is cut off and the run is stopped with SIGTERM mid-fault.
service: {breaker.reset_timeout_s: 1s}
workload: {duration: 30s, warmup: 0.5s, rate: 50}
steady_state: {probes: 5, timeout: 10s}
faults:
  - {name: pg-cut, at: 1s, duration: 20s, target: postgres, action: disable}
"""


@pytest.mark.slow
@requires_servers
def test_sigterm_mid_fault_removes_the_fault_and_exits_2(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    scenario = tmp_path / "cut.yaml"
    scenario.write_text(SIGTERM_SCENARIO)
    out = tmp_path / "report"
    history = out / "history.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from resilience.cli import main; main()",
            "run",
            str(scenario),
            "-o",
            str(out),
            "--no-progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if history.is_file() and '"event":"start"' in history.read_text():
                break
            time.sleep(0.2)
        else:
            pytest.fail("the fault never started")
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, output
    assert "interrupted" in output
    events = [json.loads(line) for line in history.read_text().splitlines()]
    stops = [e for e in events if e["type"] == "fault" and e["event"] == "stop"]
    assert stops
    assert stops[0]["name"] == "pg-cut"
    assert stops[0]["cleared_by"] == "clear_all"
    assert events[-1]["type"] == "end"
    assert events[-1]["status"] == "interrupted"
    assert events[-1]["t_us"] < 10_000_000  # stopped mid-fault, not at the end of the run
