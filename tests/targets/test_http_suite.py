"""scenarios/http: the reference service as an HTTP target passes its HTTP-boundary gates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESILIENCE = str(Path(sys.executable).with_name("resilience"))
LONG = pytest.mark.skipif(
    os.environ.get("RESILIENCE_LONG_TESTS") != "1",
    reason="minutes of real runs: opt in with RESILIENCE_LONG_TESTS=1",
)


@pytest.mark.slow
@LONG
def test_the_http_copy_of_the_suite_passes(tmp_path: Path) -> None:
    state = Path(tempfile.mkdtemp(prefix="resilience-http-suite-"))
    state.chmod(0o755)
    env = {**os.environ, "RESILIENCE_STATE_DIR": str(state)}
    try:
        done = subprocess.run(
            [
                RESILIENCE,
                "run",
                str(ROOT / "scenarios" / "http"),
                "-o",
                str(tmp_path),
                "--no-progress",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        shutil.rmtree(state, ignore_errors=True)
    assert done.returncode == 0, done.stdout[-4000:]
    for report in tmp_path.glob("*/report.json"):
        data = json.loads(report.read_text())
        assert data["verdict"] == "PASS"
        assert (report.parent / "target.log").exists()


@pytest.mark.slow
def test_an_http_target_is_subscribed_to_when_its_gates_read_the_event_stream(
    tmp_path: Path,
) -> None:
    """The crash fault over POST /harness/crash (RESILIENCE_HARNESS_CONTROL=1 in the
    target's environment) and notification/health gates over ws://…/ws/events."""
    scenario = ROOT / "scenarios" / "http" / "28-background-monitor-crash.yaml"
    state = Path(tempfile.mkdtemp(prefix="resilience-http-notify-"))
    env = {**os.environ, "RESILIENCE_STATE_DIR": str(state)}
    try:
        done = subprocess.run(
            [RESILIENCE, "run", str(scenario), "-o", str(tmp_path), "--no-progress"],
            env=env, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
    finally:
        shutil.rmtree(state, ignore_errors=True)
    assert done.returncode == 0, done.stdout[-4000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["verdict"] == "PASS"
    statuses = {g["metric"]: g["status"] for g in report["gates"]}
    assert statuses["notify.latency count"] == "pass"
    assert statuses["health.healthy"] == "pass"
